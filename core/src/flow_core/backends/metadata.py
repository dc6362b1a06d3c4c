"""The metadata-backend interface and the records it returns.

The metadata backend is the index of everything that ever ran: it allocates run and task
ids, records each task attempt's life, its artifacts and metadata fields, and answers the
queries behind the Client API. Artifact *data* lives in the datastore; this records pointers.

Ids are strings at this interface (they are pathspec components), even where a backend
stores them as integers. A run or task id is either a number the backend allocated or a name
a caller chose (an orchestrator's, so that its retries keep their ids); names are never all
digits, so the two cannot collide. Writes are few and batched: a task costs a start and a
finish call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar, Iterable, Iterator, Mapping, Sequence

if TYPE_CHECKING:
    from flow_core.plugin.settings import Settings

from flow_core.backends.records import (
    ArtifactRecord,
    AttemptRecord,
    FlowRecord,
    MetadataField,
    RunRecord,
    StepRecord,
    TaskRecord,
    attempts_from_fields,
)
from flow_core.errors import MetadataError


class MetadataBackend(ABC):
    """Records runs and answers queries about them. Safe to use from several threads and
    from several processes at once (two runs of one flow may start in the same second).

    Register one through the ``flow_metadata_backends`` hook; see `flow_core.plugin.hookspecs`.
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

    @staticmethod
    def check_name(kind: str, name: str) -> str:
        """Return ``name`` if it may be a caller-chosen ``kind`` ("run", "task") id, else raise:
        every backend refuses the same names, so an orchestrator's ids work on any of them."""
        if not isinstance(name, str) or not name:
            raise MetadataError(f"a chosen {kind} id must be a non-empty string, not {name!r}")
        if name.isascii() and name.isdigit():
            raise MetadataError(f"{name!r} cannot be a chosen {kind} id because ids of digits only are the "
                                "numbers the metadata backend allocates")
        if "/" in name or "\x00" in name:
            raise MetadataError(f"{name!r} cannot be a chosen {kind} id because it contains '/' or a NUL character")
        return name

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
        run_id: str | None = None,
    ) -> RunRecord:
        """Allocate a run id unique for this flow and record the run as running.

        With ``run_id`` the caller names the run instead (see `check_name`), so that an
        orchestrator retrying the state that created it finds the same run: if the flow has a
        run of that name already, its record is returned unchanged (the tags given are ignored).
        """

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
    def register_tasks(self, flow_name: str, run_id: str, step_name: str, task_ids: Sequence[str]) -> None:
        """Register the step if new and tasks under ids the caller chose (names, see
        `check_name`): an orchestrator runs tasks without a Flow runtime and must find the same
        task when it retries. Tasks registered already are left as they are; a missing run
        raises `NotFound`. Named tasks then work everywhere a task id is taken, and may share
        a run with numbered ones."""

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
        """Tasks of a run (of one step if given), numbered ones by task id; where named ones
        fall among them is the backend's choice."""

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

    def list_attempts(self, flow_name: str, run_id: str) -> list[AttemptRecord]:
        """Every attempt of every task of the run, with when it started and ended and how:
        each task's in attempt order, the tasks as `list_tasks` orders them. A run's timeline
        needs them all at once.

        This default asks for each task's metadata fields, a query per task; a backend that
        can answer in one query overrides it. An attempt's start is its first field, an earlier
        attempt ends where the next starts."""
        attempts: list[AttemptRecord] = []
        for task in self.list_tasks(flow_name, run_id):
            if task.attempt >= 0:
                fields = self.list_metadata(flow_name, run_id, task.step_name, task.task_id)
                attempts.extend(attempts_from_fields(task, fields))
        return attempts
