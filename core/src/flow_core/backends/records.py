"""The records of what ran: runs, steps, tasks, artifacts and metadata fields.

The metadata backend speaks them and the datastore writes `ArtifactRecord`s, so they sit in
a module of their own below both.
"""

from __future__ import annotations

import time
from typing import Iterable

import attrs

#: Run and task states.
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"

#: A running run whose heartbeat is older than this many seconds is taken to have crashed.
HEARTBEAT_TIMEOUT = 60.0


def _tags(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class FlowRecord:
    name: str
    created_at: float


@attrs.frozen
class RunRecord:
    flow_name: str
    run_id: str
    user: str
    created_at: float
    status: str = RUNNING
    finished_at: float | None = None
    heartbeat_at: float | None = None
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=_tags)
    system_tags: frozenset[str] = attrs.field(default=frozenset(), converter=_tags)
    origin_run_id: str | None = None

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}"

    @property
    def crashed(self) -> bool:
        """Still marked running, but its runtime stopped sending heartbeats."""
        last = self.heartbeat_at or self.created_at
        return self.status == RUNNING and time.time() - last > HEARTBEAT_TIMEOUT


@attrs.frozen
class StepRecord:
    flow_name: str
    run_id: str
    step_name: str
    created_at: float

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step_name}"


@attrs.frozen
class TaskRecord:
    flow_name: str
    run_id: str
    step_name: str
    task_id: str
    created_at: float
    #: Number of the latest attempt started (0 is the first), or -1 before any started.
    attempt: int = -1
    status: str = RUNNING
    finished_at: float | None = None

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step_name}/{self.task_id}"


@attrs.frozen
class ArtifactRecord:
    """Where one artifact of one task attempt lives in the datastore."""

    name: str
    key: str  # content key in the datastore
    type: str  # qualified type name of the value, e.g. "builtins.dict"
    size: int  # encoded size in bytes
    encoding: str  # "msgpack" or "pickle"
    attempt: int = 0


@attrs.frozen
class MetadataField:
    """A free-form fact about a task attempt (host, pid, foreach index, exit code, ...)."""

    field: str
    value: str
    type: str = ""
    attempt: int = 0
    created_at: float = 0.0

    @property
    def name(self) -> str:
        """The field's name, under Metaflow's name for it."""
        return self.field
