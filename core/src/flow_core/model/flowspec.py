"""What users write: a `FlowSpec` subclass whose `@step` methods call `self.next(...)`."""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterator, Mapping, Sequence

import attrs

from flow_core.errors import FlowError
from flow_core.model.parallel import PARALLEL_FOREACH_VAR
from flow_core.model.parameters import Parameter
from flow_core.model.switch import choose_case


def step(function: Callable[..., None]) -> Callable[..., None]:
    """Mark a method of a FlowSpec as a step of the flow."""
    function.is_step = True  # type: ignore[attr-defined]
    function.decorators = []  # type: ignore[attr-defined]
    return function


class InvalidTransition(FlowError):
    """A step's code called self.next differently from what the graph says."""


@attrs.frozen
class Transition:
    """What a step's ``self.next(...)`` asked for."""

    targets: tuple[str, ...]
    foreach: str | None = None
    #: For a switch: the condition's artifact name and every case's step (``targets`` holds
    #: the one case taken).
    condition: str | None = None
    cases: frozenset[str] = frozenset()
    #: For ``num_parallel=N``: how many tasks the @parallel gang has. Not compared: the graph
    #: knows that a step starts a gang, not (when N is computed) how big it is.
    num_parallel: int | None = attrs.field(default=None, eq=False)


class ArtifactSource:
    """Artifacts a task sees without having set them, loaded only when touched."""

    def names(self) -> Iterator[str]:
        raise NotImplementedError

    def load(self, name: str) -> Any:
        raise NotImplementedError

    def key(self, name: str) -> str:
        """The content key of an artifact: equal keys mean equal values."""
        raise NotImplementedError


class MergeConflict(FlowError):
    """merge_artifacts found an artifact with different values in different inputs."""


class Inputs(Sequence["FlowSpec"]):
    """What a join step receives: one read-only view per parent task.

    Iterate it, index it (``inputs[0]``), or name a branch (``inputs.train``).
    """

    def __init__(self, views: list["FlowSpec"], step_names: list[str]):
        self._views = views
        self._by_step = dict(zip(step_names, views))

    def __getitem__(self, index):  # type: ignore[override]
        return self._views[index]

    def __len__(self) -> int:
        return len(self._views)

    def __iter__(self) -> Iterator["FlowSpec"]:
        return iter(self._views)

    def __getattr__(self, name: str) -> "FlowSpec":
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.__dict__["_by_step"][name]
        except KeyError:
            raise AttributeError(f"this join has no input from a step named '{name}'") from None


_FOREACH_INPUT_PREFIX = "_foreach_input_"


def foreach_input_name(depth: int) -> str:
    """The hidden artifact holding the item a foreach task at ``depth`` handles."""
    return f"{_FOREACH_INPUT_PREFIX}{depth}"


def is_internal_artifact(name: str) -> bool:
    """An artifact Flow stores for itself (a foreach task's item): never merged by
    ``merge_artifacts`` and not listed by the Client API. A user's ``self._x`` is an ordinary
    artifact, as in Metaflow, which stores every attribute but dunder ones."""
    return name.startswith(_FOREACH_INPUT_PREFIX)


#: What ``MyFlow()`` in a flow file's ``__main__`` block calls: the command line. The model
#: cannot import the CLI (it sits above), so `flow_core/__init__.py` plugs it in here.
script_entry: Callable[[type, str], None] | None = None


class FlowSpec:
    """Base class of every flow.

    Instantiating the subclass in the flow file's ``if __name__ == "__main__":`` block starts
    the command line (``python myflow.py run``). Inside a task, attributes set on ``self``
    are the step's artifacts; reading one the step did not set loads it from the parent task.
    """

    #: Attributes every instance has that are never artifacts: ``name``, and what Flow keeps
    #: on the instance for itself (the names `__init__` sets).
    _NON_ARTIFACTS = frozenset({"name", "_transition", "_artifact_source", "_foreach_stack", "_merged",
                                "_current_step", "_in_join"})

    def __init__(self, use_cli: bool = True):
        self._transition: Transition | None = None
        self._artifact_source: ArtifactSource | None = None
        #: Frames of the enclosing foreach splits, innermost last (set by the task runner).
        self._foreach_stack: tuple = ()
        #: Artifacts a join took over from its inputs by merge_artifacts, as content keys.
        self._merged: dict[str, tuple[Any, str]] = {}
        #: The step this instance runs (set by the task runner; Metaflow code reads it too).
        self._current_step: str | None = None
        self._in_join = False
        if use_cli:
            if script_entry is None:
                raise FlowError("the Flow command line is not available; import FlowSpec from flow_core")
            script_entry(type(self), sys.modules[type(self).__module__].__file__)

    @property
    def name(self) -> str:
        return type(self).__name__

    @classmethod
    def step_functions(cls) -> dict[str, Callable[..., None]]:
        """Every @step of the flow, by name."""
        return {
            name: member
            for name in dir(cls)
            if not name.startswith("__")
            for member in (getattr(cls, name, None),)
            if callable(member) and getattr(member, "is_step", False)
        }

    def next(self, *steps: Any, foreach: str | None = None, condition: str | None = None,
             num_parallel: int | None = None) -> None:
        """Say which step(s) run after this one. Must be the last statement of the step.

        ``self.next({"a": self.a, "b": self.b}, condition="choice")`` is a switch: only the
        case named by the value of ``self.choice`` runs next. ``self.next(self.train,
        num_parallel=4)`` starts 4 tasks of the @parallel step ``train`` together, a gang."""
        if self._transition is not None:
            raise InvalidTransition("self.next was called twice in the same step; call it once, at the end")
        # Steps are never a switch's cases: checking only the other arguments spares every task an
        # ABC subclass check that a freshly forked process has no cache for (0.3 ms a task).
        if condition is not None or any(isinstance(target, Mapping) for target in steps
                                        if not getattr(target, "is_step", False)):
            self._transition = self._switch(steps, condition)
            return
        names = []
        for target in steps:
            name = getattr(target, "__name__", None)
            if name is None or not getattr(target, "is_step", False):
                raise InvalidTransition(f"self.next was given {target!r}, which is not a step of this flow")
            names.append(name)
        if not names:
            raise InvalidTransition("self.next needs at least one step")
        if num_parallel is not None:
            if isinstance(num_parallel, bool) or not isinstance(num_parallel, int) or num_parallel < 1:
                raise InvalidTransition(f"num_parallel must be a whole number of at least 1, not {num_parallel!r}")
            if len(names) != 1 or foreach is not None:
                raise InvalidTransition("num_parallel goes with exactly one @parallel step and no foreach")
            foreach = PARALLEL_FOREACH_VAR
        self._transition = Transition(tuple(names), foreach, num_parallel=num_parallel)

    def _switch(self, steps: tuple, condition: str | None) -> Transition:
        if len(steps) != 1 or not isinstance(steps[0], Mapping) or not steps[0]:
            raise InvalidTransition("a switch passes self.next one dict of cases, as in "
                                    "self.next({\"a\": self.a, \"b\": self.b}, condition=\"choice\")")
        if not isinstance(condition, str):
            raise InvalidTransition("a switch needs condition=\"<artifact>\" naming the artifact that picks the case")
        cases = {}
        for key, target in steps[0].items():
            name = getattr(target, "__name__", None)
            if name is None or not getattr(target, "is_step", False):
                raise InvalidTransition(f"the switch case {key!r} is {target!r}, which is not a step of this flow")
            cases[key] = name
        try:
            value = getattr(self, condition)
        except AttributeError:
            raise InvalidTransition(f"the switch's condition is self.{condition}, which this step never "
                                    "sets") from None
        chosen = choose_case(cases, value)
        if chosen is None:
            raise InvalidTransition(f"the switch's condition self.{condition} is {value!r}, which is none of "
                                    f"its cases ({', '.join(map(repr, cases))})")
        return Transition((chosen,), None, condition, frozenset(cases.values()))

    # -- foreach ----------------------------------------------------------------------------

    @property
    def index(self) -> int | None:
        """Which item of the innermost foreach this task handles (None outside a foreach)."""
        return self._foreach_stack[-1].index if self._foreach_stack else None

    @property
    def input(self) -> Any:
        """The item of the innermost foreach this task handles (None outside a foreach)."""
        if not self._foreach_stack:
            return None
        return self._load_artifact(foreach_input_name(len(self._foreach_stack) - 1))

    def foreach_stack(self) -> list[tuple[int, int, Any]]:
        """``(index, num_splits, input)`` of every enclosing foreach, outermost first."""
        return [
            (frame.index, frame.num_splits, self._load_artifact(foreach_input_name(depth)))
            for depth, frame in enumerate(self._foreach_stack)
        ]

    # -- joins ------------------------------------------------------------------------------

    def merge_artifacts(self, inputs: Inputs, exclude: Sequence[str] = (), include: Sequence[str] = ()) -> None:
        """Take over every artifact the inputs agree on.

        An artifact is taken when all inputs that have it hold the same value (compared by
        content key, without loading it). One the step already set, or in ``exclude``, is left
        alone; different values are an error naming the artifact. With ``include``, only
        those names are considered, and each must exist.
        """
        if not self._in_join:
            raise MergeConflict(f"merge_artifacts can only be called in a join step, and step "
                                f"'{self._current_step}' is not one")
        if include and exclude:
            raise MergeConflict("merge_artifacts takes include or exclude, not both")
        candidates: dict[str, list[tuple[Any, str]]] = {}
        for view in inputs:
            source = view._artifact_source
            for name in source.names() if source is not None else ():
                if is_internal_artifact(name) or name in exclude or (include and name not in include):
                    continue
                candidates.setdefault(name, []).append((source, source.key(name)))
        missing = [name for name in include if name not in candidates]
        if missing:
            raise MergeConflict(f"merge_artifacts: no input has the artifact(s) {', '.join(missing)}")
        for name, found in candidates.items():
            if name in self.__dict__ or self._is_parameter(name):
                continue
            if len({key for _source, key in found}) > 1:
                raise MergeConflict(
                    f"merge_artifacts: artifact '{name}' has different values in different inputs; "
                    f"set self.{name} in the join or pass exclude=['{name}']"
                )
            self._merged[name] = found[0]

    # -- artifacts --------------------------------------------------------------------------

    def _is_parameter(self, name: str) -> bool:
        return isinstance(getattr(type(self), name, None), Parameter)

    def _parameter_value(self, name: str) -> Any:
        return self._load_artifact(name)

    def _load_artifact(self, name: str) -> Any:
        if name in self.__dict__:
            return self.__dict__[name]
        if name in self._merged:
            source, _key = self._merged[name]
            value = source.load(name)
        else:
            source = self.__dict__.get("_artifact_source")
            if source is None or name not in set(source.names()):
                raise AttributeError(f"{type(self).__name__} has no artifact '{name}' in this step")
            value = source.load(name)
        self.__dict__[name] = value
        return value

    def __getattr__(self, name: str) -> Any:
        # Called only when normal lookup fails: the attribute may be a parent's artifact.
        if name.startswith("__") or name in self._NON_ARTIFACTS:
            raise AttributeError(name)
        return self._load_artifact(name)

    def _artifacts_set(self) -> Mapping[str, Any]:
        """Artifacts this task holds in memory (set, or loaded and possibly changed)."""
        return {
            key: value
            for key, value in self.__dict__.items()
            if not key.startswith("__") and key not in self._NON_ARTIFACTS
        }
