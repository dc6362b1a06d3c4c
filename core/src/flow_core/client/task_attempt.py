"""What ``Task(pathspec, attempt=N)`` and a running task's output need: which attempt is
asked for, and where that attempt's logs are (its committed index, else its live copy).

As Metaflow's, an attempt that never ran is not an error: it is an attempt that has no data
(yet), since a reader cannot tell "not yet" from "never". A number that cannot be an
attempt is refused.
"""

from __future__ import annotations

from flow_core.backends.storage import StorageBackend
from flow_core.datastore.live_logs import read_live_log
from flow_core.datastore.task_store import TaskDataStore
from flow_core.errors import NotFound


def chosen_attempt(attempt: int | str | None, pathspec: str) -> int | None:
    """The attempt number asked for (None: the latest), from an int or a string of digits."""
    if attempt is None:
        return None
    if isinstance(attempt, bool) or not isinstance(attempt, (int, str)) or (
            isinstance(attempt, str) and not (attempt.isascii() and attempt.isdigit())):
        raise NotFound(f"attempt {attempt!r} of task {pathspec} cannot exist; attempts are numbered 0, 1, 2, …")
    number = int(attempt)
    if number < 0:
        raise NotFound(f"attempt {number} of task {pathspec} cannot exist; attempts are numbered 0, 1, 2, …")
    return number


def attempt_log(storage: StorageBackend, store: TaskDataStore | None, pathspec: str, attempt: int,
                stream: str) -> bytes:
    """The output of ``attempt`` on ``stream``: from its index once it committed; while it
    runs (or if it died before committing), what it last saved of it; else nothing.
    ``store`` is the committed attempt the reader holds, if any (maybe an earlier one)."""
    if store is not None and store.attempt == attempt:
        return store.log(stream)
    live = read_live_log(storage, pathspec, attempt, stream)
    return live if live is not None else b""
