"""A task's artifacts by name, private ones (``_foreach_stack``, ``_graph_info``…) included on
request: what ``dump --private`` shows, as Metaflow's ``dump`` does."""

from __future__ import annotations

from typing import Any, Iterator

from flow_core.client.objects import Task


def artifact_names(task: Task, include: tuple[str, ...] = (), private: bool = False) -> Iterator[str]:
    """The names of ``task``'s artifacts, sorted; names starting with ``_`` only when ``private``."""
    if not task.successful:
        return iter(())
    store = task._datastore()
    names = sorted(store.artifact_records()) if store is not None else []
    return iter([name for name in names if (private or not name.startswith("_"))
                 and (not include or name in include)])


def artifact_values(task: Task, include: tuple[str, ...] = (), private: bool = False) -> dict[str, Any]:
    """``{name: value}`` of the artifacts `artifact_names` selects."""
    store = task._datastore()
    return {name: store.load(name) for name in artifact_names(task, include, private)} if store else {}
