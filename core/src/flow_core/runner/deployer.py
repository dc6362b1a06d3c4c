"""``Deployer``: deploy a flow to a scheduler and trigger its runs from Python, as Metaflow's.

    deployed = Deployer("nightly.py").local().create(tags=["team:ml"])
    triggered = deployed.trigger(size=7)
    triggered.wait_for_run()
    triggered.run.data.result

One method per installed scheduler backend, named after it with ``-`` as ``_`` (``local()``;
``step_functions()`` once flow-sched-sfn is installed). Each step is the real command line in
a subprocess — ``flow deploy``, ``flow trigger``, ``flow undeploy`` with ``--scheduler`` — so
what they check and print is what the CLI checks and prints.
"""

from __future__ import annotations

import re
import time
from typing import Any, Mapping

from flow_core.client import Run
from flow_core.errors import FlowError
from flow_core.plugin.registry import get_registry
from flow_core.runner.command import TOP_LEVEL, CommandProcess, environment, flow_command, options

_DEPLOYED = re.compile(r"Deployed (\S+) to the \S+ scheduler; its runs are in namespace production:(\S+?)\.\s")
_TRIGGERED = re.compile(r"Triggered (\S+) on the \S+ scheduler\.")
_CREATE_OPTIONS = {"tags", "branch", "production", "config", "config_value"}


def scheduler_methods() -> dict[str, str]:
    """Method name → scheduler backend name, for the schedulers installed."""
    return {name.replace("-", "_"): name for name in get_registry().backends("scheduler")}


class Deployer:
    """Deploys a flow file; ``Deployer(file).<scheduler>()`` picks the scheduler."""

    def __init__(self, flow_file: str, show_output: bool = True, profile: str | None = None,
                 env: Mapping[str, str] | None = None, cwd: str | None = None, file_read_timeout: int = 3600,
                 **kwargs: Any):
        self.flow_file = str(flow_file)
        self.show_output = show_output
        self.env = environment(env, profile)
        self.cwd = cwd
        self.file_read_timeout = file_read_timeout
        # The commands' messages are how the results come back, so --quiet is not passed on.
        self.top_level = options({k: v for k, v in kwargs.items() if k != "quiet"},
                                 TOP_LEVEL - {"decospecs", "with_"}, "Deployer()")

    def __getattr__(self, name: str) -> Any:
        methods = scheduler_methods() if not name.startswith("_") else {}
        if name not in methods:
            raise AttributeError(f"'Deployer' object has no attribute '{name}' (installed schedulers: "
                                 f"{', '.join(sorted(scheduler_methods()))})")
        return lambda **kwargs: SchedulerDeployer(self, methods[name], **kwargs)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *scheduler_methods()})

    def _command(self, verb: str, words: list[str]) -> str:
        """Run one command to its end; its stdout, or a RuntimeError with what it printed."""
        command = CommandProcess(flow_command(self.top_level, verb, self.flow_file, words), self.env, self.cwd,
                                 self.show_output)
        if command.wait(self.file_read_timeout) is None:
            command.process.kill()
            raise RuntimeError(f"{command.failure()}\n\nIt did not finish within {self.file_read_timeout}s.")
        if command.returncode != 0:
            raise RuntimeError(command.failure())
        return command.text("stdout")


class SchedulerDeployer:
    """``Deployer(file).local()``: ``create`` deploys to that scheduler."""

    def __init__(self, deployer: Deployer, scheduler: str, **kwargs: Any):
        if kwargs:
            raise TypeError(f"the {scheduler} scheduler takes no options (got {', '.join(sorted(kwargs))})")
        self.deployer = deployer
        self.scheduler = scheduler

    def create(self, **kwargs: Any) -> "DeployedFlow":
        """Deploy the flow (``tags=[…]`` tag every run of the deployment); a `DeployedFlow`."""
        words = options(kwargs, _CREATE_OPTIONS, "create()") + ["--scheduler", self.scheduler]
        out = self.deployer._command("deploy", words)
        found = _DEPLOYED.search(out + "\n")
        if found is None:
            raise FlowError(f"the deploy command did not say what it deployed:\n{out}")
        return DeployedFlow(self.deployer, self.scheduler, found.group(1), found.group(2))


class DeployedFlow:
    """A flow deployed to a scheduler: trigger runs of it, or delete it."""

    def __init__(self, deployer: Deployer, scheduler: str, flow_name: str, production_token: str):
        self.deployer = deployer
        self.scheduler = scheduler
        self.flow_name = self.name = flow_name
        self.production_token = production_token

    def trigger(self, **kwargs: Any) -> "TriggeredRun":
        """Start a run now; ``kwargs`` are the flow's parameters (``size=7`` → ``--size 7``)."""
        words = options(kwargs, set(), "trigger()", parameters=True) + ["--scheduler", self.scheduler]
        out = self.deployer._command("trigger", words)
        found = _TRIGGERED.search(out)
        if found is None:
            raise FlowError(f"the trigger command did not say what it started:\n{out}")
        return TriggeredRun(self, found.group(1))

    def delete(self) -> bool:
        """Remove the deployment; its past runs stay."""
        self.deployer._command("undeploy", ["--scheduler", self.scheduler])
        return True

    def __repr__(self) -> str:
        return f"DeployedFlow({self.flow_name!r}, scheduler={self.scheduler!r})"


class TriggeredRun:
    """A run a scheduler was asked to start. ``pathspec`` is what the scheduler answered
    (``Flow/run_id`` for the local scheduler); ``run`` is its Client ``Run`` once it exists."""

    def __init__(self, deployed_flow: DeployedFlow, pathspec: str):
        self.deployed_flow = deployed_flow
        self.pathspec = self.name = pathspec

    @property
    def run(self) -> Run | None:
        """The Client ``Run`` (in the deployment's production namespace), or None before it exists."""
        try:
            return Run(self.pathspec, _namespace_check=False)
        except (FlowError, ValueError):
            return None

    @property
    def status(self) -> str:
        """``pending`` until the run exists, then the Client's ``running``, ``succeeded``,
        ``failed`` or ``crashed``."""
        run = self.run
        return "pending" if run is None else run.status

    def wait_for_run(self, check_interval: float = 5, timeout: float | None = None) -> Run:
        """Wait for ``run`` to exist (not for it to finish, as Metaflow's) and return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (run := self.run) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"the run {self.pathspec} did not start within {timeout}s")
            time.sleep(min(check_interval, max(0.0, deadline - time.monotonic())) if deadline else check_interval)
        return run

    def __repr__(self) -> str:
        return f"TriggeredRun({self.pathspec!r}, status={self.status!r})"
