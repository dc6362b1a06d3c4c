"""`current`: what a running task knows about itself."""

from __future__ import annotations

from typing import Any


class Current:
    """Filled in by the task runner; reading it outside a task gives None for everything."""

    flow_name: str | None = None
    run_id: str | None = None
    step_name: str | None = None
    task_id: str | None = None
    retry_count: int = 0
    origin_run_id: str | None = None
    namespace: str | None = None
    username: str | None = None
    is_production: bool = False
    is_running_flow: bool = False
    tags: frozenset[str] = frozenset()
    parameter_names: tuple[str, ...] = ()

    @property
    def pathspec(self) -> str | None:
        if self.task_id is None:
            return None
        return f"{self.flow_name}/{self.run_id}/{self.step_name}/{self.task_id}"

    def _set(self, **values: Any) -> None:
        for key, value in values.items():
            if not hasattr(type(self), key):
                raise AttributeError(key)
            setattr(self, key, value)

    def _clear(self) -> None:
        """Back to outside a task: what a task set is gone."""
        self.__dict__.clear()

    def __repr__(self) -> str:
        return f"<current {self.pathspec or '(not in a task)'}>"


current = Current()
