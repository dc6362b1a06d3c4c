"""Flow: data-science workflows as Python classes, on a laptop or on AWS.

``from flow_core import FlowSpec, step`` is all a flow needs. Step and flow decorators that
plugins contribute (``@batch``, ``@schedule``) are importable from here by name too; they are
looked up only when first imported, so ``import flow_core`` stays light.
"""

from __future__ import annotations

from typing import Any

from flow_core.errors import FlowError
from flow_core.model import flowspec as _flowspec
from flow_core.model.current import current
from flow_core.model.decorators import attach_flow_decorator, attach_step_decorator
from flow_core.model.flowspec import FlowSpec, step
from flow_core.model.parameters import IncludeFile, JSONType, Parameter
from flow_core.version import __version__

from flow_core.model.config import Config, ConfigValue, config_expr

__all__ = ["Config", "ConfigValue", "FlowSpec", "FlowError", "IncludeFile", "JSONType", "Parameter", "config_expr",
           "current", "step", "__version__"]


def _script_entry(flow_cls: type, flow_file: str) -> None:
    """``MyFlow()`` in a flow file's ``__main__`` block: the flow's command line. Imported on
    first use, so that a task or a notebook importing flow_core does not load click's commands."""
    from flow_core.cli.flow_command import main_for_flow

    main_for_flow(flow_cls, flow_file)


_flowspec.script_entry = _script_entry


def _client_object(kind: str, pathspec: str) -> Any:
    """``current.task`` / ``current.run``: the Client API object, imported on first use."""
    from flow_core import client

    return getattr(client, kind)(pathspec, _namespace_check=False)


type(current)._client_object = staticmethod(_client_object)


def _submodules() -> set[str]:
    import pkgutil

    return {info.name for info in pkgutil.iter_modules(__path__)}


#: The Client API, imported on first use so that ``import flow_core`` in a task stays light.
_CLIENT_NAMES = {
    "DataArtifact", "Flow", "Metaflow", "Run", "Step", "Task",
    "default_namespace", "get_metadata", "get_namespace", "namespace",
}


#: The Runner API, imported on first use (it drives the command line in subprocesses).
_RUNNER_NAMES = {"Deployer", "NBDeployer", "NBRunner", "Runner"}


#: The built-in decorators' exceptions, which @catch records under these public names.
_DECORATOR_ERRORS = {"TaskTimeout", "FailureHandledByCatch"}


def __getattr__(name: str) -> Any:
    if name in _DECORATOR_ERRORS:
        from flow_core.plugin import builtin_decorators

        return getattr(builtin_decorators, name)
    if name in _CLIENT_NAMES | _RUNNER_NAMES:
        if name in _CLIENT_NAMES:
            from flow_core import client as source
        else:
            from flow_core import runner as source

        value = getattr(source, name)
        globals()[name] = value
        return value
    # Decorators registered through the plugin hooks (the core's own included).
    if name.startswith("_") or name in _submodules():
        # `from . import graph` asks here before importing the submodule itself.
        raise AttributeError(name)
    from flow_core.plugin.registry import get_registry

    registry = get_registry()
    if name in registry.step_decorators:
        value = attach_step_decorator(registry.step_decorators[name])
    elif name in registry.flow_decorators:
        value = attach_flow_decorator(registry.flow_decorators[name])
    elif name in registry.exports:
        import importlib

        module, _, attribute = registry.exports[name].partition(":")
        value = getattr(importlib.import_module(module), attribute)
    else:
        raise _missing(name)
    globals()[name] = value
    return value


def _missing(name: str) -> Exception:
    """The error for a name neither Flow nor a plugin provides. For a Metaflow name, one
    sentence on what it is and what to use instead: an ImportError when asked by
    ``from flow_core import name`` (Python would otherwise drop the sentence for a bare
    "cannot import name"), an AttributeError otherwise so ``hasattr`` stays False."""
    from flow_core.errors import AttributeNotInFlow, NameNotInFlow
    from flow_core.model.metaflow_names import explain

    sentence = explain(name)
    if sentence is None:
        return AttributeError(f"module 'flow_core' has no attribute '{name}'")
    return NameNotInFlow(sentence, name) if _asked_by_from_import() else AttributeNotInFlow(sentence, name)


def _asked_by_from_import() -> bool:
    """Whether the caller two frames up is executing ``from flow_core import …``."""
    import dis
    import sys

    try:
        frame = sys._getframe(3)  # _asked_by_from_import ← _missing ← __getattr__ ← the caller
        return frame.f_code.co_code[frame.f_lasti] == dis.opmap["IMPORT_FROM"]
    except (AttributeError, IndexError, KeyError, ValueError):  # not CPython: plain AttributeError
        return False
