"""Damage in the datastore is refused, never handed back as a value: a flipped byte in any kind
of stored object, a truncated or garbage task index, a temporary file a killed writer left."""

from __future__ import annotations

import concurrent.futures
import os
import time

import msgpack
import numpy as np
import pytest
from flow_core.backends.local_storage import LocalStorage
from flow_core.datastore import cas as cas_module
from flow_core.datastore import run_check
from flow_core.datastore.cas import (
    HEADER,
    ContentAddressedStore,
    DamagedObject,
    blob_key,
)
from flow_core.datastore.task_store import DamagedIndex, FlowDataStore, index_key
from flow_core.errors import DataStoreError

MiB = 1024 * 1024


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "root")


@pytest.fixture
def datastore(storage):
    return FlowDataStore(storage)


def flip_byte(storage: LocalStorage, key: str, offset: int) -> None:
    path = storage.root / key
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x04
    path.write_bytes(bytes(data))


def committed_task(datastore: FlowDataStore, values: dict, task_id: str = "1"):
    store = datastore.task("F", "1", "start", task_id, 0)
    records = store.save_artifacts(values)
    store.save_log("stdout", b"hello\n")
    store.commit()
    return records


def reopened(datastore: FlowDataStore, task_id: str = "1"):
    return FlowDataStore(datastore.storage).open_task("F", "1", "start", task_id)


@pytest.mark.parametrize("value, expect_flags", [
    (12345, 0),                                        # msgpack, stored as it is
    ("hello world", 0),
    ("hello world " * 1000, cas_module.FLAG_ZSTD),     # compressed
    (np.arange(100_000, dtype=np.float64), None),      # pickle with an out-of-band buffer
])
def test_a_flipped_byte_in_a_stored_value_is_refused_naming_object_artifact_and_task(
        datastore, storage, value, expect_flags):
    records = committed_task(datastore, {"x": value})
    key = blob_key(records["x"].key)
    if expect_flags is not None:
        assert HEADER.unpack_from(storage.get(key))[2] == expect_flags
    flip_byte(storage, key, len(storage.get(key)) - 1)

    with pytest.raises(DataStoreError) as caught:
        reopened(datastore).load("x")
    message = str(caught.value)
    assert key in message and "artifact 'x'" in message and "F/1/start/1" in message
    assert "damaged" in message and "\n" not in message


def test_a_flipped_byte_in_one_chunk_of_a_large_value_is_refused(datastore, storage):
    value = np.random.default_rng(1).integers(0, 255, size=40 * MiB, dtype=np.uint8)  # three chunks
    records = committed_task(datastore, {"big": value})
    manifest = msgpack.unpackb(storage.get(blob_key(records["big"].key))[HEADER.size:])
    assert len(manifest["chunks"]) == 3
    chunk_key = blob_key(manifest["chunks"][1])
    flip_byte(storage, chunk_key, HEADER.size + 1000)

    with pytest.raises(DataStoreError, match=f"artifact 'big' of F/1/start/1 .*{chunk_key}"):
        reopened(datastore).load("big")


def _second_chunk(storage: LocalStorage, digest: str) -> str:
    manifest = msgpack.unpackb(storage.get(blob_key(digest))[HEADER.size:])
    return blob_key(manifest["chunks"][1])


@pytest.mark.parametrize("damage, why", [
    ("cut", "truncated"),
    ("extend", "longer than its header says"),
    ("flip", "do not match their hash"),
])
def test_a_chunk_cut_short_lengthened_or_flipped_is_refused(datastore, storage, damage, why):
    """Chunks stream from disk straight into the value: every way their length or bytes can
    be wrong is still caught, raw or compressed."""
    raw = np.random.default_rng(3).integers(0, 255, size=40 * MiB, dtype=np.uint8)
    packed = np.tile(np.arange(1000, dtype=np.int64), 5 * MiB // 1000)  # compresses well
    records = committed_task(datastore, {"raw": raw, "packed": packed})
    for name in ("raw", "packed"):
        path = storage.root / _second_chunk(storage, records[name].key)
        data = path.read_bytes()
        if damage == "cut":
            path.write_bytes(data[:-100])
        elif damage == "extend":
            path.write_bytes(data + b"\x00" * 100)
        else:
            flip_byte(storage, _second_chunk(storage, records[name].key), len(data) // 2)
    store = reopened(datastore)
    with pytest.raises(DataStoreError, match=f"artifact 'raw' .*{why}"):
        store.load("raw")
    if damage == "extend":  # bytes after a compressed chunk's end are never read: the value is intact
        assert np.array_equal(store.load("packed"), packed)
        return
    # zstd itself refuses some damage to a compressed chunk before the hash is checked
    with pytest.raises(DataStoreError, match="artifact 'packed' .*(truncated|decompress|match their hash)"):
        store.load("packed")


def test_a_damaged_manifest_or_header_is_refused(datastore, storage):
    value = np.zeros(20 * MiB, dtype=np.uint8)
    records = committed_task(datastore, {"big": value, "n": 7})
    flip_byte(storage, blob_key(records["big"].key), HEADER.size + 5)  # inside the chunk list
    flip_byte(storage, blob_key(records["n"].key), 0)  # the magic
    store = reopened(datastore)
    with pytest.raises(DataStoreError, match="damaged"):
        store.load("big")
    with pytest.raises(DataStoreError, match="header"):
        store.load("n")


def test_a_damaged_log_is_refused(datastore, storage):
    committed_task(datastore, {"n": 1})
    key = blob_key(reopened(datastore).log_keys()["stdout"])
    flip_byte(storage, key, HEADER.size)
    with pytest.raises(DataStoreError, match="the stdout log of F/1/start/1"):
        reopened(datastore).log("stdout")


def test_intact_objects_still_load_beside_a_damaged_one(datastore, storage):
    records = committed_task(datastore, {"good": [1, 2, 3], "bad": "x" * 100})
    flip_byte(storage, blob_key(records["bad"].key), HEADER.size + 3)
    store = reopened(datastore)
    assert store.load("good") == [1, 2, 3]
    with pytest.raises(DataStoreError, match="artifact 'bad'"):
        store.load("bad")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not a map"])
def test_a_damaged_task_index_names_the_index_and_what_still_works(datastore, storage, damage):
    committed_task(datastore, {"n": 1})
    key = index_key("F", "1", "start", "1", 0)
    blob = storage.get(key)
    storage.put(key, {"truncated": blob[: len(blob) // 2], "garbage": os.urandom(64),
                      "not a map": msgpack.packb([1, 2])}[damage])
    with pytest.raises(DamagedIndex) as caught:
        reopened(datastore)
    message = str(caught.value)
    assert key in message and "F/1/start/1" in message and "resume" in message


def test_check_run_finds_every_damaged_object_and_removal_lets_it_be_written_again(datastore, storage):
    records = committed_task(datastore, {"a": "alpha" * 100, "b": 2})
    committed_task(datastore, {"a": "alpha" * 100}, task_id="2")  # shares the object
    assert run_check.check_run(datastore, "F", "1").damaged == ()

    damaged_key = blob_key(records["a"].key)
    flip_byte(storage, damaged_key, len(storage.get(damaged_key)) - 2)
    check = run_check.check_run(datastore, "F", "1")
    assert [d.key for d in check.damaged] == [damaged_key]
    assert set(check.damaged[0].breaks) == {"artifact 'a' of F/1/start/1 (attempt 0)",
                                             "artifact 'a' of F/1/start/2 (attempt 0)"}

    assert run_check.remove_damaged(datastore, check) == [damaged_key]
    assert not storage.exists(damaged_key)
    committed_task(datastore, {"a": "alpha" * 100}, task_id="3")  # the value, produced again
    assert run_check.check_run(datastore, "F", "1").damaged == ()
    assert reopened(datastore, "1").load("a") == "alpha" * 100


def test_check_run_of_more_chunked_values_than_the_store_has_threads_finishes(datastore, storage, monkeypatch):
    """Each value's check runs on a thread and reads its chunks on threads: with as many chunked
    values as threads, checks waiting for chunk reads must not hold every thread."""
    monkeypatch.setattr(cas_module, "CHUNK_SIZE", 4096)
    count = max(cas_module.POOL_SIZE, os.cpu_count() or 1) + 2
    rng = np.random.default_rng(2)
    committed_task(datastore, {f"v{i}": rng.integers(0, 255, size=3 * 4096, dtype=np.uint8) for i in range(count)})
    open_reader = storage.open_reader

    def slow_open_reader(key):  # a remote store's latency: every check is under way before a chunk comes back
        time.sleep(0.05)
        return open_reader(key)

    monkeypatch.setattr(storage, "open_reader", slow_open_reader)
    done = concurrent.futures.ThreadPoolExecutor(1).submit(run_check.check_run, datastore, "F", "1")
    check = done.result(timeout=30)  # a deadlock fails here instead of hanging the suite
    assert check.objects == count + 1 and check.damaged == ()  # the values and the log


def test_check_run_reports_a_damaged_index(datastore, storage):
    committed_task(datastore, {"n": 1})
    key = index_key("F", "1", "start", "1", 0)
    storage.put(key, b"\xc1garbage")
    (damage,) = run_check.check_run(datastore, "F", "1").damaged
    assert damage.key == key and damage.why == "it does not parse"


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(storage):
    storage.put("data/ab/abc", b"x")
    stale = storage.root / "data" / "ab" / ".tmp-stale"
    fresh = storage.root / "data" / "ab" / ".tmp-fresh"
    stale.write_bytes(b"half a write")
    fresh.write_bytes(b"a write in progress")
    an_hour_ago = time.time() - 7200
    os.utime(stale, (an_hour_ago, an_hour_ago))

    assert storage.remove_leftovers(older_than=3600) == ["data/ab/.tmp-stale"]
    assert not stale.exists() and fresh.exists()
    assert storage.get("data/ab/abc") == b"x"


def test_a_failed_write_leaves_no_temporary_file(storage, monkeypatch):
    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(DataStoreError, match="No space left"):
        storage.put("data/cd/cde", b"y" * 1000)
    assert [p.name for p in (storage.root / "data" / "cd").iterdir()] == []


def test_reads_still_verify_through_a_fresh_store(storage):
    """The check lives in the content-addressed store, so every backend gets it."""
    cas = ContentAddressedStore(storage)
    (digest,) = cas.save_blobs([b"some bytes" * 100])
    flip_byte(storage, blob_key(digest), HEADER.size + 2)
    with pytest.raises(DamagedObject):
        ContentAddressedStore(storage).load_blobs([digest])


def test_objects_named_by_sha256_in_format_1_stay_readable_and_checked(datastore, storage, monkeypatch):
    import hashlib

    values = {"n": 7, "text": "older " * 200, "big": np.arange(3 * MiB, dtype=np.float64)}
    monkeypatch.setattr(cas_module, "FORMAT", 1)  # write as earlier versions did
    records = committed_task(datastore, values)
    monkeypatch.undo()
    raw_n = storage.get(blob_key(records["n"].key))
    assert HEADER.unpack_from(raw_n)[1] == 1
    assert records["n"].key == hashlib.sha256(b"\x01" + raw_n[HEADER.size:]).hexdigest()

    store = reopened(datastore)
    assert store.load("n") == 7 and store.load("text") == values["text"]
    assert np.array_equal(store.load("big"), values["big"])
    assert run_check.check_run(datastore, "F", "1").damaged == ()
    flip_byte(storage, blob_key(records["text"].key), len(storage.get(blob_key(records["text"].key))) - 1)
    with pytest.raises(DataStoreError, match="artifact 'text'"):
        reopened(datastore).load("text")
