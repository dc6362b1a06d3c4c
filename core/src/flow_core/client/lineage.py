"""``task.parent_tasks`` and ``task.child_tasks``: which tasks fed a task, and which it fed.

Flow does not store the edges themselves; they follow from what every attempt's index
holds: the steps its ``self.next`` named (``transition``) and its foreach stack. A task P is
a parent of T when P's transition names T's step and the two stacks agree on their common
depth (the same task outside a foreach, the split's task for a foreach item, every item's
task for a foreach join). Conditional branches need no special case: each task names the
steps it actually went to.
"""

from __future__ import annotations

from typing import Iterable

from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.records import RUNNING, SUCCEEDED, TaskRecord
from flow_core.datastore.task_store import FlowDataStore, TaskDataStore
from flow_core.errors import NotFound
from flow_core.model.foreach import stack_from_info

HIDDEN_STEP_PREFIX = "_"


def _stack(store: TaskDataStore) -> tuple:
    return stack_from_info(store.info.foreach_stack)


def _agree(a: tuple, b: tuple) -> bool:
    depth = min(len(a), len(b))
    return a[:depth] == b[:depth]


def _open(datastore: FlowDataStore, flow_name: str, records: list[TaskRecord]) -> list[tuple[TaskRecord, TaskDataStore]]:
    """The latest committed attempt of each task, skipping tasks that have none yet."""
    paths = [f"{r.run_id}/{r.step_name}/{r.task_id}" for r in records]
    try:
        return list(zip(records, datastore.open_tasks(flow_name, paths)))
    except NotFound:  # one of them has no committed attempt: read them one by one
        opened = []
        for record in records:
            try:
                opened.append((record, datastore.open_task(flow_name, record.run_id, record.step_name, record.task_id)))
            except NotFound:
                continue
        return opened


def _order(found: Iterable[tuple[TaskRecord, TaskDataStore]]) -> list[str]:
    ordered = sorted(found, key=lambda pair: (pair[0].step_name, [f.index for f in _stack(pair[1])],
                                              int(pair[0].task_id) if pair[0].task_id.isdigit() else 0,
                                              pair[0].task_id))
    return [record.pathspec for record, _ in ordered]


def parent_pathspecs(metadata: MetadataBackend, datastore: FlowDataStore, record: TaskRecord, store: TaskDataStore | None) -> list[str]:
    """Pathspecs of the tasks whose output ``record``'s task took as input."""
    if store is None:
        return []
    stack = _stack(store)
    candidates = [r for r in metadata.list_tasks(record.flow_name, record.run_id)
                  if r.status == SUCCEEDED and r.pathspec != record.pathspec
                  and not r.step_name.startswith(HIDDEN_STEP_PREFIX)]
    found = [(r, s) for r, s in _open(datastore, record.flow_name, candidates)
             if record.step_name in (s.info.transition or ()) and _agree(_stack(s), stack)]
    return _order(found)


def child_pathspecs(metadata: MetadataBackend, datastore: FlowDataStore, record: TaskRecord, store: TaskDataStore | None) -> list[str]:
    """Pathspecs of the tasks that took ``record``'s task's output as input (those that
    started and committed an attempt so far)."""
    if store is None or not store.info.success:
        return []
    steps = set(store.info.transition or ())
    stack = _stack(store)
    candidates = [r for r in metadata.list_tasks(record.flow_name, record.run_id)
                  if r.step_name in steps and r.status != RUNNING and r.pathspec != record.pathspec]
    found = [(r, s) for r, s in _open(datastore, record.flow_name, candidates) if _agree(_stack(s), stack)]
    return _order(found)
