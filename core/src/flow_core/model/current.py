"""`current`: what a running task knows about itself."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from flow_core.model.project import carried_project


class Parallel(NamedTuple):
    """``current.parallel`` in a task of a @parallel gang, as Metaflow names its fields."""

    main_ip: str
    num_nodes: int
    node_index: int
    control_task_id: str | None


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
    is_running_flow: bool = False
    #: The run's user tags: a set, as Metaflow's (a step may `self.tags = current.tags` and update it).
    tags: set[str] | frozenset[str] = frozenset()
    parameter_names: tuple[str, ...] = ()
    #: Set in the tasks of a @parallel step only.
    parallel: Parallel | None = None
    #: ``current.card`` in a step with @card: a `flow_core.model.cards.collector.CardComponentCollector`.
    card: Any = None

    @property
    def is_production(self) -> bool:
        """A production run: of a deployment, or of a @project flow run with --production."""
        return bool(self.__dict__.get("_is_production")) or bool(carried_project().get("is_production"))

    @is_production.setter
    def is_production(self, value: bool) -> None:
        self.__dict__["_is_production"] = value

    @property
    def project_name(self) -> str | None:
        """``X`` of ``@project(name=X)`` (None without @project)."""
        return carried_project().get("project_name")

    @property
    def branch_name(self) -> str | None:
        """``user.<name>``, ``test.<branch>``, ``prod`` or ``prod.<branch>``."""
        return carried_project().get("branch_name")

    @property
    def project_flow_name(self) -> str | None:
        """``<project>.<branch>.<FlowName>``: what names a deployment of the flow."""
        return carried_project().get("project_flow_name")

    @property
    def is_user_branch(self) -> bool | None:
        """True on the user's own branch (neither --branch nor --production)."""
        return carried_project().get("is_user_branch")

    #: ``(kind, pathspec) -> Run | Task`` of the Client API; the ``flow_core`` package wires it
    #: (the model layer does not import the client).
    _client_object: Callable[[str, str], Any] | None = None

    @property
    def task(self) -> Any:
        """The running task as a Client API ``Task`` (None outside a task), as Metaflow's."""
        if self.task_id is None or type(self)._client_object is None:
            return None
        return type(self)._client_object("Task", self.pathspec)

    @property
    def run(self) -> Any:
        """The running run as a Client API ``Run`` (None outside a task), as Metaflow's."""
        if self.run_id is None or type(self)._client_object is None:
            return None
        return type(self)._client_object("Run", f"{self.flow_name}/{self.run_id}")

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
