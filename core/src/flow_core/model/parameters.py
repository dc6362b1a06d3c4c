"""Run parameters: typed values given on the command line, read-only artifacts in every step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


class ParameterContext:
    """Given to a callable default: what is known when the run starts."""

    def __init__(self, flow_name: str, user_name: str, parameter_name: str):
        self.flow_name = flow_name
        self.user_name = user_name
        self.parameter_name = parameter_name


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
    ):
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

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance._parameter_value(self.attribute)

    def __set__(self, instance: Any, value: Any) -> None:
        raise FlowError(f"parameter '{self.attribute}' is read-only; store a changed value under another name")

    @property
    def click_type(self) -> click.ParamType:
        if isinstance(self.type, click.ParamType):
            return self.type
        return _CLICK_TYPES.get(self.type, click.STRING)

    def option(self) -> click.Option:
        default = None if callable(self.default) else self.default
        if isinstance(self.type, JSONTypeClass) and default is not None and not isinstance(default, str):
            default = json.dumps(default)
        return click.Option(
            [f"--{self.name}", f"param_{self.attribute}"],
            type=self.click_type,
            default=default,
            required=self.required and self.default is None,
            help=self.help,
            show_default=self.show_default,
        )

    def resolve(self, given: Any, ctx: ParameterContext) -> Any:
        """The value for the run: what was given, else the default (called if callable)."""
        value = given
        if value is None and callable(self.default):
            value = self.default(ctx)
        if value is None and self.default is not None and not callable(self.default):
            value = self.default
        if value is None and self.required:
            raise ParameterError(f"parameter --{self.name} is required; pass it as --{self.name} VALUE")
        if isinstance(value, str) and text_problem(value):
            raise ParameterError(f"parameter --{self.name}: {text_problem(value)}; pass UTF-8 text")
        if isinstance(value, str) and not isinstance(self.click_type, click.types.StringParamType):
            try:
                value = self.click_type.convert(value, None, None)
            except click.BadParameter as exc:
                raise ParameterError(f"parameter --{self.name}: {exc.message}") from None
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

    def resolve(self, given: Any, ctx: ParameterContext) -> Any:
        path = super().resolve(given, ctx)
        if path is None:
            return None
        try:
            data = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise ParameterError(f"parameter --{self.name}: cannot read {path} ({exc.strerror})") from None
        return data.decode(self.encoding) if self.is_text else data


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
