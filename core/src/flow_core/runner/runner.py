"""``Runner``: start runs and resumes of a flow file from Python, as Metaflow's Runner API.

    with Runner("train.py", show_output=False) as runner:
        result = runner.run(alpha=5, tags=["nightly"], max_workers=4)
        print(result.status, result.run.data.score)

Each run is the real command line (``python -m flow_core run FILE …``) in a subprocess that
inherits this process's environment; the run id comes back through ``--run-id-file`` and the
``Run`` is read through the Client API of *this* process — so ``env=`` or ``metadata=`` that
point the subprocess at another datastore must be set here too for ``.run`` to find it.
"""

from __future__ import annotations

import ast
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

from flow_core.client import Run
from flow_core.errors import FlowError
from flow_core.runner.command import (
    RESUME_OPTIONS,
    RUN_OPTIONS,
    TOP_LEVEL,
    CommandProcess,
    environment,
    flow_command,
    options,
)

_POLL_SECONDS = 0.05


class ExecutingRun:
    """A run started by a `Runner`: its subprocess (status, output) and its Client ``Run``."""

    def __init__(self, runner: "Runner", command: CommandProcess, run: Run):
        self.runner = runner
        self.command_obj = command
        self._run = run
        self._final = False
        self.snapshot_time = time.time()

    @property
    def run(self) -> Run:
        """The Client ``Run``, read again while the subprocess runs, so its status is current."""
        if not self._final:
            self._final = self.returncode is not None
            self._run = Run(self._run.pathspec, _namespace_check=False)
        return self._run

    def __enter__(self) -> "ExecutingRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.runner.cleanup()

    @property
    def returncode(self) -> int | None:
        """The subprocess's exit status; None while it runs."""
        return self.command_obj.returncode

    @property
    def status(self) -> str:
        """``running``, ``successful`` or ``failed`` (Metaflow's words, from the subprocess)."""
        code = self.returncode
        return "running" if code is None else "successful" if code == 0 else "failed"

    @property
    def stdout(self) -> str:
        """Everything the run printed so far (all of it once it has finished)."""
        self.snapshot_time = time.time()
        return self.command_obj.text("stdout")

    @property
    def stderr(self) -> str:
        self.snapshot_time = time.time()
        return self.command_obj.text("stderr")

    async def wait(self, timeout: float | None = None, stream: str | None = None) -> "ExecutingRun":
        """Wait for the run to end; after ``timeout`` seconds return anyway (``status`` is then
        still ``running``). ``stream="stdout"`` prints that stream meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        printed = 0
        while self.returncode is None and (deadline is None or time.monotonic() < deadline):
            if stream:
                text = self.command_obj.lines[stream]
                for line in text[printed:]:
                    print(line, end="")
                printed = len(text)
            await asyncio.sleep(_POLL_SECONDS)
        if stream:
            for line in self.command_obj.lines[stream][printed:]:
                print(line, end="")
        return self

    async def stream_log(self, stream: str, position: int | None = None) -> AsyncIterator[tuple[int, str]]:
        """``(position, line)`` for each line of ``stream`` as it is printed, until the run ends.
        The position is the line's index: pass the last one plus one to carry on later."""
        self.command_obj.text(stream)  # checks the name
        index = position or 0
        lines = self.command_obj.lines[stream]
        while True:
            finished = self.returncode is not None
            while index < len(lines):
                yield index, lines[index].rstrip("\n")
                index += 1
            if finished:
                return
            await asyncio.sleep(_POLL_SECONDS)

    def kill(self) -> None:
        """Stop the run's subprocess (its runtime records the run as failed or crashed)."""
        if self.command_obj.process.poll() is None:
            self.command_obj.process.terminate()

    def __repr__(self) -> str:
        return f"ExecutingRun({self.run.pathspec!r}, status={self.status!r})"


class Runner:
    """Runs a flow file in subprocesses: ``run``/``resume`` block until the run ends,
    ``async_run``/``async_resume`` return once it has started."""

    def __init__(self, flow_file: str, show_output: bool = True, profile: str | None = None,
                 env: Mapping[str, str] | None = None, cwd: str | None = None, file_read_timeout: int = 3600,
                 **kwargs: Any):
        self.flow_file = str(flow_file)
        self.show_output = show_output
        self.env = environment(env, profile)
        self.cwd = cwd
        self.file_read_timeout = file_read_timeout
        self.top_level = options(kwargs, TOP_LEVEL - {"decospecs", "with_"}, "Runner()")
        self.decospecs = options({k: v for k, v in kwargs.items() if k in ("decospecs", "with_")},
                                 {"decospecs", "with_"}, "Runner()")
        self._temp_dirs: list[str] = []

    # -- context manager ----------------------------------------------------------------------

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    async def __aenter__(self) -> "Runner":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the temporary files of this Runner's runs (their run-id files)."""
        for folder in self._temp_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._temp_dirs.clear()

    # -- runs ---------------------------------------------------------------------------------

    def run(self, **kwargs: Any) -> ExecutingRun:
        """Run the flow and wait for it to end. ``kwargs``: the flow's parameters and run
        options (``tags=[…]``, ``max_workers=…``)."""
        return self._finished(self._start("run", options(kwargs, RUN_OPTIONS, "run()", parameters=True),
                                          self.show_output))

    def resume(self, **kwargs: Any) -> ExecutingRun:
        """Resume a run (``origin_run_id=…``, ``step_to_rerun=…``) and wait for it to end."""
        return self._finished(self._start("resume", options(kwargs, RESUME_OPTIONS, "resume()"), self.show_output))

    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        """Start the flow; return once its run exists (``await result.wait()`` for the end)."""
        return await self._async_start("run", options(kwargs, RUN_OPTIONS, "async_run()", parameters=True))

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        return await self._async_start("resume", options(kwargs, RESUME_OPTIONS, "async_resume()"))

    def _finished(self, started: tuple[CommandProcess, str]) -> ExecutingRun:
        command, run_id_file = started
        while (run := self._run_of(command, run_id_file)) is None:
            time.sleep(_POLL_SECONDS)
        command.wait()
        return ExecutingRun(self, command, run)

    async def _async_start(self, verb: str, words: list[str]) -> ExecutingRun:
        command, run_id_file = self._start(verb, words, show_output=False)
        while (run := self._run_of(command, run_id_file)) is None:
            await asyncio.sleep(_POLL_SECONDS)
        return ExecutingRun(self, command, run)

    def _start(self, verb: str, words: list[str], show_output: bool) -> tuple[CommandProcess, str]:
        folder = tempfile.mkdtemp(prefix="flow-runner-")
        self._temp_dirs.append(folder)
        run_id_file = os.path.join(folder, "run-id")
        rest = [*words, *self.decospecs, "--run-id-file", run_id_file]
        command = CommandProcess(flow_command(self.top_level, verb, self.flow_file, rest), self.env, self.cwd,
                                 show_output)
        return command, run_id_file

    def _run_of(self, command: CommandProcess, run_id_file: str) -> Run | None:
        """The run once its id is in the file; None while waiting; an error when the command
        ended without starting a run or the wait exceeds ``file_read_timeout``."""
        ended = command.returncode is not None  # before reading: an ended command's file is final
        path = Path(run_id_file)
        run_id = path.read_text().strip() if path.exists() else ""
        run = find_run(self._flow_path(), run_id) if run_id else None
        if run is not None:
            return run
        unreadable = ("\n\nIts run id did not lead to a run this process can read; does this process have the "
                      "subprocess's METAFLOW_* settings?") if run_id else ""
        if ended:
            raise RuntimeError(command.failure() + unreadable)
        if time.monotonic() - command.started > self.file_read_timeout:
            command.process.kill()
            raise RuntimeError(f"{command.failure()}\n\nNo run started within {self.file_read_timeout}s.{unreadable}")
        return None

    def _flow_path(self) -> Path:
        path = Path(self.flow_file)
        return path if path.is_absolute() or self.cwd is None else Path(self.cwd) / path


def find_run(flow_file: Path, run_id: str) -> Run | None:
    """The Client ``Run`` with this id of the flow defined in ``flow_file``. The flow's name is
    a class name in the file (read, not imported: the flow runs elsewhere); the metadata says
    which of them has the run."""
    try:
        tree = ast.parse(flow_file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    names = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    for name in reversed(names):  # the flow usually comes last, after its base classes
        try:
            return Run(f"{name}/{run_id}", _namespace_check=False)
        except (FlowError, ValueError):
            continue
    return None
