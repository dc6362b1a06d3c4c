"""The core's local backends pass the conformance kit every backend must pass."""

from __future__ import annotations

import functools

import pytest
from flow_core.backends.local_metadata import LocalMetadata
from flow_core.backends.local_storage import LocalStorage
from flow_core.testing import MetadataConformance, StorageConformance


class TestLocalStorage(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path):
        return LocalStorage(tmp_path / "root")

    def test_no_temporary_files_are_left_behind(self, storage, tmp_path):
        storage.put_many([(f"k/{i}", b"x" * i) for i in range(20)])
        leftovers = [p for p in (tmp_path / "root").rglob("*") if p.name.startswith(".tmp-")]
        assert leftovers == []

    def test_keys_cannot_escape_the_root(self, storage):
        from flow_core.errors import DataStoreError

        for bad in ["../outside", "/abs", "a//b", "a/./b", "spaces here"]:
            with pytest.raises(DataStoreError, match="not a valid datastore key"):
                storage.put(bad, b"x")


class TestLocalMetadata(MetadataConformance):
    @pytest.fixture
    def metadata_factory(self, tmp_path):
        return functools.partial(LocalMetadata, tmp_path / "root")

    def test_database_lives_under_the_local_root_in_wal_mode(self, metadata, tmp_path):
        metadata.new_run("F", "u")
        assert (tmp_path / "root" / "metadata.sqlite").exists()
        (mode,) = metadata._connection().execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"

    def test_a_newer_schema_is_refused_with_a_clear_error(self, metadata_factory):
        from flow_core.errors import MetadataError

        first = metadata_factory()
        first.new_run("F", "u")
        first._connection().execute("PRAGMA user_version=99")
        with pytest.raises(MetadataError, match="newer flow-core"):
            metadata_factory().list_flows()


#: The local metadata schema of version 1, as flow-core wrote it before runs and tasks had names.
SCHEMA_V1 = """
CREATE TABLE flows (name TEXT PRIMARY KEY, created_at REAL NOT NULL, next_run INTEGER NOT NULL DEFAULT 1);
CREATE TABLE runs (
    flow_name TEXT NOT NULL, run_number INTEGER NOT NULL, user TEXT NOT NULL, created_at REAL NOT NULL,
    status TEXT NOT NULL, finished_at REAL, heartbeat_at REAL, origin_run_id TEXT,
    next_task INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (flow_name, run_number));
CREATE TABLE run_tags (
    flow_name TEXT NOT NULL, run_number INTEGER NOT NULL, tag TEXT NOT NULL, is_system INTEGER NOT NULL,
    PRIMARY KEY (flow_name, run_number, tag, is_system));
CREATE INDEX run_tags_by_tag ON run_tags (flow_name, tag);
CREATE TABLE steps (
    flow_name TEXT NOT NULL, run_number INTEGER NOT NULL, step_name TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (flow_name, run_number, step_name));
CREATE TABLE tasks (
    flow_name TEXT NOT NULL, run_number INTEGER NOT NULL, step_name TEXT NOT NULL, task_number INTEGER NOT NULL,
    created_at REAL NOT NULL, attempt INTEGER NOT NULL DEFAULT -1, status TEXT NOT NULL, finished_at REAL,
    PRIMARY KEY (flow_name, run_number, task_number));
CREATE INDEX tasks_by_step ON tasks (flow_name, run_number, step_name, task_number);
CREATE TABLE artifacts (
    flow_name TEXT NOT NULL, run_number INTEGER NOT NULL, task_number INTEGER NOT NULL, attempt INTEGER NOT NULL,
    name TEXT NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, size INTEGER NOT NULL, encoding TEXT NOT NULL,
    PRIMARY KEY (flow_name, run_number, task_number, attempt, name));
CREATE TABLE fields (
    flow_name TEXT NOT NULL, run_number INTEGER NOT NULL, task_number INTEGER NOT NULL, attempt INTEGER NOT NULL,
    field TEXT NOT NULL, value TEXT NOT NULL, type TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX fields_by_task ON fields (flow_name, run_number, task_number);
INSERT INTO flows VALUES ('Old', 100.0, 2);
INSERT INTO runs VALUES ('Old', 1, 'alice', 100.0, 'succeeded', 110.0, 110.0, NULL, 2);
INSERT INTO run_tags VALUES ('Old', 1, 'user:alice', 1);
INSERT INTO steps VALUES ('Old', 1, 'start', 101.0);
INSERT INTO tasks VALUES ('Old', 1, 'start', 1, 101.0, 0, 'succeeded', 109.0);
INSERT INTO artifacts VALUES ('Old', 1, 1, 0, 'alpha', 'k', 'builtins.int', 3, 'msgpack');
INSERT INTO fields VALUES ('Old', 1, 1, 0, 'hostname', 'h1', '', 102.0);
PRAGMA user_version = 1;
"""


def test_a_version_1_local_database_is_migrated_on_open(tmp_path):
    import sqlite3

    from flow_core.backends.local_metadata import SCHEMA_VERSION
    from flow_core.backends.records import SUCCEEDED, ArtifactRecord, AttemptRecord

    (tmp_path / "root").mkdir()
    with sqlite3.connect(tmp_path / "root" / "metadata.sqlite") as conn:
        conn.executescript(SCHEMA_V1)
    metadata = LocalMetadata(tmp_path / "root")
    run = metadata.get_run("Old", "1")
    assert (run.run_id, run.user, run.status, run.system_tags) == ("1", "alice", SUCCEEDED, {"user:alice"})
    (task,) = metadata.list_tasks("Old", "1")
    assert (task.task_id, task.step_name, task.status) == ("1", "start", SUCCEEDED)
    assert metadata.list_artifacts("Old", "1", "start", "1") == [ArtifactRecord("alpha", "k", "builtins.int", 3,
                                                                                "msgpack", 0)]
    assert [f.value for f in metadata.list_metadata("Old", "1", "start", "1")] == ["h1"]
    assert metadata._connection().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    # attempts recorded before the attempts table are read back from their fields and task
    assert metadata.list_attempts("Old", "1") == [AttemptRecord("start", "1", 0, 102.0, 109.0, SUCCEEDED)]

    named = metadata.new_run("Old", "bob", run_id="sfn-after")
    assert metadata.new_run("Old", "bob").run_id == "3"
    metadata.register_tasks("Old", "1", "end", ["t-late"])
    assert [t.task_id for t in metadata.list_tasks("Old", "1")] == ["1", "t-late"]
    assert [r.run_id for r in metadata.list_runs("Old")] == ["3", named.run_id, "1"]
    assert LocalMetadata(tmp_path / "root").get_run("Old", "sfn-after") == named


def test_names_are_resolved_without_touching_numbered_lookups(tmp_path):
    metadata = LocalMetadata(tmp_path / "root")
    run = metadata.new_run("F", "u")
    metadata.register_tasks("F", run.run_id, "start", ["t-1"])
    (numbered,) = metadata.new_tasks("F", run.run_id, "start")
    statements: list[str] = []
    metadata._connection().set_trace_callback(statements.append)
    metadata.start_attempt("F", run.run_id, "start", numbered, 0)
    assert not any("task_name" in s or "run_name" in s for s in statements)
    metadata.start_attempt("F", run.run_id, "start", "t-1", 0)
    assert any("task_name" in s for s in statements)


def test_a_task_name_belongs_to_one_step_of_its_run(tmp_path):
    from flow_core.errors import MetadataError

    metadata = LocalMetadata(tmp_path / "root")
    metadata.new_run("F", "u", run_id="sfn-1")
    metadata.register_tasks("F", "sfn-1", "start", ["t-1"])
    with pytest.raises(MetadataError, match="belongs to step start"):
        metadata.register_tasks("F", "sfn-1", "end", ["t-1"])
    assert [t.step_name for t in metadata.list_tasks("F", "sfn-1")] == ["start"]


def test_the_default_list_attempts_agrees_with_the_local_one_query(tmp_path):
    """A backend that does not override `list_attempts` gets the base class's, built on
    `list_tasks` and `list_metadata`: same attempts, same outcomes."""
    from flow_core.backends.metadata import MetadataBackend

    metadata = LocalMetadata(tmp_path / "root")
    run = metadata.new_run("F", "u")
    retried, running, waiting = metadata.new_tasks("F", run.run_id, "start", count=3)
    metadata.start_attempt("F", run.run_id, "start", retried, 0, {"hostname": "h"})
    metadata.finish_attempt("F", run.run_id, "start", retried, 0, False)
    metadata.start_attempt("F", run.run_id, "start", retried, 1, {"hostname": "h"})
    metadata.finish_attempt("F", run.run_id, "start", retried, 1, True)
    metadata.start_attempt("F", run.run_id, "start", running, 0, {"hostname": "h"})

    def shape(attempts):
        return [(a.task_id, a.attempt, a.status, a.finished_at is None) for a in attempts]

    expected = [(retried, 0, "failed", False), (retried, 1, "succeeded", False), (running, 0, "running", True)]
    assert shape(metadata.list_attempts("F", run.run_id)) == expected
    assert shape(MetadataBackend.list_attempts(metadata, "F", run.run_id)) == expected
