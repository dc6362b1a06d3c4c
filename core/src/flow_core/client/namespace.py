"""Which runs the Client API sees (namespaces) and which backends it reads through.

As in Metaflow, a notebook starts in the user's own namespace (``user:<name>``), or inside a
running task in that run's namespace; ``namespace(None)`` sees everything. The backends are
the ones configuration selects, so the same notebook reads local runs or S3 and the
metadata service without a change.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs

from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.selection import Backends
from flow_core.datastore.task_store import FlowDataStore
from flow_core.model.current import current
from flow_core.model.names import text_problem
from flow_core.plugin.registry import current_settings

_UNSET: Any = object()
_namespace: Any = _UNSET

#: Set in every task's environment by ``run --namespace`` (as JSON: a tag, or null for the
#: global namespace; empty when not given): the namespace the Client API starts in inside the
#: run's tasks. It changes what the steps see, not the run's own tags or ``current.namespace``.
TASK_NAMESPACE_VARIABLE = "FLOW_TASK_NAMESPACE"


@attrs.frozen
class ClientBackends:
    """What the Client API reads through: the configured metadata, and the datastore on the
    configured storage."""

    metadata: MetadataBackend
    datastore: FlowDataStore


_backends: tuple[tuple, ClientBackends] | None = None


def backends() -> ClientBackends:
    """The selected metadata and datastore backends, rebuilt when the configuration changes
    (a notebook may switch METAFLOW_* variables or its folder between cells)."""
    global _backends
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("METAFLOW_"))) + (os.getcwd(),)
    if _backends is None or _backends[0] != key:
        selected = Backends.configured()
        _backends = (key, ClientBackends(selected.metadata, FlowDataStore(selected.storage)))
    return _backends[1]


def default_namespace() -> str:
    """Switch to, and return, the namespace a fresh session starts in."""
    global _namespace
    _namespace = current.namespace or f"user:{current_settings().user}"
    return _namespace


def namespace(ns: str | None) -> str | None:
    """Switch to namespace ``ns`` (a tag such as ``user:alice`` or ``production:token``);
    ``None`` sees every run. Returns the namespace now in force."""
    global _namespace
    if ns is not None and (not isinstance(ns, str) or not ns):
        raise ValueError("a namespace is a tag such as 'user:alice', or None for all runs")
    if ns is not None and text_problem(ns):
        raise ValueError(f"{text_problem(ns)}, so it cannot be a namespace; a namespace is a tag such as 'user:alice'")
    _namespace = ns
    return ns


def _task_namespace() -> Any:
    """The namespace ``run --namespace`` chose for this task; ``_UNSET`` when none was (or
    outside a task)."""
    given = os.environ.get(TASK_NAMESPACE_VARIABLE, "") if current.is_running_flow else ""
    try:
        chosen = json.loads(given) if given else _UNSET
    except ValueError:
        return _UNSET
    return chosen if chosen is None or (isinstance(chosen, str) and chosen) else _UNSET


def get_namespace() -> str | None:
    """The namespace in force (None when global)."""
    global _namespace
    if _namespace is _UNSET:
        chosen = _task_namespace()
        if chosen is _UNSET:
            return default_namespace()
        _namespace = chosen
    return _namespace


def get_metadata() -> str:
    """Which metadata backend the Client API reads, e.g. ``local@/home/me/project/.flow``."""
    return backends().metadata.describe()
