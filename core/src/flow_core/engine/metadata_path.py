"""The metadata write path: how a task's records reach the metadata backend.

This module alone decides it; the runtime, the task and the computes ask it. There are
three routes:

- **direct**: the task opens the metadata backend and writes its records itself. This is how
  a task started by ``flow step`` on its own (an orchestrator's task, ``--compute
  subprocess``, Batch with the metadata service) works, and such a task also keeps its run's
  heartbeat, since there may be no runtime to do it.
- **channel**: a task forked by the local fork server writes its two records (attempt started,
  attempt finished) as msgpack frames on its channel to the runtime, and the local compute applies them in
  batches, many tasks to one transaction: a thousand short tasks cost a few transactions
  instead of two thousand, and no task pays for opening the database.
- **datastore**: a task on remote compute cannot reach a local-only metadata backend (the
  SQLite file on the laptop that started the run), so it stores the same records beside its
  attempt in the datastore, and the runtime applies them when the task ends, as Metaflow's
  local metadata does with a Batch task.

Whatever the route, a task is never reported finished before its records are written.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import msgpack

from flow_core.backends.compute import ComputeBackend, TaskSpec
from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.records import ArtifactRecord
from flow_core.backends.selection import Backends
from flow_core.backends.storage import StorageBackend
from flow_core.datastore.task_store import task_prefix
from flow_core.engine.fork_protocol import FRAME, write_frame
from flow_core.errors import BlobNotFound, FlowError

#: Set in a remote task's environment when its records go through the datastore.
RELAY_THROUGH_DATASTORE = "FLOW_METADATA_THROUGH_DATASTORE"


def route_environment(compute: ComputeBackend, metadata: MetadataBackend) -> dict[str, str]:
    """What a task launched on ``compute`` needs in its environment to take the right route."""
    return {RELAY_THROUGH_DATASTORE: "1"} if compute.remote and metadata.local_only else {}


def writes_through_datastore(spec: TaskSpec) -> bool:
    return bool(spec.environment.get(RELAY_THROUGH_DATASTORE))


def task_metadata(backends: Backends, environ: Mapping[str, str]) -> tuple[Any, bool]:
    """The metadata a task started as a process of its own writes to, and whether it keeps
    the run's heartbeat (it does when it writes directly: nobody else may be alive)."""
    if environ.get(RELAY_THROUGH_DATASTORE):
        return StoredMetadataRelay(backends.storage), False
    return backends.metadata, True


def apply_stored_records(metadata: MetadataBackend, storage: StorageBackend, spec: TaskSpec) -> str | None:
    """Write what a task on the datastore route stored; say why if that failed."""
    try:
        apply_relayed(metadata, stored_calls(storage, spec.flow_name, spec.run_id, spec.step_name,
                                             spec.task_id, spec.retry_count))
    except FlowError as exc:
        return f"its metadata could not be recorded: {exc}"
    return None


class _Relay:
    """Stands in for the metadata backend inside a task the runtime launched (only the calls
    such a task makes: its ids were allocated by the runtime, so it registers nothing)."""

    def _send(self, call: str, *args: Any) -> None:
        raise NotImplementedError

    def start_attempt(self, flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int,
                      fields: Mapping[str, str] = {}) -> None:
        self._send("start_attempt", flow_name, run_id, step_name, task_id, attempt, dict(fields))

    def finish_attempt(self, flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int,
                       succeeded: bool, artifacts: Sequence[ArtifactRecord] = (),
                       fields: Mapping[str, str] = {}) -> None:
        records = [[a.name, a.key, a.type, a.size, a.encoding, a.attempt] for a in artifacts]
        self._send("finish_attempt", flow_name, run_id, step_name, task_id, attempt, succeeded, records,
                   dict(fields))


class MetadataRelay(_Relay):
    """Writes each call as a frame on the channel to the runtime (a forked task)."""

    def __init__(self, fd: int):
        self.fd = fd

    def _send(self, call: str, *args: Any) -> None:
        write_frame(self.fd, [call, list(args)])


def relay_key(flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int) -> str:
    return f"{task_prefix(flow_name, run_id, step_name, task_id)}{attempt}.metadata"


class StoredMetadataRelay(_Relay):
    """Keeps the attempt's calls in one datastore blob, rewritten after each call, so that
    the start of an attempt is on record even if the task dies before it finishes."""

    def __init__(self, storage: StorageBackend):
        self.storage = storage
        self.calls: list[list] = []

    def _send(self, call: str, *args: Any) -> None:
        self.calls.append([call, list(args)])
        self.storage.put(relay_key(*args[:5]), msgpack.packb(self.calls))


def stored_calls(storage: StorageBackend, flow_name: str, run_id: str, step_name: str, task_id: str,
                 attempt: int) -> list[tuple[str, list]]:
    """What a remote task stored with `StoredMetadataRelay` (nothing if it never started)."""
    try:
        blob = storage.get(relay_key(flow_name, run_id, step_name, task_id, attempt))
    except BlobNotFound:
        return []
    return [(call, args) for call, args in msgpack.unpackb(blob)]


class RelayedCalls:
    """The receiving end of one task's channel: collects its calls into ``pending`` (which
    several tasks' receivers may share) as frames arrive."""

    def __init__(self, pending: list[tuple[str, list]]) -> None:
        self._buffer = b""
        self.pending = pending

    def feed(self, data: bytes, requests: tuple[str, ...] = ()) -> list[str]:
        """Collect the metadata calls in ``data``; return the ``requests`` among its calls,
        which the caller answers instead."""
        self._buffer += data
        asked = []
        while len(self._buffer) >= FRAME.size:
            (size,) = FRAME.unpack_from(self._buffer)
            if len(self._buffer) < FRAME.size + size:
                break
            call, args = msgpack.unpackb(self._buffer[FRAME.size: FRAME.size + size])
            self._buffer = self._buffer[FRAME.size + size:]
            if call in requests:
                asked.append(call)
            else:
                self.pending.append((call, args))
        return asked

def apply_relayed(backend: MetadataBackend, calls: list[tuple[str, list]]) -> None:
    """Make the collected writes, in order, in one batch."""
    if not calls:
        return
    with backend.batch():
        for call, args in _decoded(calls):
            getattr(backend, call)(*args)


def _decoded(calls: list[tuple[str, list]]) -> Iterator[tuple[str, list]]:
    for call, args in calls:
        if call == "finish_attempt":
            args = [*args[:6], [ArtifactRecord(*record) for record in args[6]], args[7]]
        elif call != "start_attempt":
            raise ValueError(f"a task relayed an unexpected metadata call {call!r}")
        yield call, args
