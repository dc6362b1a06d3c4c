"""The portable local compute: each task is the task command line, run as a new process.

It is what a remote backend runs in its container, so ``--compute subprocess`` checks a flow
the way Batch will run it; the default ``local`` backend forks tasks from a warm process instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import IO, TYPE_CHECKING

from flow_core.backends.compute import ComputeBackend, TaskEvents, TaskHandle, TaskSpec
from flow_core.plugin.settings import Settings

if TYPE_CHECKING:
    from flow_core.backends.selection import Backends


class LocalProcessHandle(TaskHandle):
    def __init__(self, process: subprocess.Popen):
        self.process = process

    def terminate(self) -> None:
        if self.process.poll() is None:
            try:
                # The task leads its own process group: stop whatever it started too.
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


class SubprocessCompute(ComputeBackend):
    """Runs the task command line as a child process and streams its output line by line."""

    name = "subprocess"

    @classmethod
    def from_settings(cls, settings: Settings, backends: Backends) -> "SubprocessCompute":
        return cls()

    def launch(self, spec: TaskSpec, events: TaskEvents) -> TaskHandle:
        env = {**os.environ, **spec.environment, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            spec.command(),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the runtime, which stops tasks in order
        )
        readers = [
            threading.Thread(target=_pump, args=(process.stdout, spec, "stdout", events), daemon=True),
            threading.Thread(target=_pump, args=(process.stderr, spec, "stderr", events), daemon=True),
        ]
        for reader in readers:
            reader.start()

        def wait() -> None:
            for reader in readers:
                reader.join()
            returncode = process.wait()
            events.finished(spec, returncode, killed_reason(returncode))

        threading.Thread(target=wait, daemon=True).start()
        return LocalProcessHandle(process)


def killed_reason(returncode: int) -> str | None:
    """Why a task that could not report its own failure ended, from its exit status."""
    if returncode < 0:
        return f"the task's process was killed by signal {signal.Signals(-returncode).name}"
    return None


def _pump(pipe: IO[bytes], spec: TaskSpec, stream: str, events: TaskEvents) -> None:
    with pipe:
        for raw in iter(pipe.readline, b""):
            events.output(spec, stream, raw.decode("utf-8", "replace").rstrip("\n"))
