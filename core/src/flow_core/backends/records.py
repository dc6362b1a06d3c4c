"""The records of what ran: runs, steps, tasks, artifacts and metadata fields.

The metadata backend speaks them and the datastore writes `ArtifactRecord`s, so they sit in
a module of their own below both.
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

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
class AttemptRecord:
    """One attempt of one task and when it ran: what a run's timeline draws, for every
    attempt of a run at once (`MetadataBackend.list_attempts`)."""

    step_name: str
    task_id: str
    attempt: int
    started_at: float
    #: When the attempt ended; None while it runs.
    finished_at: float | None = None
    status: str = RUNNING

    @property
    def running(self) -> bool:
        return self.status == RUNNING


def close_superseded(attempts: Sequence[AttemptRecord]) -> list[AttemptRecord]:
    """The attempts (each task's together, in attempt order), with one that never recorded
    its end but was followed by another of its task marked failed, ending where the next
    began: a retry follows only a failure, and a killed attempt had no chance to say so."""
    out = []
    for record, following in zip(attempts, [*attempts[1:], None]):
        if (record.finished_at is None and following is not None
                and (following.step_name, following.task_id) == (record.step_name, record.task_id)):
            record = attrs.evolve(record, finished_at=following.started_at, status=FAILED)
        out.append(record)
    return out


def attempts_from_fields(task: TaskRecord, fields: Iterable[MetadataField]) -> list[AttemptRecord]:
    """A task's attempts as its record and metadata fields tell them: each starts with its
    first field, an earlier one ends where the next starts (failed: a retry follows only a
    failure), the latest ends as the task did."""
    starts: dict[int, float] = {}
    for field in fields:
        if field.attempt not in starts or field.created_at < starts[field.attempt]:
            starts[field.attempt] = field.created_at
    if task.attempt >= 0 and task.attempt not in starts:
        starts[task.attempt] = task.created_at
    numbers = sorted(starts)
    out = []
    for number, following in zip(numbers, [*numbers[1:], None]):
        if following is not None:
            out.append(AttemptRecord(task.step_name, task.task_id, number, starts[number], starts[following], FAILED))
        else:
            end = task.finished_at if task.status != RUNNING else None
            out.append(AttemptRecord(task.step_name, task.task_id, number, starts[number], end, task.status))
    return out


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
