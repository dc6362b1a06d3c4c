"""Step and flow decorators: the base classes plugins subclass, and how users attach them.

A decorator is a class with a ``name`` and ``defaults``; users write ``@retry`` or
``@retry(times=3)`` above ``@step``. Its methods are hooks Flow calls at fixed points of a
task's life, in the runtime and in the task process. Only override what you need.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

from flow_core.errors import FlowError
from flow_core.model.config import config_values, has_exprs, resolve_exprs
from flow_core.model.parameters import protect_class_constants

if TYPE_CHECKING:
    from flow_core.backends.compute import TaskSpec


class DecoratorError(FlowError):
    """A decorator was given an attribute it does not know, or used in the wrong place."""


class _Decorator:
    name: ClassVar[str]
    #: Every attribute the decorator accepts, with its default.
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: The environments (``--environment``) that honour it; empty for every one. ``@pypi``
    #: names ``pypi`` and ``conda``: under another, a run refuses to start rather than
    #: silently run the step without its packages.
    environments: ClassVar[tuple[str, ...]] = ()

    def __init__(self, attributes: Mapping[str, Any] | None = None):
        attributes = dict(attributes or {})
        unknown = set(attributes) - set(self.defaults)
        if unknown:
            raise DecoratorError(
                f"@{self.name} has no attribute {', '.join(sorted(unknown))}; "
                f"it accepts: {', '.join(self.defaults) or 'nothing'}"
            )
        self.attributes = {**self.defaults, **attributes}

    def __repr__(self) -> str:
        return f"@{self.name}({', '.join(f'{k}={v!r}' for k, v in self.attributes.items())})"


class StepDecorator(_Decorator):
    """Base of ``@retry``, ``@batch`` and every other step decorator."""

    #: Whether a step may carry the decorator more than once (``@card`` may, with different ids).
    allow_multiple: ClassVar[bool] = False

    def step_init(self, flow_cls: type, graph: Any, step_name: str) -> None:
        """Validate the attributes once the graph is known, before anything runs."""

    def runtime_task_spec(self, spec: "TaskSpec") -> "TaskSpec":
        """Adjust a task before it is launched (retries, compute backend, resources)."""
        return spec

    def task_metadata(self) -> dict[str, str]:
        """Metadata fields to record with each attempt of the step (what it asked for)."""
        return {}

    def task_pre_step(self, ctx: Any) -> None:
        """In the task process, before the step's code runs."""

    def task_decorate(self, step_function: Callable[[], None], ctx: Any) -> Callable[[], None]:
        """Wrap the step's code (a timeout, say); return the callable to run instead."""
        return step_function

    def task_post_step(self, ctx: Any) -> None:
        """In the task process, after the step's code succeeded."""

    def task_exception(self, exception: BaseException, ctx: Any) -> bool:
        """The step's code raised; return True if this decorator handled it (``@catch``)."""
        return False

    def task_finished(self, ctx: Any, succeeded: bool) -> None:
        """In the task process, once the attempt's artifacts are stored (``succeeded``) or it
        failed, before the attempt is committed. Must not raise: the attempt's outcome is
        decided already."""


class FlowDecorator(_Decorator):
    """Base of ``@schedule`` and every other decorator on a FlowSpec class."""

    #: Whether a flow may carry the decorator more than once (Metaflow refuses it by default).
    allow_multiple: ClassVar[bool] = False

    def flow_init(self, flow_cls: type, options: Mapping[str, Any]) -> None:
        """Validate the attributes when a command starts, with its top-level ``options``
        (``branch``, ``production``); raise a `DecoratorError` for a mistake."""


def check_environment(decorator: _Decorator, environment: str) -> None:
    """Refuse a decorator the selected environment would ignore (Metaflow's message)."""
    if decorator.environments and environment not in decorator.environments:
        needed = " or ".join(f"--environment={name}" for name in decorator.environments)
        raise DecoratorError(f"@{decorator.name} decorator requires {needed}")


def with_configs(decorator: _Decorator, flow_cls: type) -> _Decorator:
    """The decorator with every ``config_expr`` among its attributes evaluated against the
    flow's configs (a copy: the one on the class keeps the expressions)."""
    if not has_exprs(decorator.attributes):
        return decorator
    resolved = copy.copy(decorator)
    resolved.attributes = resolve_exprs(decorator.attributes, config_values(flow_cls))
    return resolved


def flow_decorators(flow_cls: type) -> list[FlowDecorator]:
    """The flow's decorators, config expressions evaluated."""
    return [with_configs(d, flow_cls) for d in getattr(flow_cls, "_flow_decorators", {}).values()]


def attach_step_decorator(cls: type[StepDecorator]) -> Callable[..., Any]:
    """The user-facing ``@name`` / ``@name(**attributes)`` for a step decorator class."""

    def decorator(function: Callable[..., Any] | None = None, **attributes: Any) -> Any:
        def attach(fn: Callable[..., Any]) -> Callable[..., Any]:
            if not getattr(fn, "is_step", False):
                raise DecoratorError(f"@{cls.name} must be placed above @step (on {fn.__name__})")
            if any(d.name == cls.name for d in fn.decorators) and not cls.allow_multiple:
                raise DecoratorError(f"@{cls.name} is used twice on step {fn.__name__}")
            fn.decorators.append(cls(attributes))
            return fn

        return attach(function) if function is not None else attach

    decorator.__name__ = cls.name
    decorator.__doc__ = cls.__doc__
    return decorator


def attach_flow_decorator(cls: type[FlowDecorator]) -> Callable[..., Any]:
    """The user-facing ``@name`` / ``@name(**attributes)`` for a flow decorator class."""

    def decorator(flow_cls: type | None = None, **attributes: Any) -> Any:
        def attach(target: type) -> type:
            if not isinstance(target, type):
                raise DecoratorError(f"@{cls.name} must be placed above a FlowSpec class")
            if cls.name in target.__dict__.get("_flow_decorators", {}) and not cls.allow_multiple:
                raise DecoratorError(f"@{cls.name} can be applied to a flow only once")
            existing = dict(getattr(target, "_flow_decorators", {}))
            existing[cls.name] = cls(attributes)
            target._flow_decorators = existing
            return target

        return attach(flow_cls) if flow_cls is not None else attach

    decorator.__name__ = cls.name
    decorator.__doc__ = cls.__doc__
    return decorator


_ATTRIBUTE_START = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")


def parse_decospec(spec: str, known: Mapping[str, type[StepDecorator]]) -> StepDecorator:
    """``retry:times=3,minutes_between_retries=0`` (from ``run --with``) to a decorator."""
    name, _, rest = spec.partition(":")
    cls = known.get(name)
    if cls is None:
        raise DecoratorError(f"--with {name}: no step decorator of that name is installed "
                             f"(installed: {', '.join(sorted(known)) or 'none'})")
    attributes: dict[str, Any] = {}
    # A comma starts a new attribute only before `name=`: a value may hold commas of its own
    # (`secrets:sources=['a','b']`), as Metaflow reads it.
    for pair in filter(None, _ATTRIBUTE_START.split(rest)):
        key, sep, value = pair.partition("=")
        if not sep:
            raise DecoratorError(f"--with {spec}: write attributes as name=value")
        attributes[key.strip()] = _literal(value.strip())
    return cls(attributes)


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def step_decorators(flow_cls: type, step_name: str, decospecs: tuple[str, ...],
                    known: Mapping[str, type[StepDecorator]]) -> list[StepDecorator]:
    """The decorators of one step: those written on it, then ``--with`` ones (among the
    ``known`` installed decorators) it lacks."""
    protect_class_constants(flow_cls)  # every process about to run steps comes here first
    found = [with_configs(d, flow_cls) for d in getattr(getattr(flow_cls, step_name), "decorators", [])]
    if decospecs:
        present = {d.name for d in found}
        for spec in decospecs:
            decorator = parse_decospec(spec, known)
            if decorator.name not in present:
                found.append(decorator)
                present.add(decorator.name)
    return found
