"""``Config``: a flow's configuration, fixed when a run starts and readable everywhere.

Unlike a `Parameter`, a config is known before the flow's decorators are used, so decorator
arguments may depend on it through `config_expr` (``@resources(cpu=config_expr("cfg.cpu"))``).
Its value is a read-only mapping (`ConfigValue`) stored with the run like a parameter, so
every task, ``resume`` and the Client API see the same one.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from flow_core.errors import FlowError
from flow_core.model.parameters import Parameter, ParameterContext

#: The variable that carries a run's config values to its tasks (JSON, by config name).
CONFIG_VALUES_VARIABLE = "FLOW_CONFIG_VALUES"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(FlowError):
    """A config's value is missing, unreadable, or an expression using it fails."""


class ConfigValue(collections.abc.Mapping, dict):
    """A read-only, arbitrarily nested mapping: ``cfg["a"]["b"]`` and ``cfg.a.b`` alike. Also
    a dict, as in Metaflow, so ``isinstance(cfg, dict)`` and ``json.dumps(cfg)`` work."""

    def __init__(self, data: Mapping[str, Any]):
        object.__setattr__(self, "_data", {k: _wrap(v) for k, v in data.items()})
        dict.__init__(self, self._data)

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("ConfigValue is immutable")

    clear = update = setdefault = pop = popitem = __ior__ = _immutable

    def keys(self):
        return self._data.keys()

    def values(self):
        return self._data.values()

    def items(self):
        return self._data.items()

    def get(self, key: Any, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def copy(self) -> "ConfigValue":
        return ConfigValue(self._data)

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        if key != "_data" and key in self._data:
            return self._data[key]
        raise AttributeError(key)

    def __setattr__(self, key: str, value: Any) -> None:
        raise TypeError("ConfigValue is immutable")

    def __delattr__(self, key: str) -> None:
        raise TypeError("ConfigValue is immutable")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("ConfigValue is immutable")

    def __delitem__(self, key: Any) -> None:
        raise TypeError("ConfigValue is immutable")

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, ConfigValue):
            return self._data == other._data
        return isinstance(other, Mapping) and self.to_dict() == dict(other)

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable copy."""
        return _unwrap(self)

    def __reduce__(self):
        return (type(self), (self.to_dict(),))

    def __repr__(self) -> str:
        return repr(self.to_dict())

    def __dir__(self):
        return [*dir(type(self)), *(k for k in self._data if isinstance(k, str) and _IDENTIFIER.match(k))]


def _wrap(value: Any) -> Any:
    if isinstance(value, ConfigValue):
        return value
    if isinstance(value, Mapping):
        return ConfigValue(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


class ConfigExpr:
    """An expression over the flow's configs, evaluated once their values are known.

    ``config_expr("cfg").model.size`` is the expression ``cfg.model.size``.
    """

    def __init__(self, expression: str, scope: Mapping[str, Any] | None = None):
        self.expression = expression
        self.scope = scope

    def __getattr__(self, name: str) -> "ConfigExpr":
        if name.startswith("__") or not _IDENTIFIER.match(self.expression.split(".")[0]):
            raise AttributeError(name)
        return ConfigExpr(f"{self.expression}.{name}", self.scope)

    def __getitem__(self, key: Any) -> "ConfigExpr":
        return ConfigExpr(f"{self.expression}[{key!r}]", self.scope)

    def evaluate(self, configs: Mapping[str, Any]) -> Any:
        names = {_variable(k): ConfigValue(v) if isinstance(v, Mapping) else v for k, v in configs.items()}
        try:
            return eval(self.expression, dict(self.scope or {}), names)  # noqa: S307 - the user's own code
        except Exception as exc:
            raise ConfigError(f"config expression '{self.expression}' could not be evaluated "
                              f"({type(exc).__name__}: {exc})") from None

    def __repr__(self) -> str:
        return f"config_expr({self.expression!r})"


def config_expr(expression: str) -> ConfigExpr:
    """A decorator argument computed from configs: ``@project(name=config_expr("cfg.project"))``.

    The expression sees the caller's module globals, so it may call the module's functions.
    """
    frame = inspect.currentframe()
    scope = frame.f_back.f_globals if frame is not None and frame.f_back is not None else None
    return ConfigExpr(expression, scope)


def _variable(config_name: str) -> str:
    return config_name.replace("-", "_")


def resolve_exprs(value: Any, configs: Mapping[str, Any]) -> Any:
    """``value`` with every `ConfigExpr` in it (also inside dicts, lists, tuples) evaluated."""
    if isinstance(value, ConfigExpr):
        return value.evaluate(configs)
    if isinstance(value, Config):
        return ConfigExpr(_variable(value.name)).evaluate(configs)
    if isinstance(value, dict):
        return {resolve_exprs(k, configs): resolve_exprs(v, configs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(resolve_exprs(v, configs) for v in value)
    return value


def has_exprs(value: Any) -> bool:
    if isinstance(value, (ConfigExpr, Config)):
        return True
    if isinstance(value, dict):
        return any(has_exprs(k) or has_exprs(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_exprs(v) for v in value)
    return False


class Config(Parameter):
    """A configuration read from a file (``default``, or ``--config NAME FILE``) or given as
    a value (``default_value``, or ``--config-value NAME JSON``), parsed as JSON unless a
    ``parser`` is given. Read it in a step as ``self.cfg.key`` or ``self.cfg["key"]``.
    """

    kind = "config"

    def __init__(self, name: str, default: str | Callable[..., Any] | None = None,
                 default_value: Any = None, help: str | None = None, required: bool | None = None,
                 parser: str | Callable[[str], Any] | None = None, **kwargs: Any):
        if default is not None and default_value is not None:
            raise ConfigError(f"config '{name}': give default or default_value, not both")
        super().__init__(name, default=None, type=str, help=help, required=bool(required))
        self.default_file = default
        self.default_value = default_value
        self.parser = parser

    def __getattr__(self, name: str) -> ConfigExpr:
        # ``@resources(cpu=cfg.cpu)`` in the class body: a delayed read of the config.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(ConfigExpr(_variable(self.name)), name)

    def __getitem__(self, key: Any) -> ConfigExpr:
        return ConfigExpr(_variable(self.name))[key]

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance._parameter_value(self.attribute)
        return ConfigValue(value) if isinstance(value, Mapping) and not isinstance(value, ConfigValue) else value

    def parse(self, text: str, origin: str) -> Any:
        """The value of ``text`` read from ``origin`` (a file or the command line)."""
        parser = self.parser
        if isinstance(parser, str):
            module_name, _, function_name = parser.rpartition(".")
            try:
                parser = getattr(importlib.import_module(module_name), function_name)
            except (ImportError, AttributeError, ValueError):
                raise ConfigError(f"config '{self.name}': parser '{self.parser}' cannot be imported") from None
        try:
            value = parser(text) if parser is not None else json.loads(text)
        except Exception as exc:
            how = "its parser failed" if parser is not None else "it is not valid JSON"
            raise ConfigError(f"config '{self.name}' from {origin}: {how} ({exc})") from None
        if not isinstance(value, Mapping):
            raise ConfigError(f"config '{self.name}' from {origin} must be a mapping (a JSON object), "
                              f"not {type(value).__name__}")
        return _unwrap(value)

    def value_for(self, file: str | None, text: str | None, ctx: ParameterContext) -> Any:
        """The config's value: what the command line gives, else its defaults."""
        if file is not None and text is not None:
            raise ConfigError(f"config '{self.name}' is given both as --config and --config-value; give one")
        if file is not None:
            return self.parse(_read(self.name, file), file)
        if text is not None:
            return self.parse(text, "--config-value")
        default = self.default_file(ctx) if callable(self.default_file) else self.default_file
        if default is not None and Path(default).expanduser().is_file():
            return self.parse(_read(self.name, default), default)
        value = self.default_value
        if callable(value):
            value = value(ctx)
        if isinstance(value, str):
            return self.parse(value, "its default_value")
        if value is not None:
            return _unwrap(value)
        if self.required:
            raise ConfigError(f"config '{self.name}' is required; pass it as --config {self.name} FILE")
        return None


def _read(name: str, path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config '{name}': cannot read {path} ({exc.strerror})") from None


def flow_configs(flow_cls: type) -> dict[str, Config]:
    """The flow's configs by attribute name."""
    found: dict[str, Config] = {}
    for klass in reversed(flow_cls.__mro__):
        for attribute, value in vars(klass).items():
            if isinstance(value, Config):
                found[attribute] = value
    return found


def resolve_configs(flow_cls: type, files: Mapping[str, str], texts: Mapping[str, str],
                    ctx_for: Callable[[str], ParameterContext]) -> dict[str, Any]:
    """Every config's value by config name, from ``--config`` files and ``--config-value`` texts."""
    configs = flow_configs(flow_cls)
    known = {c.name for c in configs.values()}
    for given in (*files, *texts):
        if given not in known:
            raise ConfigError(f"the flow has no config named '{given}' (it has: {', '.join(sorted(known)) or 'none'})")
    return {c.name: c.value_for(files.get(c.name), texts.get(c.name), ctx_for(c.name)) for c in configs.values()}


def set_config_values(flow_cls: type, values: Mapping[str, Any]) -> None:
    """Fix the configs of ``flow_cls`` for this process (the CLI, once it has read them)."""
    flow_cls._flow_config_values = dict(values)


def config_values(flow_cls: type) -> dict[str, Any]:
    """The configs of ``flow_cls`` in this process: set by the CLI, else carried to the task
    in `CONFIG_VALUES_VARIABLE`, else the configs' own defaults."""
    values = flow_cls.__dict__.get("_flow_config_values")
    if values is not None:
        return values
    carried = os.environ.get(CONFIG_VALUES_VARIABLE)
    if carried:
        try:
            values = dict(json.loads(carried).get(flow_cls.__name__, {}))
        except (ValueError, AttributeError):
            values = None
    if values is None or not values:
        try:
            values = resolve_configs(flow_cls, {}, {}, lambda name: ParameterContext(flow_cls.__name__, "", name))
        except ConfigError:
            values = {}
    flow_cls._flow_config_values = values
    return values
