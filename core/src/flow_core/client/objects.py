"""The Client API objects: Metaflow, Flow, Run, Step, Task and DataArtifact.

They mirror Metaflow's client so notebook code carries over with a changed import. Every
object is a thin view over metadata records; artifact values are read from the datastore
only when touched, and once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import attrs

from flow_core.backends.records import RUNNING, SUCCEEDED, ArtifactRecord, MetadataField, RunRecord, TaskRecord
from flow_core.client.code import FlowCode
from flow_core.client.exception import TaskException
from flow_core.client.lineage import child_pathspecs, parent_pathspecs
from flow_core.client.namespace import backends, get_namespace
from flow_core.client.step_extras import StepNeighbours
from flow_core.client.task_attempt import attempt_log, chosen_attempt
from flow_core.client.task_data import TaskArtifacts, TaskData
from flow_core.client.trigger import Trigger
from flow_core.datastore.task_store import TaskDataStore
from flow_core.errors import FlowError, NotFound
from flow_core.model.flowspec import is_internal_artifact
from flow_core.model.foreach import stack_from_info
from flow_core.model.names import TAG_RULE, tag_problem, text_problem

HIDDEN_STEP_PREFIX = "_"  # _parameters: where the run's parameters live, not a user step
LOG_STREAMS = ("stdout", "stderr")
#: Metadata fields under Metaflow's name → the name older Flow versions wrote.
METADATA_ALIASES = {"python_version": "python-version"}


class NamespaceMismatch(FlowError):
    """The object exists, but not in the namespace in force."""


class TaggingError(FlowError):
    """A tag change the Client API refuses (empty tags, system tags)."""


def _time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value) if value is not None else None


def _split(pathspec: str, parts: int, kind: str) -> list[str]:
    pieces = pathspec.strip("/").split("/") if isinstance(pathspec, str) else []
    if len(pieces) != parts or not all(pieces):
        example = "/".join(["Flow", "run_id", "step", "task_id"][:parts])
        raise NotFound(f"{pathspec!r} is not a {kind} pathspec; a {kind} is named {example}")
    for piece in pieces:
        # Nothing Flow stored has such a name, and no backend could even be asked for it.
        problem = text_problem(piece)
        if problem:
            raise NotFound(f"{kind} {pathspec!r} cannot exist: {problem}; check the pathspec")
    return pieces


class ClientObject:
    """What every object has: ``pathspec``, ``id``, ``parent``, iteration and ``obj["child"]``."""

    _kind = "object"

    pathspec: str

    @property
    def id(self) -> str:
        return self.pathspec.rsplit("/", 1)[-1]

    @property
    def path_components(self) -> list[str]:
        """The pathspec's parts: ``["Flow", "run_id", "step", "task_id"]`` for a task."""
        return self.pathspec.split("/") if self.pathspec else []

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError

    def __getitem__(self, child_id: str) -> Any:
        raise NotImplementedError

    def __contains__(self, child_id: str) -> bool:
        try:
            self[child_id]
        except (NotFound, KeyError):
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.pathspec == self.pathspec  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.pathspec))

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.pathspec}')"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by pathspec (``self.task = current.task`` keeps one as an artifact)."""
        return _unpickled, (type(self).__name__, self.pathspec)


def _unpickled(kind: str, pathspec: str) -> ClientObject:
    if kind == "DataArtifact":
        task, name = pathspec.rsplit("/", 1)
        return Task(task, _namespace_check=False)[name]
    cls = globals()[kind]
    return cls() if kind == "Metaflow" else cls(pathspec, _namespace_check=False) if kind in ("Run", "Task") else cls(pathspec)


class Metaflow(ClientObject):
    """Every flow with a run in the current namespace: ``for flow in Metaflow(): …``."""

    pathspec = ""

    @property
    def flows(self) -> list["Flow"]:
        return list(self)

    def __iter__(self) -> Iterator["Flow"]:
        metadata = backends().metadata
        ns = get_namespace()
        for record in metadata.list_flows():
            if ns is None or metadata.list_runs(record.name, tags=[ns], limit=1):
                yield Flow(record.name, _created_at=record.created_at)

    def __getitem__(self, name: str) -> "Flow":
        return Flow(name)

    def __repr__(self) -> str:
        return "Metaflow()"


class Flow(ClientObject):
    """A flow by name; iterating gives its runs in the current namespace, newest first."""

    _kind = "flow"

    def __init__(self, pathspec: str, _created_at: float | None = None):
        (self.pathspec,) = _split(pathspec, 1, "flow")
        if _created_at is None:
            found = [f for f in backends().metadata.list_flows() if f.name == self.pathspec]
            if not found:
                raise NotFound(f"flow '{self.pathspec}' does not exist in {backends().metadata.describe()}")
            _created_at = found[0].created_at
        self._created_at = _created_at

    @property
    def created_at(self) -> datetime:
        return _time(self._created_at)  # type: ignore[return-value]

    @property
    def parent(self) -> None:
        return None

    @property
    def tags(self) -> frozenset[str]:
        """A flow carries no tags: its runs do (as in Metaflow)."""
        return frozenset()

    def runs(self, *tags: str) -> Iterator["Run"]:
        """Runs carrying every one of ``tags`` (and the namespace), newest first."""
        ns = get_namespace()
        for tag in tags:
            if text_problem(tag):
                raise TaggingError(f"{text_problem(tag)}, so no run carries it as a tag")
        wanted = [*tags, *([ns] if ns is not None else [])]
        for record in backends().metadata.list_runs(self.pathspec, tags=wanted):
            yield Run(record.pathspec, _record=record)

    def __iter__(self) -> Iterator["Run"]:
        return self.runs()

    def __getitem__(self, run_id: str) -> "Run":
        return Run(f"{self.pathspec}/{run_id}")

    @property
    def latest_run(self) -> "Run | None":
        return next(self.runs(), None)

    @property
    def latest_successful_run(self) -> "Run | None":
        return next((run for run in self.runs() if run.successful), None)


def _check_namespace(pathspec: str, tags: Iterable[str]) -> None:
    ns = get_namespace()
    if ns is not None and ns not in set(tags):
        raise NamespaceMismatch(
            f"{pathspec} is not in the namespace '{ns}'; call namespace(None) to see every run, "
            f"or namespace('<tag>') for the one it belongs to")


class Run(ClientObject):
    """One run; ``run["train"]`` is a step, ``run.data`` the artifacts of its ``end`` task."""

    _kind = "run"

    def __init__(self, pathspec: str, _record: RunRecord | None = None, _namespace_check: bool = True):
        flow_name, run_id = _split(pathspec, 2, "run")
        self.pathspec = f"{flow_name}/{run_id}"
        record = _record or backends().metadata.get_run(flow_name, run_id)
        if record is None:
            raise NotFound(f"run {self.pathspec} does not exist in {backends().metadata.describe()}")
        if _namespace_check:
            _check_namespace(self.pathspec, record.tags | record.system_tags)
        self._record = record

    def _refresh(self, added: Iterable[str] = (), removed: Iterable[str] = ()) -> None:
        """Re-read the run; tags this object just changed read as it left them (as Metaflow's)."""
        record = backends().metadata.get_run(self._record.flow_name, self._record.run_id) or self._record
        self._record = attrs.evolve(record, tags=(record.tags | set(added)) - set(removed))

    # -- properties ---------------------------------------------------------------------------

    @property
    def parent(self) -> Flow:
        return Flow(self._record.flow_name)

    @property
    def created_at(self) -> datetime:
        return _time(self._record.created_at)  # type: ignore[return-value]

    @property
    def finished_at(self) -> datetime | None:
        return _time(self._record.finished_at)

    @property
    def finished(self) -> bool:
        """The run got to the end of its ``end`` step (Metaflow's meaning: a failed run is not finished)."""
        return self._record.status == SUCCEEDED

    @property
    def successful(self) -> bool:
        return self._record.status == SUCCEEDED

    @property
    def status(self) -> str:
        """``running``, ``succeeded``, ``failed``, or ``crashed`` (running, but its runtime went silent)."""
        return "crashed" if self._record.crashed else self._record.status

    @property
    def user(self) -> str:
        return self._record.user

    @property
    def user_tags(self) -> frozenset[str]:
        return frozenset(self._record.tags)

    @property
    def system_tags(self) -> frozenset[str]:
        return frozenset(self._record.system_tags)

    @property
    def tags(self) -> frozenset[str]:
        return self.user_tags | self.system_tags

    @property
    def origin_pathspec(self) -> str | None:
        """The run this one resumed, if any."""
        origin = self._record.origin_run_id
        return f"{self._record.flow_name}/{origin}" if origin else None

    @property
    def end_task(self) -> "Task | None":
        try:
            return self["end"].task
        except NotFound:
            return None

    def _start_task(self) -> "Task | None":
        try:
            return self["start"].task
        except NotFound:
            return None

    @property
    def code(self) -> FlowCode | None:
        """The code package the run's tasks ran from (None for a run that needed none)."""
        start = self._start_task()
        return start.code if start is not None else None

    @property
    def trigger(self) -> Trigger | None:
        """The events that started the run (None for a run not started by an event)."""
        start = self._start_task()
        field = start.metadata_dict.get("execution-triggers") if start is not None else None
        return Trigger(field, lambda pathspec: Run(pathspec, _namespace_check=False)) if field else None

    @property
    def data(self) -> "TaskData | None":
        """The artifacts of the ``end`` task (None until it ran)."""
        end = self.end_task
        return end.data if end is not None else None

    # -- children -----------------------------------------------------------------------------

    def steps(self, *tags: str) -> Iterator["Step"]:
        """The run's steps, the most recently started first (Metaflow's order); with ``tags``,
        only if they carry every one (a step carries its run's tags)."""
        if not all(tag in self.tags for tag in tags):
            return
        records = backends().metadata.list_steps(self._record.flow_name, self._record.run_id)
        for record in reversed(records):
            if not record.step_name.startswith(HIDDEN_STEP_PREFIX):
                yield Step(record.pathspec, _run=self)

    def __iter__(self) -> Iterator["Step"]:
        return self.steps()

    def __getitem__(self, step_name: str) -> "Step":
        return Step(f"{self.pathspec}/{step_name}", _run=self)

    # -- tags -------------------------------------------------------------------------------

    def add_tag(self, tag: str | list[str]) -> None:
        self.add_tags(_one_or_more(tag))

    def add_tags(self, tags: Iterable[str]) -> None:
        """Add user tags; a tag that is already a system tag is skipped without error (Metaflow)."""
        tags = [t for t in _valid_tags(tags) if t not in self._record.system_tags]
        if not tags:
            return
        backends().metadata.add_run_tags(self._record.flow_name, self._record.run_id, tags)
        self._refresh(added=tags)

    def remove_tag(self, tag: str | list[str]) -> None:
        self.remove_tags(_one_or_more(tag))

    def remove_tags(self, tags: Iterable[str]) -> None:
        tags = _valid_tags(tags)
        system = [t for t in tags if t in self._record.system_tags]
        if system:
            raise TaggingError(f"'{system[0]}' is a system tag of {self.pathspec}; system tags cannot be removed")
        backends().metadata.remove_run_tags(self._record.flow_name, self._record.run_id, tags)
        self._refresh(removed=tags)

    def replace_tag(self, old: str | list[str], new: str | list[str]) -> None:
        self.replace_tags(_one_or_more(old), _one_or_more(new))

    def replace_tags(self, old: Iterable[str], new: Iterable[str]) -> None:
        if isinstance(old, str) or isinstance(new, str) or not (old := list(old)) + (new := list(new)):
            raise TaggingError("replace_tags takes lists of tags to remove and to add, not both empty")
        self.remove_tags(old)
        self.add_tags(new)


def _one_or_more(tag: Any) -> list[Any]:
    """A tag, or (Metaflow's older spelling, still accepted there) a list of tags."""
    return list(tag) if isinstance(tag, (list, tuple, set, frozenset)) else [tag]


def _valid_tags(tags: Iterable[str]) -> list[str]:
    tags = list(tags)
    for tag in tags:
        problem = tag_problem(tag)
        if problem:
            raise TaggingError(f"{problem}, so it cannot be a tag; {TAG_RULE}")
    return tags


class _RunTags:
    """Steps and tasks carry the tags of their run, as in Metaflow."""

    def _tagged_run(self) -> "Run":
        raise NotImplementedError

    @property
    def tags(self) -> frozenset[str]:
        return self._tagged_run().tags

    @property
    def user_tags(self) -> frozenset[str]:
        return self._tagged_run().user_tags

    @property
    def system_tags(self) -> frozenset[str]:
        return self._tagged_run().system_tags


class Step(StepNeighbours, _RunTags, ClientObject):
    """The tasks of one step of a run (one, or one per foreach item)."""

    _kind = "step"

    def __init__(self, pathspec: str, _run: Run | None = None):
        flow_name, run_id, step_name = _split(pathspec, 3, "step")
        self.pathspec = f"{flow_name}/{run_id}/{step_name}"
        self._run = _run or Run(f"{flow_name}/{run_id}")
        self._tasks = [t for t in backends().metadata.list_tasks(flow_name, run_id, step_name)]
        if not self._tasks or step_name.startswith(HIDDEN_STEP_PREFIX):
            raise NotFound(f"step {self.pathspec} does not exist (no task of it ever started)")

    @property
    def parent(self) -> Run:
        return self._run

    def _tagged_run(self) -> Run:
        return self._run

    @property
    def created_at(self) -> datetime:
        return _time(min(t.created_at for t in self._tasks))  # type: ignore[return-value]

    @property
    def finished_at(self) -> datetime | None:
        ends = [t.finished_at for t in self._tasks]
        return _time(max(ends)) if all(e is not None for e in ends) else None

    @property
    def origin_pathspec(self) -> str | None:
        """In a resumed run, this step in the run it resumed (Metaflow's meaning)."""
        origin = self._run.origin_pathspec
        return f"{origin}/{self.id}" if origin else None

    @property
    def environment_info(self) -> dict[str, str] | None:
        return self.task.environment_info

    @property
    def task(self) -> "Task":
        """A task of the step: the only one, or for a foreach, the first."""
        return Task(self._tasks[0].pathspec, _record=self._tasks[0], _step=self)

    def tasks(self, *tags: str) -> Iterator["Task"]:
        """The step's tasks; with ``tags``, only if they carry every one (Metaflow's filter)."""
        if all(tag in self.tags for tag in tags):  # a task carries its run's tags
            for record in self._tasks:
                yield Task(record.pathspec, _record=record, _step=self)

    def __iter__(self) -> Iterator["Task"]:
        return self.tasks()

    def __getitem__(self, task_id: str) -> "Task":
        for record in self._tasks:
            if record.task_id == str(task_id):
                return Task(record.pathspec, _record=record, _step=self)
        raise NotFound(f"task {self.pathspec}/{task_id} does not exist")

    def __contains__(self, task_id: str) -> bool:
        return any(record.task_id == str(task_id) for record in self._tasks)


class Task(_RunTags, ClientObject):
    """One task: its artifacts (``task.data.x``, ``task["x"]``), output, metadata and outcome."""

    _kind = "task"

    def __init__(self, pathspec: str, attempt: int | str | None = None, _record: TaskRecord | None = None,
                 _step: Step | None = None, _namespace_check: bool = True):
        flow_name, run_id, step_name, task_id = _split(pathspec, 4, "task")
        self.pathspec = f"{flow_name}/{run_id}/{step_name}/{task_id}"
        self._attempt = chosen_attempt(attempt, self.pathspec)
        if _record is None:
            if _step is None:
                Run(f"{flow_name}/{run_id}", _namespace_check=_namespace_check)  # the namespace check, and a clear error for a bad run
            _record = backends().metadata.get_task(flow_name, run_id, step_name, task_id)
            if _record is None:
                raise NotFound(f"task {self.pathspec} does not exist")
        self._record = _record
        self._step = _step
        self._store: TaskDataStore | None = None
        self._fields: list[MetadataField] | None = None

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other) and other._attempt == self._attempt  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((super().__hash__(), self._attempt))

    def __repr__(self) -> str:
        return super().__repr__() if self._attempt is None else f"Task('{self.pathspec}', attempt={self._attempt})"

    # -- outcome ------------------------------------------------------------------------------

    @property
    def parent(self) -> Step:
        return self._step or Step(self.pathspec.rsplit("/", 1)[0])

    def _tagged_run(self) -> Run:
        return self.parent.parent

    @property
    def created_at(self) -> datetime:
        return _time(self._record.created_at)  # type: ignore[return-value]

    @property
    def finished_at(self) -> datetime | None:
        return _time(self._record.finished_at)

    @property
    def finished(self) -> bool:
        if self._attempt is None or self._attempt == self._record.attempt:
            return self._record.status != RUNNING
        return self._attempt < self._record.attempt  # an earlier attempt ended; a later one has not begun

    @property
    def successful(self) -> bool:
        if self._attempt is None:
            return self._record.status == SUCCEEDED
        store = self._datastore()
        return store is not None and bool(store.info.success)

    @property
    def current_attempt(self) -> int:
        """The attempt this object shows: the one asked for, else the latest started."""
        return self._attempt if self._attempt is not None else max(self._record.attempt, 0)

    # -- the datastore side -------------------------------------------------------------------

    def _datastore(self) -> TaskDataStore | None:
        """The committed attempt shown: the one asked for, else the latest committed (None
        while it runs, or if it never committed)."""
        if self._store is None:
            r = self._record
            try:
                self._store = backends().datastore.open_task(r.flow_name, r.run_id, r.step_name, r.task_id,
                                                             self._attempt)
            except NotFound:
                return None
        return self._store

    def _artifact_records(self) -> dict[str, ArtifactRecord]:
        if not self.successful:
            return {}
        store = self._datastore()
        records = store.artifact_records() if store is not None else {}
        return {name: record for name, record in records.items() if not is_internal_artifact(name)}

    @property
    def data(self) -> TaskData:
        """Artifact values by attribute: ``task.data.model``."""
        return TaskData(self)

    @property
    def artifacts(self) -> TaskArtifacts:
        """`DataArtifact` objects by attribute: ``task.artifacts.model.sha``."""
        return TaskArtifacts(self)

    def __iter__(self) -> Iterator["DataArtifact"]:
        for name, record in sorted(self._artifact_records().items()):
            yield DataArtifact(self, record)

    def __getitem__(self, name: str) -> "DataArtifact":
        records = self._artifact_records()
        if name not in records:
            raise KeyError(f"task {self.pathspec} has no artifact '{name}'")
        return DataArtifact(self, records[name])

    def _load(self, name: str) -> Any:
        store = self._datastore()
        assert store is not None
        return store.load(name)

    def _log_bytes(self, stream: str) -> bytes:
        return attempt_log(backends().datastore.storage, self._datastore(), self.pathspec, self.current_attempt,
                           stream)

    def _log(self, stream: str) -> str:
        return self._log_bytes(stream).decode("utf-8", "replace")

    @property
    def stdout(self) -> str:
        return self._log("stdout")

    @property
    def stderr(self) -> str:
        return self._log("stderr")

    def loglines(self, stream: str, as_unicode: bool = True, meta_dict: Any = None) -> Iterator[tuple[datetime, Any]]:
        """``(utc_time, line)`` for each line the task wrote on ``stream``, as Metaflow's.

        Flow keeps a log as one blob, not per-line times, so every line carries the time the
        attempt finished (its start while it runs)."""
        if stream not in LOG_STREAMS:
            raise ValueError(f"stream is 'stdout' or 'stderr', not {stream!r}")
        raw = self._log_bytes(stream)
        stamp = self._record.finished_at or self._record.created_at
        when = datetime.fromtimestamp(stamp, tz=timezone.utc).replace(tzinfo=None)
        for line in raw.splitlines():
            yield when, (line.decode("utf-8", "replace") if as_unicode else line)

    @property
    def exception(self) -> TaskException | None:
        """What the step raised: ``.type`` (``builtins.ValueError``), ``.exception`` (the
        message), ``.stacktrace``; ``str()`` is ``ValueError: message``. None if it did not fail."""
        store = self._datastore()
        # Of the attempt shown only: while a retry runs, the failure before it is not its own.
        recorded = store.info.exception if store is not None and store.attempt == self.current_attempt else None
        if not recorded:
            return None
        # ``exception_type`` (module-qualified) once the engine records it; else the short name.
        return TaskException(recorded, self.stderr, getattr(store.info, "exception_type", None))

    @property
    def code(self) -> FlowCode | None:
        """The code package this task ran from (None when it ran from the flow's folder)."""
        field = self.metadata_dict.get("code-package")
        return FlowCode(field, backends().datastore.storage) if field else None

    @property
    def environment_info(self) -> dict[str, str] | None:
        """Where the task ran: its Python version and, when it ran from a code package,
        the distributions that package carried."""
        fields = self.metadata_dict
        info = {key: fields[key] for key in ("python_version", "hostname") if key in fields}
        code = self.code
        if code is not None:
            info["type"] = code.info.get("environment_type", "local")
            info["distributions"] = ", ".join(code.info.get("distributions", []))
        return info or None

    # -- lineage ------------------------------------------------------------------------------

    @property
    def parent_task_pathspecs(self) -> Iterator[str]:
        """Pathspecs of the tasks whose output this task took as input."""
        return iter(parent_pathspecs(backends().metadata, backends().datastore, self._record, self._datastore()))

    @property
    def parent_tasks(self) -> Iterator["Task"]:
        """The tasks whose output this task took as input (none for ``start``)."""
        for pathspec in self.parent_task_pathspecs:
            yield Task(pathspec, _namespace_check=False)

    @property
    def child_task_pathspecs(self) -> Iterator[str]:
        """Pathspecs of the tasks that took this task's output as input."""
        return iter(child_pathspecs(backends().metadata, backends().datastore, self._record, self._datastore()))

    @property
    def child_tasks(self) -> Iterator["Task"]:
        """The tasks that took this task's output as input (none for ``end``)."""
        for pathspec in self.child_task_pathspecs:
            yield Task(pathspec, _namespace_check=False)

    @property
    def index(self) -> int | None:
        """The task's position in its innermost foreach (None outside any foreach)."""
        store = self._datastore()
        stack = stack_from_info(store.info.foreach_stack) if store is not None else ()
        return stack[-1].index if stack else None

    @property
    def origin_pathspec(self) -> str | None:
        """For a task a resumed run reused: the task it was cloned from (None for a task
        the resumed run ran again)."""
        fields = self.metadata_dict
        if fields.get("origin-pathspec"):
            return fields["origin-pathspec"]
        if fields.get("origin-run-id") and fields.get("origin-task-id"):
            r = self._record
            return f"{r.flow_name}/{fields['origin-run-id']}/{r.step_name}/{fields['origin-task-id']}"
        return None

    # -- metadata -----------------------------------------------------------------------------

    @property
    def metadata(self) -> list[MetadataField]:
        if self._fields is None:
            r = self._record
            listed = backends().metadata.list_metadata(r.flow_name, r.run_id, r.step_name, r.task_id)
            if self._attempt is not None:  # an attempt's own fields, as Metaflow's Task(…, attempt=N)
                listed = [f for f in listed if f.attempt == self._attempt]
            self._fields = [f if f.type else attrs.evolve(f, type=f.field) for f in listed]  # Metaflow's types
        return list(self._fields)

    @property
    def metadata_dict(self) -> dict[str, str]:
        """Each metadata field's latest value, under Metaflow's names too (``python_version``;
        ``origin-run-id`` on every task of a resumed run)."""
        fields = {field.field: field.value for field in self.metadata}
        for name, older in METADATA_ALIASES.items():
            if name not in fields and older in fields:
                fields[name] = fields[older]
        r = self._record
        run = self._step._run._record if self._step is not None else backends().metadata.get_run(r.flow_name, r.run_id)
        origin = run.origin_run_id if run is not None else None
        if origin and "origin-run-id" not in fields:
            fields["origin-run-id"] = origin
        return fields


class DataArtifact(_RunTags, ClientObject):
    """One artifact of one task; ``.data`` loads the value (once)."""

    _kind = "artifact"

    def __init__(self, task: Task, record: ArtifactRecord):
        self.pathspec = f"{task.pathspec}/{record.name}"
        self._task = task
        self._record = record

    @property
    def data(self) -> Any:
        return self._task._load(self._record.name)

    @property
    def sha(self) -> str:
        """The content key: equal values have equal keys, across tasks, runs and flows."""
        return self._record.key

    @property
    def type(self) -> str:
        return self._record.type

    @property
    def size(self) -> int:
        return self._record.size

    @property
    def parent(self) -> Task:
        return self._task

    def _tagged_run(self) -> Run:
        return self._task._tagged_run()

    @property
    def origin_pathspec(self) -> str | None:
        origin = self._task.origin_pathspec
        return f"{origin}/{self.id}" if origin else None

    @property
    def created_at(self) -> datetime | None:
        return self._task.finished_at

    @property
    def finished_at(self) -> datetime | None:
        return self._task.finished_at
