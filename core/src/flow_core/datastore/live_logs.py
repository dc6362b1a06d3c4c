"""Where a running attempt's output lives until the attempt commits.

A task saves what it has printed so far, now and then, so that readers (``task.stdout``, the
UI) see a long task's output while it runs. Each save overwrites one blob per stream::

    flows/<flow>/<run>/<step>/<task>/<attempt>.<stream>.live

The name ends neither in ``.index`` nor under ``cards/``, so nothing that lists a task's or a
run's keys for committed attempts (`task_store`, `run_check`, `card_store`) takes it for one.
Once the attempt commits, its index holds the final logs and readers look there first; the
live copies are then removed where the storage can delete, and otherwise left behind,
harmless. The copy of an attempt that died before committing stays: it is all that is left
of that attempt's output.
"""

from __future__ import annotations

from flow_core.backends.storage import StorageBackend
from flow_core.datastore.task_store import task_prefix
from flow_core.errors import BlobNotFound

LIVE_SUFFIX = ".live"
STREAMS = ("stdout", "stderr")


def live_log_key(pathspec: str, attempt: int, stream: str) -> str:
    flow, run, step, task = pathspec.split("/")
    return f"{task_prefix(flow, run, step, task)}{attempt}.{stream}{LIVE_SUFFIX}"


def save_live_logs(storage: StorageBackend, pathspec: str, attempt: int, logs: dict[str, bytes]) -> None:
    """Overwrite the attempt's live copy of each stream given (one batched write)."""
    storage.put_many([(live_log_key(pathspec, attempt, stream), data) for stream, data in logs.items()])


def read_live_log(storage: StorageBackend, pathspec: str, attempt: int, stream: str) -> bytes | None:
    """What the attempt had written on ``stream`` at its last save; None if it never saved."""
    try:
        return storage.get(live_log_key(pathspec, attempt, stream))
    except BlobNotFound:
        return None


def remove_live_logs(storage: StorageBackend, pathspec: str, attempt: int) -> None:
    """Remove the attempt's live copies, best effort: a storage that cannot delete, or a
    failed delete, leaves them, and readers then prefer the committed index anyway."""
    try:
        storage.delete_many([live_log_key(pathspec, attempt, stream) for stream in STREAMS])
    except Exception:  # noqa: BLE001 -- leftovers are harmless; the task's outcome must not change
        pass
