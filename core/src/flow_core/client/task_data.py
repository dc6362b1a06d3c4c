"""``task.data`` and ``task.artifacts``: a task's artifacts by attribute."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from flow_core.client.objects import DataArtifact, Task


class TaskData:
    """``task.data.name`` is the artifact's value; ``"name" in task.data`` asks if it exists."""

    def __init__(self, task: "Task"):
        self._task = task

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._task[name].data
        except KeyError:
            raise AttributeError(f"task {self._task.pathspec} has no artifact '{name}'") from None

    def __contains__(self, name: str) -> bool:
        return name in self._task._artifact_records()

    def __dir__(self) -> list[str]:
        return sorted(self._task._artifact_records())

    def __repr__(self) -> str:
        return f"<data of {self._task.pathspec}: {', '.join(dir(self))}>"


class TaskArtifacts(TaskData):
    """``task.artifacts.name`` is the `DataArtifact`; iterating gives them all."""

    def __getattr__(self, name: str) -> "DataArtifact":
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._task[name]
        except KeyError:
            raise AttributeError(f"task {self._task.pathspec} has no artifact '{name}'") from None

    def __iter__(self) -> Iterator["DataArtifact"]:
        return iter(self._task)
