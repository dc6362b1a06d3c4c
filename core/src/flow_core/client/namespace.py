"""Which runs the Client API sees (namespaces) and which backends it reads through.

As in Metaflow, a notebook starts in the user's own namespace (``user:<name>``), or inside a
running task in that run's namespace; ``namespace(None)`` sees everything. The backends are
the ones configuration selects, so the same notebook reads local runs or S3 and the
metadata service without a change.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from ..current import current
from ..datastore.task_store import FlowDataStore
from ..metadata.base import MetadataBackend
from ..plugins import current_settings, get_registry

_UNSET: Any = object()
_namespace: Any = _UNSET


@attrs.frozen
class Backends:
    metadata: MetadataBackend
    datastore: FlowDataStore


_backends: tuple[tuple, Backends] | None = None


def backends() -> Backends:
    """The selected metadata and datastore backends, rebuilt when the configuration changes."""
    global _backends
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("METAFLOW_"))) + (os.getcwd(),)
    if _backends is None or _backends[0] != key:
        settings = current_settings()
        registry = get_registry()
        metadata = registry.create_backend("metadata", settings.backend_name("metadata"), settings)
        storage = registry.create_backend("datastore", settings.backend_name("datastore"), settings)
        _backends = (key, Backends(metadata, FlowDataStore(storage)))
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
    _namespace = ns
    return ns


def get_namespace() -> str | None:
    """The namespace in force (None when global)."""
    if _namespace is _UNSET:
        return default_namespace()
    return _namespace


def get_metadata() -> str:
    """Which metadata backend the Client API reads, e.g. ``local@/home/me/project/.flow``."""
    return backends().metadata.describe()
