"""`Backends`: the backends one command works with, built once and handed down.

Configuration names a backend of each kind; the registry knows which class provides it.
This object is where the two meet, so a command opens one metadata backend and one storage
backend however many parts of it (runtime, computes, resume plan, Client API) use them, and a
test builds the engine's classes around backends of its own choosing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Mapping

from flow_core.backends.compute import ComputeBackend
from flow_core.backends.environment import EnvironmentBackend
from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.scheduler import SchedulerBackend
from flow_core.backends.storage import StorageBackend
from flow_core.plugin.registry import PluginRegistry, current_settings, get_registry
from flow_core.plugin.settings import Settings

if TYPE_CHECKING:
    from flow_core.model.decorators import StepDecorator


class Backends:
    """The selected storage, metadata, compute and scheduler backends of one command.

    Storage and metadata are built on first use; computes and schedulers by name, once each.
    A test may pass ready-made ``storage`` and ``metadata`` (an in-memory pair, say).
    """

    def __init__(self, settings: Settings, registry: PluginRegistry, *,
                 storage: StorageBackend | None = None, metadata: MetadataBackend | None = None):
        self.settings = settings
        self.registry = registry
        self._built: dict[tuple[str, str], Any] = {}
        if storage is not None:
            self._built[("datastore", settings.backend_name("datastore"))] = storage
        if metadata is not None:
            self._built[("metadata", settings.backend_name("metadata"))] = metadata
        self._lock = threading.RLock()

    @classmethod
    def configured(cls, overrides: Mapping[str, str | None] | None = None) -> "Backends":
        """What configuration selects, with this process's installed plugins: for a command,
        a script or a test that starts from nothing."""
        return cls(current_settings(overrides), get_registry())

    def _get(self, kind: str, name: str | None) -> Any:
        name = name or self.settings.backend_name(kind)
        with self._lock:
            key = (kind, name)
            if key not in self._built:
                self._built[key] = self.registry.create_backend(kind, name, self.settings, self)
            return self._built[key]

    @property
    def storage(self) -> StorageBackend:
        return self._get("datastore", None)

    @property
    def metadata(self) -> MetadataBackend:
        return self._get("metadata", None)

    def compute(self, name: str | None = None) -> ComputeBackend:
        """The compute backend ``name`` (default: the configured one), built on first use."""
        return self._get("compute", name)

    def scheduler(self, name: str | None = None) -> SchedulerBackend:
        return self._get("scheduler", name)

    @property
    def environment(self) -> EnvironmentBackend:
        """The configured environment (``--environment``), built on first use."""
        return self._get("environment", None)

    @property
    def step_decorators(self) -> Mapping[str, type[StepDecorator]]:
        """Every installed step decorator by name, for ``--with`` and the task hooks."""
        return self.registry.step_decorators

    def close(self) -> None:
        """Release what the computes hold (fork servers, threads) at the end of the command."""
        with self._lock:
            computes = [b for (kind, _), b in self._built.items() if kind == "compute"]
            for key in [k for k in self._built if k[0] == "compute"]:
                del self._built[key]
        for compute in computes:
            compute.close()

    def __enter__(self) -> "Backends":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
