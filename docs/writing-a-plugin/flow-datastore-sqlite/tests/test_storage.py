"""flow-datastore-sqlite passes the suite every Flow storage backend must pass."""

import multiprocessing

import pytest
from flow_core.plugin_api import ConfigError, Settings
from flow_core.testing import StorageConformance
from flow_datastore_sqlite.storage import SqliteStorage


class TestSqliteStorage(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path):
        return SqliteStorage(tmp_path / "blobs.sqlite")


def test_a_forked_process_writes_through_its_own_connection(tmp_path):
    storage = SqliteStorage(tmp_path / "blobs.sqlite")
    storage.put("from/parent", b"1")  # the parent's connection is now open
    child = multiprocessing.get_context("fork").Process(target=storage.put, args=("from/child", b"2"))
    child.start()
    child.join()
    assert child.exitcode == 0
    assert storage.get_many(["from/parent", "from/child"]) == {"from/parent": b"1", "from/child": b"2"}


def test_without_its_setting_it_says_which_one_to_set(tmp_path):
    settings = Settings(environ={"METAFLOW_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="^METAFLOW_DATASTORE_SQLITE_FILE is not set; set it to the file"):
        SqliteStorage.from_settings(settings)
