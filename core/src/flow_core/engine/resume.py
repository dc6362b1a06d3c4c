"""Resuming a run: which of the origin run's tasks can be reused, and reusing one.

A resumed run walks the graph like any run. When it is about to launch a task, it asks
the plan whether the origin run has a successful task for the same step and foreach
iteration (and, in the loop of a recursive switch, the same turn of the loop), whose inputs were
reused too, and outside the steps the user asked to re-run. If so, the
task is cloned: a new task id whose index points at the same content-addressed artifacts
(nothing is copied) and whose metadata names its origin.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.records import SUCCEEDED, TaskRecord
from flow_core.datastore.cas import blob_key
from flow_core.datastore.task_store import DamagedIndex, FlowDataStore
from flow_core.engine.run_start import PARAMETERS_STEP
from flow_core.errors import FlowError, NotFound
from flow_core.model.foreach import iteration_key, stack_from_info
from flow_core.model.graph import FlowGraph


@attrs.frozen
class OriginTask:
    record: TaskRecord

    @property
    def pathspec(self) -> str:
        return self.record.pathspec


class ResumePlan:
    def __init__(self, flow_name: str, origin_run_id: str, rerun_steps: set[str],
                 datastore: FlowDataStore, metadata: MetadataBackend):
        self.flow_name = flow_name
        self.origin_run_id = origin_run_id
        self.rerun_steps = rerun_steps
        #: The origin's tasks per (step, foreach iteration), in the order they ran: more than
        #: one where a recursive switch ran the step again (task ids grow as tasks are made).
        self._by_key: dict[tuple[str, tuple[int, ...]], list[tuple[str, OriginTask | None]]] = {}
        self._parameters: OriginTask | None = None
        stores = []
        for task in metadata.list_tasks(flow_name, origin_run_id):
            if task.status != SUCCEEDED:
                continue
            if task.step_name == PARAMETERS_STEP:
                self._parameters = OriginTask(task)
                continue
            try:
                stores.append((task, datastore.open_task(flow_name, origin_run_id, task.step_name,
                                                         task.task_id, task.attempt)))
            except (DamagedIndex, NotFound):
                continue  # its artifacts cannot be found: the task runs again
        # A task whose objects were removed (`verify --remove-damaged`) runs again and stores them anew.
        keys = [{blob_key(r.key) for r in store.artifact_records().values()} for _, store in stores]
        present = datastore.storage.exists_many(set().union(*keys)) if keys else set()
        for (task, store), task_keys in zip(stores, keys):
            key = iteration_key(stack_from_info(store.info.foreach_stack))
            # A task with damaged objects keeps its turn in the loop but is not reused.
            usable = OriginTask(task) if task_keys <= present else None
            self._by_key.setdefault((task.step_name, key), []).append((task.task_id, usable))
        for visits in self._by_key.values():
            visits.sort(key=lambda item: _task_order(item[0]))

    @classmethod
    def build(cls, graph: FlowGraph, datastore: FlowDataStore, metadata: MetadataBackend,
              origin_run_id: str | None, step: str | None, user_runs: Iterable) -> ResumePlan:
        if origin_run_id is None:
            runs = list(user_runs)
            if not runs:
                raise NotFound(f"there is no earlier run of {graph.name} to resume; start one with `run`")
            origin_run_id = runs[0].run_id
        if metadata.get_run(graph.name, origin_run_id) is None:
            raise NotFound(f"run {graph.name}/{origin_run_id} does not exist; check --origin-run-id")
        rerun: set[str] = set()
        if step is not None:
            if step not in graph:
                raise FlowError(f"{graph.name} has no step '{step}' to resume from")
            rerun = _descendants(graph, step)
        return cls(graph.name, origin_run_id, rerun, datastore, metadata)

    def parameters_task(self) -> OriginTask | None:
        return self._parameters

    def reusable_task(self, step_name: str, key: tuple[int, ...], visit: int = 0) -> OriginTask | None:
        """The origin's successful task for this step, foreach iteration and turn of a loop."""
        if step_name in self.rerun_steps:
            return None
        visits = self._by_key.get((step_name, key), [])
        return visits[visit][1] if visit < len(visits) else None

    def clone_task(self, origin: OriginTask, run_id: str, task_id: str, datastore: FlowDataStore,
                   metadata: MetadataBackend) -> None:
        record = origin.record
        source = datastore.open_task(self.flow_name, record.run_id, record.step_name, record.task_id, record.attempt)
        store = datastore.task(self.flow_name, run_id, record.step_name, task_id, 0)
        store.add_artifact_refs(source.artifact_records())
        for stream in ("stdout", "stderr"):
            store.save_log(stream, source.log(stream))
        store.info = attrs.evolve(source.info, origin=origin.pathspec)
        store.commit()
        # The clone carries what its origin's attempt recorded (host, Python version...), as a
        # Metaflow clone does, then where it came from; it is the clone's attempt 0.
        recorded = metadata.list_metadata(self.flow_name, record.run_id, record.step_name, record.task_id)
        fields = {f.field: f.value for f in recorded if f.attempt == record.attempt and f.field not in CLONE_FIELDS}
        fields.update({"origin-run-id": record.run_id, "origin-task-id": record.task_id, "attempt": "0"})
        metadata.start_attempt(self.flow_name, run_id, record.step_name, task_id, 0, fields)
        metadata.finish_attempt(self.flow_name, run_id, record.step_name, task_id, 0, True,
                                list(store.artifact_records().values()))


#: Fields a clone sets itself rather than copy from its origin.
CLONE_FIELDS = frozenset({"origin-run-id", "origin-task-id", "origin-pathspec", "attempt"})


def _descendants(graph: FlowGraph, step: str) -> set[str]:
    seen = {step}
    pending = [step]
    while pending:
        for child in graph[pending.pop()].out_funcs:
            if child not in seen:
                seen.add(child)
                pending.append(child)
    return seen


def _task_order(task_id: str) -> tuple[int, int | str]:
    """Numeric ids in numeric order (before any an orchestrator chose itself)."""
    return (0, int(task_id)) if task_id.isdigit() else (1, task_id)
