"""The content-addressed store's fast paths: tiny, huge, incompressible and array values."""

from __future__ import annotations

import collections
import enum
import os
import threading
import tracemalloc

import numpy as np
import pytest
from flow_core.backends import local_storage
from flow_core.backends.local_storage import LocalStorage
from flow_core.datastore import cas as cas_module
from flow_core.datastore.cas import HEADER, ContentAddressedStore, blob_key
from flow_core.datastore.encoding import encode
from flow_core.datastore.task_store import FlowDataStore
from flow_core.errors import BlobNotFound, DataStoreError

MiB = 1024 * 1024


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "root")


@pytest.fixture
def cas(storage):
    return ContentAddressedStore(storage)


def _stored_sizes(storage) -> dict[str, int]:
    return {key: len(storage.get(key)) for key in storage.list("data/")}


def _flags(storage, digest: str) -> int:
    return HEADER.unpack_from(storage.get(blob_key(digest)))[2]


def test_tiny_values_are_stored_uncompressed_and_round_trip(cas, storage):
    records = cas.save_values({"n": 7, "t": (1,), "s": "x"})
    assert all(_flags(storage, r.key) & cas_module.FLAG_ZSTD == 0 for r in records.values())
    assert ContentAddressedStore(storage).load_values(records) == {"n": 7, "t": (1,), "s": "x"}


def test_compressible_large_value_is_chunked_compressed_and_exact(cas, storage):
    value = b"abcd" * (10 * MiB)  # 40 MiB: three chunks, each compresses well
    records = cas.save_values({"big": value})
    sizes = _stored_sizes(storage)
    assert len(sizes) == 1 + 3  # the manifest and its chunks
    assert sum(sizes.values()) < MiB
    assert _flags(storage, records["big"].key) & cas_module.FLAG_MANIFEST
    assert ContentAddressedStore(storage).load_values(records)["big"] == value


def test_incompressible_data_is_stored_raw_at_its_own_size(cas, storage):
    value = os.urandom(20 * MiB)
    records = cas.save_values({"noise": value})
    total = sum(_stored_sizes(storage).values())
    assert 20 * MiB < total < 20 * MiB + 4096  # no compression overhead, just headers and manifest
    assert ContentAddressedStore(storage).load_values(records)["noise"] == value


def test_numpy_arrays_round_trip_writable_with_dtype_and_shape(cas, storage):
    array = np.random.default_rng(1).random((1024, 4096))  # 32 MiB of float64
    strided = array[::2, ::3]  # not contiguous: pickled in-band by numpy
    records = cas.save_values({"array": array, "strided": strided, "ints": np.arange(10, dtype=np.int16)})
    loaded = ContentAddressedStore(storage).load_values(records)
    assert np.array_equal(loaded["array"], array) and loaded["array"].dtype == np.float64
    assert loaded["array"].shape == (1024, 4096) and loaded["array"].flags.writeable
    assert np.array_equal(loaded["strided"], strided)
    assert loaded["ints"].dtype == np.int16 and loaded["ints"].tolist() == list(range(10))
    loaded["array"][0, 0] = -1.0  # writable, and not shared with anything stored
    assert ContentAddressedStore(storage).load_values(records)["array"][0, 0] == array[0, 0]


def test_large_loaded_arrays_are_writable_and_private_to_their_process(cas, storage):
    # Chunked, stored raw in one blob, and compressed in one: each is read into a buffer of its
    # own, which a forked task (tasks fork from a server that may hold loaded values) copies on write.
    rng = np.random.default_rng(2)
    values = {"chunked": rng.random(5 * MiB), "raw": rng.random(MiB), "compressed": np.zeros(MiB)}
    records = cas.save_values(values)
    assert _flags(storage, records["compressed"].key) == cas_module.FLAG_ZSTD
    assert _flags(storage, records["raw"].key) == 0
    loaded = ContentAddressedStore(storage).load_values(records)
    for name, array in loaded.items():
        assert array.flags.writeable and np.array_equal(array, values[name])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        for array in loaded.values():
            array[:] = 7.0
        os.write(write, b"1" if all((array == 7.0).all() for array in loaded.values()) else b"0")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"  # the child changed its copies
    os.close(read)
    for name, array in loaded.items():
        assert np.array_equal(array, values[name])  # and the parent's are as loaded


def test_equal_values_store_nothing_new_and_big_values_share_equal_chunks(cas, storage):
    first = cas.save_values({"a": b"\x01" * (40 * MiB)})
    before = set(storage.list("data/"))
    again = cas.save_values({"b": b"\x01" * (40 * MiB)})
    assert again["b"].key == first["a"].key and set(storage.list("data/")) == before
    changed = cas.save_values({"c": b"\x01" * (40 * MiB - 1) + b"\x02"})  # only the last chunk differs
    assert changed["c"].key != first["a"].key
    assert len(set(storage.list("data/")) - before) == 2  # its manifest and one new chunk


def test_a_corrupt_or_truncated_blob_is_a_clear_error(cas, storage, tmp_path):
    records = cas.save_values({"x": list(range(10_000))})
    path = tmp_path / "root" / blob_key(records["x"].key)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataStoreError, match="truncated|corrupt"):
        ContentAddressedStore(storage).load_values(records)


def test_open_tasks_reads_many_parents_in_bulk_and_picks_latest_attempts(storage):
    datastore = FlowDataStore(storage)
    for task in range(100):
        for attempt in range(2 if task % 10 == 0 else 1):
            store = datastore.task("Bulk", "1", "each", str(task), attempt)
            store.save_artifacts({"value": task * 10 + attempt})
            store.commit()
    paths = [f"1/each/{task}" for task in range(100)]
    stores = datastore.open_tasks("Bulk", paths)
    assert [s.load("value") for s in stores] == [t * 10 + (1 if t % 10 == 0 else 0) for t in range(100)]
    assert [s.attempt for s in datastore.open_tasks("Bulk", ["1/each/20", "1/each/21"])] == [1, 0]


@pytest.mark.parametrize("reads", ["in this thread", "handed to threads after the first few"])
def test_a_batch_read_gives_every_key_its_own_bytes_however_it_is_read(storage, monkeypatch, reads):
    # A read counts as slow above this; 0 sends all but the first few to the pool.
    monkeypatch.setattr(local_storage, "_INLINE_READ_SECONDS", 60.0 if reads == "in this thread" else 0.0)
    blobs = {f"index/Batch/1/each/{n}/0.idx": os.urandom(n + 1) for n in range(40)}
    storage.put_many(blobs.items())
    keys = list(reversed(blobs))
    assert storage.get_many(keys) == {key: blobs[key] for key in keys}
    with pytest.raises(BlobNotFound):
        storage.get_many([*keys[:10], "index/Batch/1/each/missing/0.idx", *keys[10:]])


def test_a_blob_written_in_pieces_is_whole_however_little_each_write_takes(storage, monkeypatch):
    real_writev = os.writev
    calls = []

    def short_writev(fd, buffers):  # as a write interrupted or capped by the system may be
        calls.append(len(buffers))
        return real_writev(fd, [memoryview(buffers[0])[:7]])

    monkeypatch.setattr(local_storage.os, "writev", short_writev)
    pieces = [b"header", b"", memoryview(b"0123456789" * 5), bytearray(b"tail")]
    storage.put_pieces("blobs/pieces", pieces)
    assert storage.get("blobs/pieces") == b"".join(pieces)
    assert len(calls) > len(pieces)  # it took many writes, and every byte still landed once


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def test_only_exact_plain_types_take_msgpack_and_everything_comes_back_as_it_was(cas, storage):
    values = {
        "plain": {"a": [1, 2.5, None, True, b"x"], 3: "int key"},
        "ordered": collections.OrderedDict(b=1, a=2),
        "enum": Color.RED,
        "str_subclass": Name("alice"),
        "nested_tuple": {"k": [(1, 2)]},
        "huge_in_list": [2 ** 64],
        "negative_edge": -(2 ** 63),
    }
    records = cas.save_values(values)
    assert records["plain"].encoding == "msgpack" and records["negative_edge"].encoding == "msgpack"
    assert all(records[n].encoding == "pickle" for n in ("ordered", "enum", "str_subclass", "nested_tuple", "huge_in_list"))
    loaded = ContentAddressedStore(storage).load_values(records)
    assert loaded == values
    assert all(type(loaded[name]) is type(value) for name, value in values.items())
    assert type(loaded["nested_tuple"]["k"][0]) is tuple


def test_barely_compressible_data_is_stored_raw_rather_than_compressed_for_a_few_percent(cas, storage):
    """Random float64 values shrink by about 6% under zstd: not worth compressing every byte and
    decompressing it on every read, so they are stored as they are."""
    array = np.random.default_rng(2).random(3 * MiB)  # 24 MiB: two chunks
    records = cas.save_values({"array": array})
    total = sum(_stored_sizes(storage).values())
    assert array.nbytes < total < array.nbytes + 4096
    assert np.array_equal(ContentAddressedStore(storage).load_values(records)["array"], array)


def test_large_plain_data_round_trips_exactly_through_pickle(cas, storage):
    """Plain data whose msgpack form is large is pickled (Python reads it several times faster:
    msgpack interns every dict key); it must still come back type for type, shared parts and all."""
    shared = [1, 2, 3]
    table = {f"key-{i}": i for i in range(200_000)}
    nested = {"rows": [{"id": i, "name": f"n{i}", "tags": shared, "score": i / 7} for i in range(50_000)],
              "blob": b"\x00\xff" * 1000, 7: "int key", "none": None}
    records = cas.save_values({"table": table, "nested": nested, "small": {"a": [1, 2]}})
    assert records["table"].encoding == "pickle" and records["nested"].encoding == "pickle"
    assert records["small"].encoding == "msgpack"
    loaded = ContentAddressedStore(storage).load_values(records)
    assert loaded["table"] == table and list(loaded["table"]) == list(table)
    assert loaded["nested"] == nested and loaded["small"] == {"a": [1, 2]}
    row = loaded["nested"]["rows"][3]
    assert type(row["tags"]) is list and type(row["score"]) is float and type(loaded["nested"]["blob"]) is bytes


def test_a_large_list_that_contains_itself_still_round_trips(cas, storage):
    looped: list = list(range(300_000))
    looped.append(looped)
    records = cas.save_values({"looped": looped})
    loaded = ContentAddressedStore(storage).load_values(records)["looped"]
    assert loaded[:300_000] == list(range(300_000)) and loaded[-1] is loaded


def test_a_loaded_large_value_keeps_its_record_unchanged_and_is_saved_anew_when_changed(cas, storage, monkeypatch):
    """A step that reads a large artifact saves it again (it may have changed in place). Unchanged,
    it keeps its record without a second full encoding; changed in any way, the change is kept."""
    table = {f"key-{i}": i for i in range(200_000)}
    before = cas.save_values({"table": table})["table"]
    fresh = ContentAddressedStore(storage)

    def loaded() -> dict:
        return fresh.load_values({"table": before})["table"]

    added, tupled, holding_array = loaded(), loaded(), loaded()
    added["new"] = 1
    tupled["key-7"] = (7, 7)
    holding_array["key-9"] = np.arange(5)
    encoded_in_full = []
    monkeypatch.setattr(cas_module, "encode", lambda value: encoded_in_full.append(value) or encode(value))

    values = {"same": loaded(), "added": added, "tupled": tupled, "holding_array": holding_array}
    records = fresh.save_values(values, loaded_from={name: before for name in values})

    assert records["same"].key == before.key and not any(v is values["same"] for v in encoded_in_full)
    assert all(records[name].key != before.key for name in values if name != "same")
    back = ContentAddressedStore(storage).load_values(records)
    assert back["same"] == table and back["added"] == {**table, "new": 1}
    assert back["tupled"]["key-7"] == (7, 7) and type(back["tupled"]["key-7"]) is tuple
    assert back["holding_array"]["key-9"].tolist() == [0, 1, 2, 3, 4]


def test_a_large_value_stored_while_the_next_is_encoded_finishes_before_an_error_surfaces(cas, storage):
    """Large values are written on a thread while the next value is encoded: a value that cannot
    be stored still stops the save with its own error, and only after the write before it ended."""
    array = np.random.default_rng(3).random(4 * MiB // 8)
    with pytest.raises(cas_module.UnstorableValue, match="'lock'"):
        cas.save_values({"array": array, "lock": threading.Lock()})
    records = ContentAddressedStore(storage).save_values({"array": array})
    assert storage.exists(blob_key(records["array"].key))
    assert not [key for key in storage.list("") if ".tmp-" in key]


def test_a_failed_write_of_a_large_value_fails_the_save(cas, storage, monkeypatch):
    def refuse(key, pieces, overwrite=True):
        raise DataStoreError(f"cannot write {key}: No space left on device")

    monkeypatch.setattr(storage, "put_pieces", refuse)
    with pytest.raises(DataStoreError, match="No space left on device"):
        cas.save_values({"array": np.random.default_rng(4).random(4 * MiB // 8), "n": 1})


def test_a_loaded_value_whose_parts_are_shared_is_saved_again_without_writing_them_out_each_time(cas, storage):
    """Telling a loaded value unchanged pickles it without a memo, which writes a shared part out
    at every reference: that pickle stops at the size the value had, instead of growing to the
    hundreds of megabytes of a part written out 400 times."""
    part = {f"key-{i}": i for i in range(40_000)}  # about 600 KB pickled
    value = [(0,)] + [part] * 400  # a tuple: not plain, so pickled with its memo, the part once
    before = cas.save_values({"value": value})["value"]
    loaded = ContentAddressedStore(storage).load_values({"value": before})["value"]
    tracemalloc.start()
    try:
        records = ContentAddressedStore(storage).save_values({"value": loaded}, loaded_from={"value": before})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert records["value"].key == before.key
    assert peak < 64 * MiB
