"""The core's local backends pass the conformance kit every backend must pass."""

from __future__ import annotations

import functools

import pytest

from flow_core.metadata.local import LocalMetadata
from flow_core.storage.local import LocalStorage
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
