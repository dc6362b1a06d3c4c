"""``NBDeployer``: deploy a flow class defined in a notebook, as Metaflow's NBDeployer.

    deployed = NBDeployer(MyFlow).local().create()
    triggered = deployed.trigger(alpha=5)
    triggered.wait_for_run()

The flow's source is written to a file, as for `NBRunner` (the current cell in IPython, else the
definitions of the class's module), and a `Deployer` deploys that file; every attribute not
defined here is the `Deployer`'s (``local()``, ``step_functions()``, …). The scheduler runs the
file later, so it stays until ``cleanup()`` — after which the deployment's new runs fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Mapping

from flow_core.runner.deployer import Deployer
from flow_core.runner.nbrun import flow_source


class NBDeployer:
    """A `Deployer` for a flow class rather than a file."""

    def __init__(self, flow: type, show_output: bool = True, profile: str | None = None,
                 env: Mapping[str, str] | None = None, base_dir: str | None = None, file_read_timeout: int = 3600,
                 **kwargs: Any):
        self.flow = flow
        self.temp_dir = tempfile.mkdtemp(prefix="flow-nbdeployer-", dir=base_dir)
        self.flow_file = os.path.join(self.temp_dir, f"{flow.__name__}.py")
        with open(self.flow_file, "w", encoding="utf-8") as file:
            file.write(flow_source(flow))
        env = {"JPY_PARENT_PID": "", **(env or {})}  # the subprocesses are not part of the notebook's kernel
        self.deployer = Deployer(self.flow_file, show_output=show_output, profile=profile, env=env, cwd=base_dir,
                                 file_read_timeout=file_read_timeout, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "deployer":  # not set yet: __init__ failed before it
            raise AttributeError(name)
        return getattr(self.deployer, name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *dir(self.deployer)})

    def cleanup(self) -> None:
        """Remove the flow's file (the deployment's later runs need it: delete the deployment first)."""
        shutil.rmtree(self.temp_dir, ignore_errors=True)
