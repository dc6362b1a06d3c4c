"""The plugin manager: the core's own backends first, then every installed plugin.

The core registers its local backends through the same hooks a plugin uses, before any
entry point loads, so they exist even when running from a checkout and cannot be blocked.
Then each distribution in the ``flow.plugins`` entry-point group is loaded on its own: one
that fails to import is reported by name and skipped, never a crash.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from functools import cached_property
from typing import Any, Iterable

import attrs
import pluggy

from flow_core.errors import BackendNotInstalled, PluginError
from flow_core.plugin import builtins as builtin_plugin
from flow_core.plugin import hookspecs
from flow_core.plugin.descriptor import KINDS, Backend
from flow_core.plugin.settings import Settings

ENTRY_POINT_GROUP = "flow.plugins"
CORE_PLUGIN_NAME = "flow-core"

#: The hook that registers each backend kind.
BACKEND_HOOKS = {
    "datastore": "flow_storage_backends",
    "compute": "flow_compute_backends",
    "metadata": "flow_metadata_backends",
    "scheduler": "flow_scheduler_backends",
    "environment": "flow_environment_backends",
}

#: Kinds whose ``from_settings`` also receives the command's `Backends`.
USES_OTHER_BACKENDS = ("compute", "scheduler", "environment")

#: Where Flow's own remote backends come from, for the "not installed" message.
KNOWN_PACKAGES = {
    ("datastore", "s3"): "flow-datastore-s3",
    ("compute", "batch"): "flow-compute-batch",
    ("scheduler", "step-functions"): "flow-sched-sfn",
    ("metadata", "service"): "flow-metadata-service",
    ("environment", "pypi"): "flow-env",
    ("environment", "conda"): "flow-env",
}


@attrs.frozen
class RegisteredBackend:
    kind: str
    descriptor: Backend
    plugin: str  # distribution that registered it

    @property
    def name(self) -> str:
        return self.descriptor.name


@attrs.frozen
class PluginInfo:
    """What `flow plugins` shows for one distribution."""

    name: str
    version: str
    hooks: tuple[str, ...]
    backends: tuple[RegisteredBackend, ...]


def _comma_list(value: str | None) -> set[str] | None:
    if not value:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginRegistry:
    """The loaded plugins and what they provide. Build one with `load_plugins`."""

    def __init__(self, pm: pluggy.PluginManager, distributions: dict[str, importlib.metadata.Distribution | None],
                 failures: dict[str, str]):
        self.pm = pm
        self._distributions = distributions
        #: Distributions that failed to load, with the reason.
        self.failures = failures

    @cached_property
    def versions(self) -> dict[str, str]:
        """Each loaded plugin's version, read from its distribution's metadata on first use:
        reading it for every plugin cost each command tens of milliseconds, and only `flow
        plugins` and code packages ask."""
        return {name: dist.version if dist else _version(name) for name, dist in self._distributions.items()}

    # -- backends ---------------------------------------------------------------------------

    @cached_property
    def _backends(self) -> dict[str, dict[str, RegisteredBackend]]:
        table: dict[str, dict[str, RegisteredBackend]] = {kind: {} for kind in KINDS}
        for kind, hook_name in BACKEND_HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                for descriptor in impl.function() or ():
                    entry = RegisteredBackend(kind, descriptor, impl.plugin_name)
                    clash = table[kind].get(descriptor.name)
                    if clash is not None:
                        raise PluginError(
                            f"two plugins provide the {kind} backend '{descriptor.name}': "
                            f"{clash.plugin} and {impl.plugin_name}; uninstall one of them "
                            "or block it with METAFLOW_DISABLE_PLUGINS"
                        )
                    table[kind][descriptor.name] = entry
        return table

    def backends(self, kind: str) -> dict[str, RegisteredBackend]:
        return self._backends[kind]

    def backend_class(self, kind: str, name: str) -> type:
        """The class of the named backend, importing it now; a clear error if nobody provides it."""
        entry = self._backends[kind].get(name)
        if entry is None:
            installed = ", ".join(sorted(self._backends[kind])) or "none"
            raise BackendNotInstalled(
                f"{kind} '{name}' is not installed (installed: {installed}); {_install_hint(kind, name)}")
        return entry.descriptor.load(kind)

    def create_backend(self, kind: str, name: str, settings: Settings, backends: Any = None) -> Any:
        """Build the named backend. Computes and schedulers work with the command's other
        backends (a code package goes to its storage), so they are handed ``backends``."""
        cls = self.backend_class(kind, name)
        if kind in USES_OTHER_BACKENDS:
            return cls.from_settings(settings, backends)
        return cls.from_settings(settings)

    # -- everything else --------------------------------------------------------------------

    def _collect(self, hook_name: str) -> list[Any]:
        results = getattr(self.pm.hook, hook_name)()
        return [item for result in results for item in (result or ())]

    @cached_property
    def step_decorators(self) -> dict[str, type]:
        return {cls.name: cls for cls in self._collect("flow_step_decorators")}

    @cached_property
    def flow_decorators(self) -> dict[str, type]:
        return {cls.name: cls for cls in self._collect("flow_flow_decorators")}

    @cached_property
    def decorator_providers(self) -> dict[str, str]:
        """The distribution that provides each step and flow decorator, by decorator name."""
        providers: dict[str, str] = {}
        for hook_name in ("flow_step_decorators", "flow_flow_decorators"):
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                for cls in impl.function() or ():
                    providers[cls.name] = impl.plugin_name
        return providers

    @cached_property
    def card_types(self) -> dict[str, type]:
        """``{type name: MetaflowCard subclass}``, Flow's own first. A class that is not a card
        type is skipped with a warning naming its plugin; two plugins claiming one name is an error."""
        from flow_core.model.cards.card_class import MetaflowCard
        from flow_core.model.cards.card_slot import CARD_NAME

        table: dict[str, type] = {}
        providers: dict[str, str] = {}
        for impl in self.pm.hook.flow_card_types.get_hookimpls():  # in registration order: the core first
            for cls in impl.function() or ():
                name = getattr(cls, "type", None)
                if not (isinstance(cls, type) and issubclass(cls, MetaflowCard)) or not isinstance(name, str) \
                        or not CARD_NAME.match(name):
                    warnings.warn(f"plugin {impl.plugin_name} offers {cls!r} as a card type, but a card type is a "
                                  "MetaflowCard subclass whose `type` is made of letters, digits and underscores; "
                                  "it was skipped", stacklevel=2)
                    continue
                if name in table:
                    raise PluginError(f"two plugins provide the card type '{name}': {providers[name]} and "
                                      f"{impl.plugin_name}; uninstall one of them or block it with "
                                      "METAFLOW_DISABLE_PLUGINS")
                table[name] = cls
                providers[name] = impl.plugin_name
        return table

    @cached_property
    def exports(self) -> dict[str, str]:
        """``{name: "module:attribute"}`` of what plugins add to ``flow_core``'s names."""
        merged: dict[str, str] = {}
        for result in getattr(self.pm.hook, "flow_exports")():
            merged.update(result or {})
        return merged

    def cli_commands(self) -> list[Any]:
        return self._collect("flow_cli_commands")

    def flow_commands(self) -> list[Any]:
        return self._collect("flow_flow_commands")

    def settings(self) -> list[Any]:
        return self._collect("flow_settings")

    def plugins(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
            backends = tuple(
                entry for kind in KINDS for entry in self._backends[kind].values() if entry.plugin == name
            )
            infos.append(PluginInfo(name, self.versions.get(name, "?"), hooks, backends))
        infos.sort(key=lambda info: (info.name != CORE_PLUGIN_NAME, info.name))
        return infos


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_plugins(settings: Settings | None = None) -> PluginRegistry:
    """Build a registry: the core's plugin, then the entry points allowed by configuration."""
    settings = settings or Settings()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(builtin_plugin, name=CORE_PLUGIN_NAME)
    distributions: dict[str, importlib.metadata.Distribution | None] = {CORE_PLUGIN_NAME: None}
    failures: dict[str, str] = {}

    disabled = _comma_list(settings.get("METAFLOW_DISABLE_PLUGINS")) or set()
    only = _comma_list(settings.get("METAFLOW_LOAD_PLUGINS"))
    for ep in _entry_points():
        if ep.name in disabled or (only is not None and ep.name not in only):
            continue
        if pm.has_plugin(ep.name):  # the same distribution seen twice on sys.path
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take Flow down with it
            failures[ep.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"Flow plugin {ep.name} failed to load and was skipped: {exc}", stacklevel=2)
            continue
        try:
            pm.register(module, name=ep.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {ep.name} has a malformed hook implementation: {exc}") from None
        distributions[ep.name] = ep.dist
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin {pm.get_name(exc.plugin)} implements a hook Flow does not define ({exc}); "
            "check the hook's spelling against flow_core.plugin.hookspecs"
        ) from None
    return PluginRegistry(pm, distributions, failures)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_registry: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """The process's registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = load_plugins()
    return _registry


def reset_registry() -> None:
    """Forget the loaded plugins (tests; a process that changed its plugin settings)."""
    global _registry
    _registry = None


def current_settings(overrides: dict[str, str | None] | None = None) -> Settings:
    """Settings with every installed plugin's declarations, so all of them resolve and list."""
    settings = Settings(overrides=overrides)
    settings.declare(get_registry().settings())
    return settings


def _install_hint(kind: str, name: str) -> str:
    """Name the distribution that provides a backend, and say whether it is there."""
    package = KNOWN_PACKAGES.get((kind, name))
    if package is None:
        return "no installed plugin provides it; `flow plugins` lists what is installed"
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return f"it comes with the {package} plugin: from a Flow checkout, pip install ./plugins/{package}"
    return f"{package} {version} is installed but did not register it; `flow plugins` says why"
