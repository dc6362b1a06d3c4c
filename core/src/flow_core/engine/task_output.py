"""What a running task has written, as the runtime saw it stream by.

A task stores its own output when its attempt ends. A task that dies first -- a segfault in a
C extension, the kernel's OOM killer, SIGKILL -- stores nothing, yet the runtime has seen its
output pass on the way to the console. So the runtime keeps the tail of each stream while the
task runs and, if the task ends without committing its attempt, commits one with that output
and the reason it failed: output is data, and a crash is exactly when it is needed.
"""

from __future__ import annotations

import signal
from collections import deque

from flow_core.backends.compute import TaskSpec
from flow_core.datastore.task_store import FlowDataStore
from flow_core.errors import FlowError

#: How much of each stream the runtime keeps per running task (the end is what explains a crash).
TAIL_BYTES = 4 * 1024 * 1024
#: The longest line of a task's own output quoted as the reason it failed.
MAX_REASON_LENGTH = 500
#: Lines of a Python traceback's frame that say nothing of the cause.
_TRACEBACK_NOISE = ("Traceback (most recent call last):", "During handling of the above exception",
                    "The above exception was the direct cause")


class TaskOutput:
    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self.limit = limit
        self._tails: dict[str, deque[str]] = {"stdout": deque(), "stderr": deque()}
        self._sizes = {"stdout": 0, "stderr": 0}
        self.dropped = {"stdout": 0, "stderr": 0}
        self._error: str | None = None
        self._line: str | None = None

    def hear(self, stream: str, line: str) -> None:
        tail = self._tails.setdefault(stream, deque())
        text = line if line.endswith("\n") else line + "\n"
        tail.append(text)
        self._sizes[stream] = self._sizes.get(stream, 0) + len(text)
        while self._sizes[stream] > self.limit and len(tail) > 1:
            dropped = tail.popleft()
            self._sizes[stream] -= len(dropped)
            self.dropped[stream] = self.dropped.get(stream, 0) + len(dropped)
        if stream == "stderr":
            self._hear_why(line)

    def _hear_why(self, line: str) -> None:
        """Remember the last ``Error: …`` line (how Flow reports a FlowError), and the last
        line that is neither blank nor part of a traceback's frames."""
        text = line.strip()
        if not text or line[:1].isspace() or text.startswith(_TRACEBACK_NOISE):
            return
        if text.startswith("Error: "):
            self._error = text.removeprefix("Error: ")[:MAX_REASON_LENGTH]
        self._line = text[:MAX_REASON_LENGTH]

    def describe(self, returncode: int) -> str:
        """Why the task failed, from what it said, for when it could not record its exception."""
        if self._error:
            return self._error
        if self._line:
            return f"exited with status {returncode}: {self._line}"
        return f"exited with status {returncode}"

    def text(self, stream: str) -> bytes:
        head = f"[the first {self.dropped[stream]} bytes are not kept]\n" if self.dropped.get(stream) else ""
        return (head + "".join(self._tails.get(stream, ()))).encode("utf-8", "replace")

    def keep_if_lost(self, datastore: FlowDataStore, spec: TaskSpec, why: str, returncode: int = 1) -> None:
        """Commit the attempt with this output if the task died before committing it itself;
        a task a signal killed gets a last line on its stderr saying which, as Metaflow's does."""
        try:
            attempts = datastore.committed_attempts(spec.flow_name, spec.run_id, spec.step_name, spec.task_id)
            if spec.retry_count in attempts:
                return
            if returncode < 0:
                self.hear("stderr", killed_by(returncode))
            store = datastore.task(spec.flow_name, spec.run_id, spec.step_name, spec.task_id, spec.retry_count)
            for stream in ("stdout", "stderr"):
                store.save_log(stream, self.text(stream))
            store.info.success = False
            store.info.exception = why
            store.commit()
        except FlowError:
            pass  # the datastore may be what failed; the run's summary still says why


def killed_by(returncode: int) -> str:
    """What a task's negative exit status (killed by a signal) means, as one sentence."""
    if returncode == -signal.SIGSEGV:
        return "Task failed with a segmentation fault."
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"Task was killed by {name}."
