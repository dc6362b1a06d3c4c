"""How fast can anything hand back the benchmark's 1e6-entry dict? The floor under its load.

    uv run python benchmarks/dict_decoders.py            # medians of 5 rounds
    uv run python benchmarks/dict_decoders.py --rounds 9

The dict row loads ``{"key-0": 0, ...}`` with a million entries in a new process. Whatever
the bytes look like, the reader ends by making a million strings and a million ints and
inserting them into a dict. This script times, in one process, decoders of the same dict:
Flow's own (a pickle written in pickle's fast mode, no memo, read by `decode`), pickle as
Metaflow writes it (with its memo), msgpack, marshal, and a columnar form (keys joined by
NUL, values as an int64 array) rebuilt with ``dict(zip(...))``. Last, just
``dict(zip(keys, values))`` from lists that already exist and keys whose hashes are already
cached: building the dict alone, with no decoding at all. A decoder that inserts the entries
one at a time, as all of these do, cannot beat that line.
"""

from __future__ import annotations

import argparse
import array
import marshal
import pickle
import statistics
import time
from typing import Callable

import msgpack
from flow_core.datastore.encoding import PICKLE, decode, encode

ENTRIES = 1_000_000


def columnar(table: dict[str, int]) -> tuple[bytes, bytes]:
    return "\0".join(table).encode(), array.array("q", table.values()).tobytes()


def from_columnar(keys: bytes, values: bytes) -> dict[str, int]:
    numbers = array.array("q")
    numbers.frombytes(values)
    return dict(zip(keys.decode().split("\0"), numbers.tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    table = {f"key-{i}": i for i in range(ENTRIES)}
    encoded = encode(table)
    assert encoded.encoding == PICKLE, "Flow stores a dict this large as a fast-mode pickle"
    flows = b"".join(encoded.parts)
    pickled, packed, marshalled, split = pickle.dumps(table, 5), msgpack.packb(table), marshal.dumps(table), columnar(table)
    keys, values = list(table), list(table.values())
    decoders: dict[str, Callable[[], dict]] = {
        "Flow's decode (fast-mode pickle)": lambda: decode(PICKLE, flows),
        "pickle.loads (memo, as Metaflow)": lambda: pickle.loads(pickled),
        "msgpack.unpackb": lambda: msgpack.unpackb(packed),
        "marshal.loads": lambda: marshal.loads(marshalled),
        "columnar, dict(zip(...))": lambda: from_columnar(*split),
        "dict(zip(keys, values)) alone": lambda: dict(zip(keys, values)),
    }
    times: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(options.rounds):
        for name, decoder in decoders.items():  # in turn, so a slow spell falls on all alike
            started = time.perf_counter()
            result = decoder()
            times[name].append(time.perf_counter() - started)
            assert len(result) == ENTRIES
            del result
    for name, seconds in times.items():
        print(f"{name:<32} {statistics.median(seconds) * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
