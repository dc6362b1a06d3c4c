"""The descriptor a plugin returns to register a backend."""

from __future__ import annotations

import importlib
from typing import Union

import attrs

from flow_core.errors import PluginError

#: The kinds of backend, in the order they are listed to users.
KINDS = ("datastore", "compute", "metadata", "scheduler", "environment")


@attrs.frozen
class Backend:
    """One backend a plugin provides: the name configuration selects it by, and the class
    (or its ``"module:Class"`` path, imported only when the backend is selected)."""

    name: str
    target: Union[str, type]
    description: str = ""

    def load(self, kind: str) -> type:
        cls = self.target
        if isinstance(cls, str):
            module_name, _, attr = cls.partition(":")
            try:
                cls = getattr(importlib.import_module(module_name), attr)
            except ImportError as exc:
                raise PluginError(
                    f"the {kind} backend '{self.name}' cannot be imported ({exc}); "
                    "reinstall the plugin that provides it"
                ) from exc
            except AttributeError:
                raise PluginError(
                    f"the {kind} backend '{self.name}' points at {self.target}, which does not exist"
                ) from None
        if getattr(cls, "name", None) != self.name:
            raise PluginError(
                f"the {kind} backend registered as '{self.name}' is a class named "
                f"'{getattr(cls, 'name', None)}'; the two names must match"
            )
        return cls
