"""docs/writing-a-plugin.md: its finished plugin, installed as a user installs it, passes its
tests, runs a flow and is read back; and the page shows that plugin's files as committed."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys

import pytest
from flow_core import Flow, client
from flow_core.plugin.registry import reset_registry
from flow_core.testing import last_error, run_id_of

from .conftest import REPO, assert_storage_conformance_passed, run_plugin_tests

DOC = REPO / "docs" / "writing-a-plugin.md"
PLUGIN = REPO / "docs" / "writing-a-plugin" / "flow-datastore-sqlite"
HELLO = REPO / "examples" / "hello.py"
#: A fenced block the page marks as a file: ```python title="src/…/storage.py"
FILE_BLOCK = re.compile(r'^(`{3,})\w+ title="([^"]+)"\n(.*?)^\1$', re.S | re.M)


@pytest.fixture
def sqlite_site(install_distribution):
    return install_distribution(PLUGIN)


def hello(flow_env, site=None, **settings: str) -> subprocess.CompletedProcess:
    """``python examples/hello.py --datastore sqlite run``, with the plugin on the path or not."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(flow_env, **settings, **({"PYTHONPATH": str(site)} if site else {}))
    return subprocess.run([sys.executable, str(HELLO), "--datastore", "sqlite", "run"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_finished_plugin_passes_its_own_tests_and_the_storage_conformance_suite(sqlite_site):
    tested = run_plugin_tests(PLUGIN, sqlite_site)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert_storage_conformance_passed(tested.stdout)
    assert "test_a_forked_process_writes_through_its_own_connection PASSED" in tested.stdout


def test_a_flow_runs_on_the_sqlite_datastore_and_the_client_reads_it_back(sqlite_site, flow_env, tmp_path,
                                                                          monkeypatch):
    blobs = tmp_path / "blobs.sqlite"
    ran = hello(flow_env, sqlite_site, METAFLOW_DATASTORE_SQLITE_FILE=str(blobs))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Hello, Flow! has 9 letters." in ran.stdout
    run_id = run_id_of(ran.stdout)

    with sqlite3.connect(blobs) as connection:
        keys = [key for (key,) in connection.execute("SELECT key FROM blobs")]
    assert any(key.startswith("data/") for key in keys)
    index = re.compile(rf"flows/HelloFlow/{run_id}/(\w+)/\d+/0\.index")
    indexed = {match.group(1) for key in keys if (match := index.fullmatch(key))}
    assert {"start", "count", "end"} <= indexed, keys
    assert not list(flow_env.root.rglob("*.index")), "the run wrote task indexes to the local datastore"

    monkeypatch.syspath_prepend(str(sqlite_site))
    monkeypatch.setenv("METAFLOW_DEFAULT_DATASTORE", "sqlite")
    monkeypatch.setenv("METAFLOW_DATASTORE_SQLITE_FILE", str(blobs))
    reset_registry()
    client.namespace(None)
    run = Flow("HelloFlow")[run_id]
    assert run.successful
    assert run.data.letters == 9
    assert run["start"].task.data.greeting == "Hello, Flow!"
    assert "Hello, Flow! has 9 letters." in run["end"].task.stdout


def test_flow_plugins_lists_it_and_the_page_shows_what_it_prints(sqlite_site, flow_cli):
    listed = flow_cli("plugins", env={"PYTHONPATH": str(sqlite_site)})
    assert listed.returncode == 0, listed.stderr
    shown = ("flow-datastore-sqlite 0.1.0\n  datastore:    sqlite\n"
             "  hooks:        flow_settings, flow_storage_backends\n")
    assert shown in listed.stdout
    assert shown in DOC.read_text()


def test_without_the_plugin_or_its_setting_a_run_stops_with_the_sentence_the_page_shows(sqlite_site, flow_env):
    page = DOC.read_text()
    for result, expected in ((hello(flow_env), "Error: datastore 'sqlite' is not installed"),
                             (hello(flow_env, sqlite_site), "Error: METAFLOW_DATASTORE_SQLITE_FILE is not set")):
        assert result.returncode != 0
        assert "Traceback" not in result.stderr, result.stderr
        error = last_error(result)
        assert error.startswith(expected), error
        assert f"\n{error}\n" in page, f"the page does not show: {error}"
    assert not list(flow_env.root.rglob("*.index"))


def test_the_page_shows_every_file_of_the_plugin_exactly_as_committed():
    shown = {name: body for _, name, body in FILE_BLOCK.findall(DOC.read_text())}
    committed = {str(path.relative_to(PLUGIN)): path.read_text() for path in PLUGIN.rglob("*")
                 if path.is_file() and not any(part.startswith((".", "__pycache__")) or part.endswith(".egg-info")
                                               for part in path.relative_to(PLUGIN).parts)}
    assert sorted(shown) == sorted(committed)
    for name, body in committed.items():
        assert shown[name] == body, f"docs/writing-a-plugin.md shows an out-of-date {name}"
