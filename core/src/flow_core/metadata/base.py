"""The metadata-backend interface and the records it returns.

The metadata backend is the index of everything that ever ran: it allocates run and task
ids, records each task attempt's life, its artifacts and metadata fields, and answers the
queries behind the Client API. Artifact *data* lives in the datastore; this records pointers.

Ids are strings at this interface (they are pathspec components), even where a backend
stores them as integers. Writes are few and batched: a task costs a start and a finish call.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar, Iterable, Iterator, Mapping, Sequence

import attrs

if TYPE_CHECKING:
    from ..settings import Settings

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


class MetadataBackend(ABC):
    """Records runs and answers queries about them. Safe to use from several threads and
    from several processes at once (two runs of one flow may start in the same second).

    Register one through the ``flow_metadata_backends`` hook; see `flow_core.hookspecs`.
    """

    #: The name configuration selects this backend by (``METAFLOW_DEFAULT_METADATA``).
    name: ClassVar[str]
    #: True when only this machine can reach the records (a local database): a task on
    #: remote compute then hands its records back through the datastore instead.
    local_only: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: "Settings") -> "MetadataBackend":
        """Build the backend from configuration."""

    @abstractmethod
    def describe(self) -> str:
        """Where the records live, for messages (``local@/home/me/.flow``, ``service@https://…``)."""

    # -- write side ---------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the writes made inside the block into as few round trips as the backend can
        (one transaction, one request): the local runtime records many short tasks this way.
        The default makes each write as it comes, which is always correct."""
        yield

    @abstractmethod
    def new_run(
        self,
        flow_name: str,
        user: str,
        tags: Iterable[str] = (),
        system_tags: Iterable[str] = (),
        origin_run_id: str | None = None,
    ) -> RunRecord:
        """Allocate a run id unique for this flow and record the run as running."""

    @abstractmethod
    def finish_run(self, flow_name: str, run_id: str, succeeded: bool) -> None:
        """Mark the run succeeded or failed."""

    @abstractmethod
    def heartbeat_run(self, flow_name: str, run_id: str) -> None:
        """Say the run's runtime is alive (called periodically while it runs)."""

    @abstractmethod
    def new_tasks(self, flow_name: str, run_id: str, step_name: str, count: int = 1) -> list[str]:
        """Register the step if new and allocate ``count`` task ids, unique within the run."""

    @abstractmethod
    def start_attempt(
        self,
        flow_name: str,
        run_id: str,
        step_name: str,
        task_id: str,
        attempt: int,
        fields: Mapping[str, str] = {},
    ) -> None:
        """Record that an attempt of the task started, with metadata fields in the same call."""

    @abstractmethod
    def finish_attempt(
        self,
        flow_name: str,
        run_id: str,
        step_name: str,
        task_id: str,
        attempt: int,
        succeeded: bool,
        artifacts: Sequence[ArtifactRecord] = (),
        fields: Mapping[str, str] = {},
    ) -> None:
        """Record the attempt's outcome, its artifacts and further fields, atomically."""

    @abstractmethod
    def add_run_tags(self, flow_name: str, run_id: str, tags: Iterable[str]) -> None:
        """Add user tags to a run."""

    @abstractmethod
    def remove_run_tags(self, flow_name: str, run_id: str, tags: Iterable[str]) -> None:
        """Remove user tags from a run (system tags cannot be removed)."""

    # -- read side ----------------------------------------------------------------------

    @abstractmethod
    def list_flows(self) -> list[FlowRecord]:
        """Every flow that has at least one run, by name."""

    @abstractmethod
    def list_runs(self, flow_name: str, tags: Iterable[str] = (), limit: int | None = None) -> list[RunRecord]:
        """Runs of the flow carrying every tag in ``tags`` (user or system), newest first."""

    @abstractmethod
    def get_run(self, flow_name: str, run_id: str) -> RunRecord | None:
        """One run, or None."""

    @abstractmethod
    def list_steps(self, flow_name: str, run_id: str) -> list[StepRecord]:
        """The steps of a run that have at least one task, in the order they were reached."""

    @abstractmethod
    def list_tasks(self, flow_name: str, run_id: str, step_name: str | None = None) -> list[TaskRecord]:
        """Tasks of a run (of one step if given), ordered by task id."""

    @abstractmethod
    def get_task(self, flow_name: str, run_id: str, step_name: str, task_id: str) -> TaskRecord | None:
        """One task, or None."""

    @abstractmethod
    def list_artifacts(
        self, flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int | None = None
    ) -> list[ArtifactRecord]:
        """Artifacts of one attempt (the latest started when ``attempt`` is None), by name."""

    @abstractmethod
    def list_metadata(self, flow_name: str, run_id: str, step_name: str, task_id: str) -> list[MetadataField]:
        """Every metadata field of every attempt of the task, oldest first."""
