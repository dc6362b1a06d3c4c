"""Run parameters: typed values given on the command line, read-only artifacts in every step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import click

from flow_core.errors import FlowError, ParameterError
from flow_core.model.names import shown, text_problem


class JSONTypeClass(click.ParamType):
    """A parameter whose value is JSON; the artifact holds the decoded value."""

    name = "JSON"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            self.fail(f"{shown(value)} is not valid JSON ({exc})", param, ctx)
        except RecursionError:
            self.fail(f"{shown(value)} is nested too deeply to be read as JSON; pass a flatter value",
                      param, ctx)


JSONType = JSONTypeClass()

_CLICK_TYPES: dict[Any, click.ParamType] = {
    str: click.STRING, int: click.INT, float: click.FLOAT, bool: click.BOOL,
}


class ReadOnlyAttributeError(FlowError, AttributeError):
    """A step assigned to a parameter, a config or a class-level constant. Also an
    AttributeError, as in Metaflow, so code that catches AttributeError catches it."""


def environment_variable(name: str) -> str:
    """``METAFLOW_RUN_<NAME>``: where a run's parameter may come from when not on the command line."""
    return "METAFLOW_RUN_" + name.upper().replace("-", "_")


def _has_config_exprs(value: Any) -> bool:
    from flow_core.model.config import has_exprs

    return has_exprs(value)


class ParameterContext:
    """Given to a callable default: what is known when the run starts."""

    def __init__(self, flow_name: str, user_name: str, parameter_name: str,
                 configs: Mapping[str, Any] | None = None):
        from flow_core.model.config import ConfigValue

        self.flow_name = flow_name
        self.user_name = user_name
        self.parameter_name = parameter_name
        #: The flow's configs (``ctx.configs.cfg.key``), once they are known: not for a config's own default.
        self.configs = ConfigValue(dict(configs or {}))


class Parameter:
    """A value the run takes from the command line: ``alpha = Parameter("alpha", default=0.5)``.

    The attribute name is the artifact's name; ``name`` is the option (``--alpha``), and may
    contain dashes. The type comes from ``type`` or the default's type.
    """

    def __init__(
        self,
        name: str,
        default: Any = None,
        type: Any = None,
        help: str | None = None,
        required: bool = False,
        show_default: bool = True,
        separator: str | None = None,
    ):
        if separator is not None and (type not in (None, str) or not isinstance(separator, str) or
                                      (default is not None and not callable(default) and not isinstance(default, str))):
            raise ParameterError(f"parameter '{name}': separator is only allowed for string parameters")
        self.separator = separator
        self.name = name
        self.default = default
        self.required = required
        self.help = help
        self.show_default = show_default
        if type is None:
            default_type = builtins_type(default) if not callable(default) else None
            type = default_type if default_type in _CLICK_TYPES else (str if default is None else None)
            if type is None and isinstance(default, (dict, list)):
                type = JSONType
        self.type = type if type is not None else str
        self.attribute: str | None = None  # set by __set_name__

    #: What messages call it.
    kind = "parameter"

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance._parameter_value(self.attribute)

    def __set__(self, instance: Any, value: Any) -> None:
        raise ReadOnlyAttributeError(
            f"{self.kind} '{self.attribute}' is read-only; store a changed value under another name")

    @property
    def click_type(self) -> click.ParamType:
        if isinstance(self.type, click.ParamType):
            return self.type
        return _CLICK_TYPES.get(self.type, click.STRING)

    def option(self, from_environment: bool = True) -> click.Option:
        """The command-line option; unless given, it may come from ``METAFLOW_RUN_<NAME>``."""
        # A callable default is called, and a config_expr default evaluated, when the run starts.
        default = None if callable(self.default) or _has_config_exprs(self.default) else self.default
        if isinstance(self.type, JSONTypeClass) and default is not None and not isinstance(default, str):
            default = json.dumps(default)
        return click.Option(
            [f"--{self.name}", f"param_{self.attribute}"],
            type=self.click_type,
            default=default,
            required=self.required and self.default is None,
            help=self.help,
            show_default=self.show_default,
            envvar=environment_variable(self.name) if from_environment else None,
            show_envvar=False,
        )

    def resolve(self, given: Any, ctx: ParameterContext, configs: Mapping[str, Any] | None = None) -> Any:
        """The value for the run: what was given, else the default (called if callable, and
        evaluated over ``configs`` if it is a ``config_expr``), converted to the type."""
        value = given
        default = self.default
        if _has_config_exprs(default):
            from flow_core.model.config import resolve_exprs

            default = resolve_exprs(default, configs or {})
        if value is None and callable(default):
            value = default(ctx)
        if value is None and default is not None and not callable(default):
            value = default
        if value is None and self.required:
            raise ParameterError(f"parameter --{self.name} is required; pass it as --{self.name} VALUE")
        if isinstance(value, str) and text_problem(value):
            raise ParameterError(f"parameter --{self.name}: {text_problem(value)}; pass UTF-8 text")
        if isinstance(value, str) and not isinstance(self.click_type, click.types.StringParamType):
            try:
                value = self.click_type.convert(value, None, None)
            except click.BadParameter as exc:
                raise ParameterError(f"parameter --{self.name}: {exc.message}") from None
        if self.separator is not None and isinstance(value, str):
            value = value.split(self.separator)
        return value


class IncludeFile(Parameter):
    """A parameter naming a local file whose contents are stored with the run at launch.

    The artifact holds the file's text (or bytes with ``is_text=False``), so every task, local
    or remote, reads the same contents even after the file changes.
    """

    def __init__(self, name: str, default: str | None = None, is_text: bool = True,
                 encoding: str = "utf-8", help: str | None = None, required: bool = False):
        super().__init__(name, default=default, type=str, help=help, required=required)
        self.is_text = is_text
        self.encoding = encoding

    def resolve(self, given: Any, ctx: ParameterContext, configs: Mapping[str, Any] | None = None) -> Any:
        path = super().resolve(given, ctx, configs)
        if path is None:
            return None
        try:
            data = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise ParameterError(f"parameter --{self.name}: cannot read {path} ({exc.strerror})") from None
        return data.decode(self.encoding) if self.is_text else data


class ClassConstant:
    """A class-level constant of a flow, read-only in steps as in Metaflow (where constants
    become properties): ``self.K = 2`` raises instead of silently making an artifact."""

    def __init__(self, attribute: str, value: Any):
        self.attribute = attribute
        self.value = value

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self.value

    def __set__(self, instance: Any, value: Any) -> None:
        raise ReadOnlyAttributeError(f"'{self.attribute}' is a class-level constant of the flow and cannot be "
                                     "changed in a step; store a changed value under another name")


def protect_class_constants(flow_cls: type) -> None:
    """Make the class-level constants of ``flow_cls`` (and of its bases up to FlowSpec)
    read-only for the instances: plain values only, not methods, descriptors or ``_names``."""
    for klass in flow_cls.__mro__:
        if klass.__module__.startswith("flow_core.") or klass is object:
            continue
        for attribute, value in list(vars(klass).items()):
            if attribute.startswith("_") or callable(value) or hasattr(type(value), "__get__"):
                continue
            setattr(klass, attribute, ClassConstant(attribute, value))


def class_constants(flow_cls: type) -> dict[str, Any]:
    """The flow's class-level constants by name: stored with the parameters, so that, as in
    Metaflow, they are artifacts of every task."""
    found: dict[str, Any] = {}
    for klass in reversed(flow_cls.__mro__):
        if klass.__module__.startswith("flow_core.") or klass is object:
            continue
        for attribute, value in vars(klass).items():
            if isinstance(value, ClassConstant):
                found[attribute] = value.value
            elif attribute.startswith("_") or callable(value) or hasattr(type(value), "__get__"):
                found.pop(attribute, None)
            else:
                found[attribute] = value
    return found


def builtins_type(value: Any) -> type | None:
    return None if value is None else type(value)


def flow_parameters(flow_cls: type) -> dict[str, Parameter]:
    """The flow's parameters by attribute name, in definition order (base classes first)."""
    found: dict[str, Parameter] = {}
    for klass in reversed(flow_cls.__mro__):
        for attribute, value in vars(klass).items():
            if isinstance(value, Parameter):
                found[attribute] = value
    names: dict[str, str] = {}
    for attribute, parameter in found.items():
        if parameter.name in names:
            raise FlowError(f"parameters '{names[parameter.name]}' and '{attribute}' are both named '{parameter.name}'")
        names[parameter.name] = attribute
    return found
