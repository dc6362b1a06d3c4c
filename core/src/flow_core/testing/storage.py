"""The tests every storage backend must pass.

Subclass `StorageConformance` in your plugin's tests and provide a ``storage`` fixture that
returns a backend on an empty root; the content-addressed store is exercised on top of it, so
passing means Flow stores runs on your backend exactly as it does locally.
"""

from __future__ import annotations

import os
import threading

import pytest

from flow_core.datastore.cas import ContentAddressedStore, DamagedObject, blob_key
from flow_core.datastore.task_store import FlowDataStore
from flow_core.errors import BlobNotFound


class StorageConformance:
    """Behaviour of `flow_core.plugin_api.StorageBackend` implementations."""

    @pytest.fixture
    def storage(self):
        raise NotImplementedError("a StorageConformance subclass must define a `storage` fixture")

    def test_put_then_get_returns_the_same_bytes(self, storage):
        storage.put_many([("a/one", b"1"), ("a/two", bytearray(b"22")), ("b", memoryview(b"333"))])
        assert dict(storage.get_many(["a/one", "a/two", "b"])) == {"a/one": b"1", "a/two": b"22", "b": b"333"}

    def test_get_buffer_gives_the_same_bytes_small_and_large(self, storage):
        large = os.urandom(3 * 1024 * 1024)
        storage.put_many([("buf/small", b"tiny"), ("buf/large", large)])
        assert bytes(storage.get_buffer("buf/small")) == b"tiny"
        assert bytes(storage.get_buffer("buf/large")) == large
        with pytest.raises(BlobNotFound):
            storage.get_buffer("buf/absent")

    def test_open_reader_streams_the_same_bytes_into_a_buffer(self, storage):
        large = os.urandom(3 * 1024 * 1024)
        storage.put_many([("stream/large", large)])
        into = bytearray(len(large))
        with storage.open_reader("stream/large") as reader:
            assert reader.read(4) == large[:4]
            filled = 4
            while filled < len(large):
                got = reader.readinto(memoryview(into)[filled:])
                assert got
                filled += got
            assert reader.read(1) == b""
        assert into[4:] == large[4:]
        with pytest.raises(BlobNotFound):
            storage.open_reader("stream/absent")

    def test_put_pieces_stores_their_concatenation(self, storage):
        large = os.urandom(2 * 1024 * 1024)
        storage.put_pieces("pieces/one", [b"head", memoryview(large), bytearray(b"tail")])
        assert storage.get("pieces/one") == b"head" + large + b"tail"
        storage.put_pieces("pieces/one", [b"other"], overwrite=False)
        assert storage.get("pieces/one")[:4] == b"head"

    def test_empty_blob_round_trips(self, storage):
        storage.put("empty", b"")
        assert storage.get("empty") == b""

    def test_missing_key_raises_blob_not_found_naming_it(self, storage):
        storage.put("present", b"x")
        with pytest.raises(BlobNotFound) as info:
            storage.get_many(["present", "absent/key"])
        assert "absent/key" in str(info.value)

    def test_exists_many_returns_only_existing_keys(self, storage):
        storage.put_many([("x/1", b"1"), ("x/2", b"2")])
        assert storage.exists_many(["x/1", "x/2", "x/3", "y"]) == {"x/1", "x/2"}
        assert storage.exists("x/1") and not storage.exists("x/3")

    def test_overwrite_false_keeps_the_first_blob(self, storage):
        storage.put("k", b"first")
        storage.put("k", b"second", overwrite=False)
        assert storage.get("k") == b"first"
        storage.put("k", b"third")
        assert storage.get("k") == b"third"

    def test_list_yields_sorted_keys_under_a_prefix(self, storage):
        keys = ["p/b/2", "p/a/1", "p/c", "q/1", "pp/1"]
        storage.put_many([(k, k.encode()) for k in keys])
        assert list(storage.list("p/")) == ["p/a/1", "p/b/2", "p/c"]
        assert list(storage.list("p/b/")) == ["p/b/2"]
        assert list(storage.list("nothing/")) == []
        assert {"p/a/1", "q/1", "pp/1"} <= set(storage.list(""))

    def test_large_batches_and_large_blobs(self, storage):
        items = [(f"batch/{i:04d}", os.urandom(64) * (i % 7 + 1)) for i in range(200)]
        big = os.urandom(3 * 1024 * 1024)
        storage.put_many(items + [("big", big)])
        got = storage.get_many([k for k, _ in items] + ["big"])
        assert all(got[k] == v for k, v in items)
        assert got["big"] == big

    def test_concurrent_writers_of_one_key_leave_a_whole_blob(self, storage):
        blobs = [bytes([i]) * 200_000 for i in range(8)]
        threads = [threading.Thread(target=storage.put, args=("race", blob)) for blob in blobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert storage.get("race") in blobs

    def test_delete_many_removes_blobs_and_ignores_missing_ones(self, storage):
        storage.put_many([("del/1", b"1"), ("del/2", b"2"), ("keep", b"k")])
        storage.delete_many(["del/1", "del/2", "del/never-there"])
        assert storage.exists_many(["del/1", "del/2", "keep"]) == {"keep"}

    def test_remove_leftovers_keeps_every_stored_blob(self, storage):
        storage.put_many([("left/1", b"1"), ("left/2", b"2")])
        storage.remove_leftovers(older_than=0)
        assert storage.get_many(["left/1", "left/2"]) == {"left/1": b"1", "left/2": b"2"}

    def test_describe_says_where(self, storage):
        assert isinstance(storage.describe(), str) and storage.describe()

    # -- the content-addressed store on this backend -----------------------------------------

    def test_a_damaged_object_is_refused_on_read(self, storage):
        cas = ContentAddressedStore(storage)
        records = cas.save_values({"text": "hello world"})
        key = blob_key(records["text"].key)
        blob = bytearray(storage.get(key))
        blob[-1] ^= 0x04
        storage.put(key, bytes(blob))
        with pytest.raises(DamagedObject, match=key):
            ContentAddressedStore(storage).load_values(records)

    def test_values_round_trip_exactly_through_the_store(self, storage):
        values = {
            "none": None, "flag": True, "small": 7, "huge": 2**80, "negative_huge": -(2**70), "pi": 3.25,
            "text": "héllo", "raw": b"\x00\xff", "tuple": (1, "a", (2,)), "set": {1, 2, 3},
            "frozen": frozenset({"x"}), "list": [1, [2, (3,)]], "dict": {"a": {"b": [1, 2]}},
            "int_keys": {1: "one", 2: "two"}, "big_text": "abc" * 500_000,
        }
        cas = ContentAddressedStore(storage)
        records = cas.save_values(values)
        loaded = ContentAddressedStore(storage).load_values(records)
        assert loaded == values
        for name, value in values.items():
            assert type(loaded[name]) is type(value), name

    def test_equal_values_are_stored_once(self, storage):
        cas = ContentAddressedStore(storage)
        first = cas.save_values({"a": list(range(1000))})
        second = cas.save_values({"b": list(range(1000))})
        assert first["a"].key == second["b"].key
        assert len([k for k in storage.list("data/")]) == 1

    def test_task_index_commits_artifacts_logs_and_info(self, storage):
        datastore = FlowDataStore(storage)
        attempt = datastore.task("ConformanceFlow", "1", "start", "1", 0)
        attempt.save_artifacts({"x": 1, "y": ("a", "b")})
        attempt.save_log("stdout", b"hello\n")
        attempt.info.success = True
        with pytest.raises(Exception):
            datastore.open_task("ConformanceFlow", "1", "start", "1")  # nothing committed yet
        attempt.commit()
        stored = datastore.open_task("ConformanceFlow", "1", "start", "1")
        assert stored.attempt == 0
        assert sorted(stored.names()) == ["x", "y"]
        assert stored.load("y") == ("a", "b")
        assert stored.log("stdout") == b"hello\n" and stored.log("stderr") == b""
        assert stored.info.success is True
        assert datastore.committed_attempts("ConformanceFlow", "1", "start", "1") == [0]
