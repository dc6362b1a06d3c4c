"""What the local fork server makes ready before it forks a task, once for many tasks.

A forked task pays for every line of Python it runs twice over: the time, and a copy of
each page of the server's memory the code touches (reference counts and the interpreter's
inline caches are written even by code that only reads). Work whose result is the same
for many tasks -- the backends for a run's settings, a step's decorators, the index of
the one parent every task of a foreach reads and the list it splits -- is therefore done
here, in the server, and the children find it done.

A failure here is never reported: the task does the same work itself and reports it.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import attrs

from flow_core.backends.selection import Backends
from flow_core.datastore.task_store import FlowDataStore, TaskDataStore
from flow_core.engine.input_paths import REFERENCE_MARK, has_step_wildcard
from flow_core.model.decorators import StepDecorator, step_decorators
from flow_core.model.graph import FOREACH, FlowGraph

#: Parents' indexes kept at once (a foreach's parent is one; a linear flow's change each step).
PARENTS_KEPT = 64
#: Single parents remembered as asked for once.
ASKED_KEPT = 10_000
#: A foreach's list is loaded in the server only up to this encoded size, which bounds what
#: the kept parents hold; a larger one each task loads itself, as without a server.
FOREACH_LIST_PRELOADED_UP_TO = 1024 * 1024


@attrs.frozen
class Prelude:
    """Ready-made parts of one task; None or empty where the task makes them itself."""

    backends: Backends | None
    decorators: list[StepDecorator] | None
    opened_parents: dict[str, TaskDataStore]
    #: The task's environment variables whose values differ from the server's (usually none).
    env_changes: dict[str, str]


class TaskPreludes:
    def __init__(self, flow_cls: type, graph: FlowGraph, backends: Backends):
        self.flow_cls = flow_cls
        self.graph = graph
        self.backends = backends
        self._backends: dict[tuple[tuple[str, str], ...], Backends | None] = {}
        self._decorators: dict[tuple[str, tuple[str, ...]], list[StepDecorator] | None] = {}
        self._parents: dict[str, TaskDataStore] = {}
        self._asked: set[str] = set()
        # Reading the datastore here is safe only where reading opens no connection a forked
        # task would inherit (see StorageBackend.warm_up).
        self._reads_parents = backends.storage.local_only

    def prepare(self, task: Mapping[str, Any], env: Mapping[str, str]) -> Prelude:
        backends = self._backends_for(env)
        return Prelude(
            backends=backends,
            decorators=self._decorators_for(task["step_name"], tuple(task.get("decospecs") or ())),
            opened_parents=self._parents_for(task, backends) if backends is not None else {},
            env_changes={k: v for k, v in env.items() if os.environ.get(k) != v},
        )

    def _backends_for(self, env: Mapping[str, str]) -> Backends | None:
        """The backends for a task with these environment variables: one set per distinct
        environment, and a run's tasks share one."""
        key = tuple(sorted(env.items()))
        if key not in self._backends:
            try:
                settings = self.backends.settings.with_environ({**os.environ, **env})
                self._backends[key] = Backends(settings, self.backends.registry, storage=self.backends.storage)
            except Exception:  # noqa: BLE001 -- the task meets it again and reports it
                self._backends[key] = None
        return self._backends[key]

    def _decorators_for(self, step_name: str, decospecs: tuple[str, ...]) -> list[StepDecorator] | None:
        key = (step_name, decospecs)
        if key not in self._decorators:
            try:
                self._decorators[key] = step_decorators(self.flow_cls, step_name, decospecs,
                                                        self.backends.step_decorators)
            except Exception:  # noqa: BLE001 -- the task meets it again and reports it
                self._decorators[key] = None
        return self._decorators[key]

    def _parents_for(self, task: Mapping[str, Any], backends: Backends) -> dict[str, TaskDataStore]:
        """The parent's index when a second task asks for the same single parent (a
        foreach's children all do); a parent asked for once is left to its task, so a
        linear flow does not move its reads into the server."""
        paths = task.get("input_paths") or ()
        if not self._reads_parents or len(paths) != 1:
            return {}
        (path,) = paths
        if path.startswith(REFERENCE_MARK) or has_step_wildcard(paths):
            return {}
        if path not in self._parents:
            if path not in self._asked:
                if len(self._asked) >= ASKED_KEPT:
                    self._asked.clear()
                self._asked.add(path)
                return {}
            if len(self._parents) >= PARENTS_KEPT:
                self._parents.clear()
            try:
                (store,) = FlowDataStore(backends.storage).open_tasks(self.flow_cls.__name__, [path])
                self._load_foreach_list(store, path.split("/")[1])
            except Exception:  # noqa: BLE001 -- the task meets it again and reports it
                return {}
            self._parents[path] = store
        return {path: self._parents[path]}

    def _load_foreach_list(self, store: TaskDataStore, step_name: str) -> None:
        """Load the list a foreach parent splits into the store, which keeps what it loaded:
        each child takes its item from it instead of reading and decoding the whole list."""
        node = self.graph.nodes.get(step_name)
        if node is None or node.type != FOREACH or node.parallel_foreach:
            return
        record = store.artifact_records().get(node.foreach_param)
        if record is not None and record.size <= FOREACH_LIST_PRELOADED_UP_TO:
            store.load(node.foreach_param)
