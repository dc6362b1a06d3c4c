"""plugins/_template/: the start of every new plugin, outside the workspace, working as copied."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, assert_storage_conformance_passed, environment, run_plugin_tests, uv

TEMPLATE = REPO / "plugins" / "_template"
TUTORIAL_PLUGIN = REPO / "docs" / "writing-a-plugin" / "flow-datastore-sqlite"
NEW_PLUGIN = REPO / "scripts" / "new_plugin.py"
PLACEHOLDERS = ("my-plugin", "my_plugin", "MyPlugin")


def new_plugin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(NEW_PLUGIN), *args], env=environment(), capture_output=True,
                          text=True, timeout=60, check=False)


def test_a_plugin_made_from_the_template_installs_passes_its_tests_and_is_listed(tmp_path, install_distribution):
    made = new_plugin("flow-datastore-kv", "--into", str(tmp_path))
    assert made.returncode == 0, made.stderr
    plugin = tmp_path / "flow-datastore-kv"
    files = sorted(str(p.relative_to(plugin)) for p in plugin.rglob("*") if p.is_file())
    assert files == ["README.md", "pyproject.toml", "src/flow_datastore_kv/__init__.py",
                     "src/flow_datastore_kv/plugin.py", "src/flow_datastore_kv/storage.py", "tests/test_storage.py"]
    leftovers = [f for f in files for placeholder in PLACEHOLDERS if placeholder in (plugin / f).read_text()]
    assert not leftovers, f"placeholders left in {leftovers}"

    site = install_distribution(plugin)
    tested = run_plugin_tests(plugin, site)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert_storage_conformance_passed(tested.stdout)
    assert "::TestKvStorage::" in tested.stdout  # the renamed class ran them

    listed = subprocess.run([sys.executable, "-m", "flow_core", "plugins"], cwd=tmp_path,
                            env=environment(PYTHONPATH=str(site), METAFLOW_HOME=str(tmp_path / "home")),
                            capture_output=True, text=True, timeout=120, check=False)
    assert "flow-datastore-kv 0.1.0\n  datastore:    kv\n" in listed.stdout, listed.stdout + listed.stderr


def test_the_script_refuses_a_bad_name_or_an_existing_folder_in_one_sentence(tmp_path):
    bad = new_plugin("Flow_SQLite", "--into", str(tmp_path))
    assert bad.returncode != 0
    assert bad.stderr.strip() == ("'Flow_SQLite' is not a plugin distribution name; use lower-case words joined by "
                                  "dashes, starting with flow- (flow-datastore-sqlite)")
    assert new_plugin("flow-datastore-kv", "--into", str(tmp_path)).returncode == 0
    again = new_plugin("flow-datastore-kv", "--into", str(tmp_path))
    assert again.returncode != 0
    existing = tmp_path / "flow-datastore-kv"
    assert again.stderr.strip() == f"{existing} already exists; choose another name or remove it first"


def test_the_template_is_not_a_workspace_member():
    """`uv sync --all-packages` would otherwise install the placeholder distribution."""
    assert (TEMPLATE / "pyproject.toml").exists()
    assert "flow-my-plugin" not in (REPO / "uv.lock").read_text()
    checked = subprocess.run([uv(), "lock", "--check", "--offline"], cwd=REPO, env=environment(),
                             capture_output=True, text=True, timeout=120, check=False)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("source", [TEMPLATE / "src", TUTORIAL_PLUGIN / "src"], ids=["template", "tutorial"])
def test_plugins_started_here_import_only_the_plugin_api_from_flow(source: Path):
    """The import-linter contract covers the workspace's plugins; these two are not installed there."""
    reached = set()
    for path in source.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                reached.add(node.module)
            elif isinstance(node, ast.Import):
                reached.update(alias.name for alias in node.names)
    assert {name for name in reached if name.split(".")[0] == "flow_core"} == {"flow_core.plugin_api"}
