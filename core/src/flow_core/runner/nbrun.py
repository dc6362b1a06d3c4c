"""``NBRunner``: run a flow class defined in a notebook, as Metaflow's NBRunner.

    run = NBRunner(MyFlow).nbrun(alpha=5)
    run.data.score

A flow runs from a file (its tasks import it), so the flow's source is written to a temporary
file first. Where it comes from:

- in IPython/Jupyter, the current cell (as Metaflow): define the flow in a cell and start it
  from that cell; the cell is cut after the flow's class, so the NBRunner call itself is left out;
- elsewhere (a script, a module, a test), the source of the module that defines the class,
  keeping only what a flow file needs — imports, classes, functions, and assignments that call
  nothing — so the module's own statements (including the one starting this NBRunner) do not
  run again in the flow's process.
"""

from __future__ import annotations

import ast
import inspect
import os
import shutil
import sys
import tempfile
from typing import Any

from flow_core.client import Run
from flow_core.runner.runner import ExecutingRun, Runner


def _ipython_cell() -> str | None:
    """The source of the cell being run, when in IPython."""
    ipython_module = sys.modules.get("IPython")
    shell = ipython_module.get_ipython() if ipython_module is not None else None  # type: ignore[attr-defined]
    if shell is None:
        return None
    history = shell.history_manager.input_hist_raw
    return history[-1] if history else None


def cell_source(cell: str, flow_name: str) -> str:
    """The cell up to the end of the flow's class."""
    for node in ast.parse(cell).body:
        if isinstance(node, ast.ClassDef) and node.name == flow_name:
            return "\n".join(cell.splitlines()[: node.end_lineno]) + "\n"
    raise ValueError(f"the current cell does not define {flow_name}; define the flow in the cell that runs it")


def _calls_nothing(node: ast.AST) -> bool:
    return not any(isinstance(child, (ast.Call, ast.Await, ast.Yield)) for child in ast.walk(node))


def module_source(flow_cls: type) -> str:
    """The definitions of the module that defines ``flow_cls``, without its statements."""
    module = sys.modules.get(flow_cls.__module__)
    try:
        source = inspect.getsource(module) if module is not None else inspect.getsource(flow_cls)
    except (OSError, TypeError):
        source = inspect.getsource(flow_cls)
    tree = ast.parse(source)
    kept = [node for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            or (isinstance(node, (ast.Assign, ast.AnnAssign)) and _calls_nothing(node))]
    return ast.unparse(ast.Module(body=kept, type_ignores=[])) + "\n"


def flow_source(flow_cls: type) -> str:
    cell = _ipython_cell()
    return cell_source(cell, flow_cls.__name__) if cell else module_source(flow_cls)


class NBRunner:
    """A `Runner` for a flow class rather than a file; ``nbrun``/``nbresume`` return the
    Client ``Run`` and remove the temporary file."""

    def __init__(self, flow: type, show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, base_dir: str | None = None, file_read_timeout: int = 3600,
                 **kwargs: Any):
        self.flow = flow
        self.temp_dir = tempfile.mkdtemp(prefix="flow-nbrunner-", dir=base_dir)
        self.flow_file = os.path.join(self.temp_dir, f"{flow.__name__}.py")
        with open(self.flow_file, "w", encoding="utf-8") as file:
            file.write(flow_source(flow))
        env = {"JPY_PARENT_PID": "", **(env or {})}  # the subprocess is not part of the notebook's kernel
        self.runner = Runner(self.flow_file, show_output=show_output, profile=profile, env=env,
                             file_read_timeout=file_read_timeout, **kwargs)

    def nbrun(self, **kwargs: Any) -> Run:
        """Run the flow, wait for it, clean up, and return its ``Run``."""
        try:
            return self.runner.run(**kwargs).run
        finally:
            self.cleanup()

    def nbresume(self, **kwargs: Any) -> Run:
        try:
            return self.runner.resume(**kwargs).run
        finally:
            self.cleanup()

    def run(self, **kwargs: Any) -> ExecutingRun:
        return self.runner.run(**kwargs)

    def resume(self, **kwargs: Any) -> ExecutingRun:
        return self.runner.resume(**kwargs)

    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        return await self.runner.async_run(**kwargs)

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        return await self.runner.async_resume(**kwargs)

    def cleanup(self) -> None:
        """Remove the flow's temporary file and the runner's files."""
        self.runner.cleanup()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
