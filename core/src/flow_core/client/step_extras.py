"""What a `Step` adds beyond its tasks, as Metaflow's client has it: the steps around it in
the run's graph, and the control tasks of a @parallel step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from flow_core.client.objects import Step, Task

#: The metadata field (and value) a @parallel gang's control task carries, as Metaflow's does.
TASK_TYPE_FIELD = "internal_task_type"
CONTROL_TASK = "control"


def _neighbour_steps(step: "Step", pathspecs_of: str) -> Iterator["Step"]:
    seen: list[str] = []
    for task in step.tasks():
        for pathspec in getattr(task, pathspecs_of):
            name = pathspec.split("/")[2]
            if name not in seen:
                seen.append(name)
    for name in seen:
        yield type(step)(f"{step.path_components[0]}/{step.path_components[1]}/{name}")


class StepNeighbours:
    """Mixed into `Step`."""

    @property
    def parent_steps(self: "Step") -> Iterator["Step"]:  # type: ignore[misc]
        """The steps whose tasks fed this step's tasks (none for ``start``)."""
        return _neighbour_steps(self, "parent_task_pathspecs")

    @property
    def child_steps(self: "Step") -> Iterator["Step"]:  # type: ignore[misc]
        """The steps whose tasks took this step's tasks' output (none for ``end``)."""
        return _neighbour_steps(self, "child_task_pathspecs")

    def control_tasks(self: "Step", *tags: str) -> Iterator["Task"]:  # type: ignore[misc]
        """The control tasks (node 0 of each gang) of a @parallel step carrying every one of ``tags``."""
        for task in self.tasks(*tags):
            if any(f.name == TASK_TYPE_FIELD and f.value == CONTROL_TASK for f in task.metadata):
                yield task

    @property
    def control_task(self: "Step") -> "Task | None":  # type: ignore[misc]
        """The step's control task, when it has one (a @parallel step)."""
        return next(self.control_tasks(), None)
