"""The plugin system: registration through hooks, selection by name, and its failures."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from flow_core.errors import BackendNotInstalled, PluginError
from flow_core.plugin.registry import load_plugins

MEMORY_PLUGIN = """
    from flow_core.plugin_api import Backend, hookimpl

    @hookimpl
    def flow_storage_backends():
        return [Backend("memory", "flow_memory_store_impl:MemoryStorage")]
"""

MEMORY_IMPL = """
    from flow_core.plugin_api import StorageBackend

    class MemoryStorage(StorageBackend):
        name = "memory"
        @classmethod
        def from_settings(cls, settings):
            return cls()
        def put_many(self, items, overwrite=True): pass
        def get_many(self, keys): return {}
        def exists_many(self, keys): return set()
        def list(self, prefix=""): return iter(())
        def describe(self): return "memory"
"""


def test_core_registers_four_local_backends(plugin_registry):
    for kind in ("datastore", "compute", "metadata", "scheduler"):
        entry = plugin_registry.backends(kind)["local"]
        assert entry.plugin == "flow-core"
        assert plugin_registry.backend_class(kind, "local").name == "local"


def test_unknown_backend_names_it_the_installed_ones_and_a_package(plugin_registry):
    with pytest.raises(BackendNotInstalled) as err:
        plugin_registry.backend_class("datastore", "nosuch")
    message = str(err.value)
    assert "'nosuch'" in message and "installed: local" in message
    assert "no installed plugin provides it; `flow plugins` lists what is installed" in message


def test_a_known_backend_names_its_distribution_and_whether_it_is_installed(monkeypatch):
    import importlib.metadata

    from flow_core.plugin.settings import Settings

    plugin_registry = load_plugins(Settings(overrides={"METAFLOW_DISABLE_PLUGINS": "flow-sched-sfn"}))
    with pytest.raises(BackendNotInstalled, match=r"flow-sched-sfn \S+ is installed but did not register it"):
        plugin_registry.backend_class("scheduler", "step-functions")  # installed, but not loaded

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", absent)
    with pytest.raises(BackendNotInstalled,
                       match=r"comes with the flow-sched-sfn plugin: from a Flow checkout, pip install "
                             r"\./plugins/flow-sched-sfn"):
        plugin_registry.backend_class("scheduler", "step-functions")


def test_entry_point_plugin_is_loaded_and_its_backend_imported_only_when_selected(install_plugin, site):
    install_plugin("flow-memory-store", MEMORY_PLUGIN)
    (site / "flow_memory_store_impl.py").write_text(MEMORY_IMPL.replace("\n    ", "\n"))
    registry = load_plugins()
    assert registry.backends("datastore")["memory"].plugin == "flow-memory-store"
    assert "flow_memory_store_impl" not in sys.modules
    assert registry.backend_class("datastore", "memory").__name__ == "MemoryStorage"
    info = {p.name: p for p in registry.plugins()}["flow-memory-store"]
    assert info.version == "9.9.9" and info.hooks == ("flow_storage_backends",)


def test_two_plugins_claiming_one_backend_is_an_error_naming_both(install_plugin):
    install_plugin("flow-dupe-local", """
        from flow_core.plugin_api import Backend, hookimpl
        @hookimpl
        def flow_storage_backends():
            return [Backend("local", "flow_core.backends.local_storage:LocalStorage")]
    """)
    with pytest.raises(PluginError, match="flow-core and flow-dupe-local"):
        load_plugins().backends("datastore")


def test_broken_plugin_is_reported_by_name_and_the_rest_still_work(install_plugin):
    install_plugin("flow-broken", "raise ImportError('no module named nowhere')\n")
    with pytest.warns(UserWarning, match="flow-broken"):
        registry = load_plugins()
    assert "no module named nowhere" in registry.failures["flow-broken"]
    assert registry.backend_class("datastore", "local").name == "local"


def test_disable_and_load_plugins_settings(install_plugin, monkeypatch):
    install_plugin("flow-memory-store", MEMORY_PLUGIN)
    monkeypatch.setenv("METAFLOW_DISABLE_PLUGINS", "flow-memory-store")
    assert "memory" not in load_plugins().backends("datastore")
    monkeypatch.delenv("METAFLOW_DISABLE_PLUGINS")
    monkeypatch.setenv("METAFLOW_LOAD_PLUGINS", "flow-memory-store")
    registry = load_plugins()
    assert "memory" in registry.backends("datastore")
    assert {p.name for p in registry.plugins()} == {"flow-core", "flow-memory-store"}


def test_misspelled_hook_fails_loudly(install_plugin):
    install_plugin("flow-misspelled", """
        from flow_core.plugin_api import hookimpl
        @hookimpl
        def flow_storage_backend():
            return []
    """)
    with pytest.raises(PluginError, match="flow-misspelled.*flow_storage_backend"):
        load_plugins()


def test_descriptor_name_must_match_the_class(install_plugin):
    install_plugin("flow-wrong-name", """
        from flow_core.plugin_api import Backend, hookimpl
        from flow_core.backends.local_storage import LocalStorage
        @hookimpl
        def flow_storage_backends():
            return [Backend("elsewhere", LocalStorage)]
    """)
    with pytest.raises(PluginError, match="registered as 'elsewhere'.*named 'local'"):
        load_plugins().backend_class("datastore", "elsewhere")


def test_flow_plugins_command_lists_backends_and_versions(flow_cli):
    result = flow_cli("plugins")
    assert result.returncode == 0, result.stderr
    core = result.stdout.split("\n\n")[0]
    assert "flow-core 0.1.0" in core
    for kind in ("datastore", "compute", "metadata", "scheduler"):
        assert f"{kind}:" in result.stdout
    assert "flow-datastore-s3 0.1.0" in result.stdout


LINES_PLUGIN = """
    import click
    from flow_core.plugin_api import hookimpl

    @click.command("lines", help="Count the flow's steps.")
    @click.option("--prefix", default="steps")
    @click.pass_obj
    def lines(state, prefix):
        graph = state.flow.graph()
        click.echo(f"{prefix} of {state.flow.name}: {len(graph.nodes)} via {state.backends().metadata.name}")

    @hookimpl
    def flow_flow_commands():
        return [lines]
"""


def test_a_plugins_flow_command_is_reached_from_both_command_lines(install_plugin, site, write_flow, flow_env):
    install_plugin("flow-lines", LINES_PLUGIN)
    flow_file = write_flow("tiny.py", """
        from flow_core import FlowSpec, step

        class Tiny(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            Tiny()
    """)
    env = {**os.environ, **flow_env, "PYTHONPATH": str(site)}
    as_script = subprocess.run([sys.executable, str(flow_file), "lines", "--prefix", "count"],
                               capture_output=True, text=True, env=env, timeout=60)
    through_flow = subprocess.run([sys.executable, "-m", "flow_core", "lines", str(flow_file), "--prefix", "count"],
                                  capture_output=True, text=True, env=env, timeout=60)
    assert as_script.stdout.strip() == "count of Tiny: 2 via local", as_script.stderr
    assert through_flow.stdout == as_script.stdout, through_flow.stderr


OWNER_PLUGIN = """
    from flow_core.plugin_api import FlowDecorator, hookimpl

    class owner(FlowDecorator):
        name = "owner"
        defaults = {"team": None}

    @hookimpl
    def flow_flow_decorators():
        return [owner]
"""


def test_a_plugins_flow_decorator_is_importable_from_flow_core_and_attaches(install_plugin, monkeypatch):
    import flow_core

    install_plugin("flow-owner", OWNER_PLUGIN)
    monkeypatch.delitem(flow_core.__dict__, "owner", raising=False)
    from flow_core import FlowSpec, owner

    @owner(team="forecasting")
    class Owned(FlowSpec):
        pass

    assert Owned._flow_decorators["owner"].attributes == {"team": "forecasting"}
    monkeypatch.delitem(flow_core.__dict__, "owner", raising=False)


GREETER_PLUGIN = """
    from flow_core.plugin_api import hookimpl

    class Greeter:
        def hello(self):
            return "hello from a plugin"

    @hookimpl
    def flow_exports():
        return {"Greeter": "flow_greeter:Greeter"}
"""


def test_a_name_a_plugin_exports_is_importable_from_flow_core(install_plugin, monkeypatch):
    import flow_core

    install_plugin("flow-greeter", GREETER_PLUGIN)
    monkeypatch.delitem(flow_core.__dict__, "Greeter", raising=False)
    from flow_core import Greeter

    assert Greeter().hello() == "hello from a plugin"
    monkeypatch.delitem(flow_core.__dict__, "Greeter", raising=False)


def test_every_hook_is_documented_with_an_example_and_implemented_by_a_test():
    """As datasette does: a hook nobody exercises is a hook that may silently break."""
    from pathlib import Path

    from flow_core.plugin import hookspecs

    repo = Path(__file__).resolve().parents[2]
    implementations = [*repo.glob("tests/**/*.py"), *repo.glob("plugins/*/src/**/*.py"),
                       repo / "core/src/flow_core/plugin/builtins.py"]  # the core's own plugin
    sources = [p.read_text() for p in implementations]
    hooks = [name for name in dir(hookspecs) if name.startswith("flow_")]
    assert len(hooks) == 12
    for name in hooks:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert f"def {name}():" in doc, f"the docstring of {name} has no example"
        assert any(f"def {name}(" in source for source in sources), f"no test or plugin implements {name}"


SCORES_CARD = """
    from flow_core.plugin_api import MetaflowCard, hookimpl

    class ScoresCard(MetaflowCard):
        type = "scores"

        def render(self, task):
            return "<html><body>scores</body></html>"

    class NotACard:
        type = "stray"

    @hookimpl
    def flow_card_types():
        return [ScoresCard, NotACard]
"""


def test_a_plugin_adds_card_types_and_a_clash_names_both_plugins(install_plugin):
    install_plugin("flow-scores-card", SCORES_CARD)
    with pytest.warns(UserWarning, match="plugin flow-scores-card offers .*NotACard.* it was skipped"):
        types = load_plugins().card_types
    assert list(types) == ["default", "blank", "scores"] and types["scores"].__name__ == "ScoresCard"
    info = {p.name: p for p in load_plugins().plugins()}["flow-scores-card"]
    assert info.hooks == ("flow_card_types",)

    install_plugin("flow-blank-too", """
        from flow_core.plugin_api import MetaflowCard, hookimpl

        class Blank(MetaflowCard):
            type = "blank"

        @hookimpl
        def flow_card_types():
            return [Blank]
    """)
    with pytest.raises(PluginError, match="card type 'blank': flow-core and flow-blank-too"):
        load_plugins().card_types
