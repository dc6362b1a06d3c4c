"""Turning a value into bytes and back, exactly.

Plain data -- None, bool, int in 64-bit range, float, str, bytes, and lists and str-keyed
dicts of those -- is msgpack: compact, fast, readable from any language. Anything else (a
tuple, a set, a numpy array, your own class) is pickle protocol 5 with out-of-band buffers,
so a large array's memory is handed over as it is instead of being copied into the pickle.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any, Sequence, Union

import attrs
import msgpack

MSGPACK, PICKLE, RAW = "msgpack", "pickle", "raw"

Part = Union[bytes, bytearray, memoryview]

_INT_MIN, _INT_MAX = -(2 ** 63), 2 ** 64 - 1
_PICKLE_MAGIC = b"FP5\x00"


@attrs.frozen
class Encoded:
    encoding: str
    #: The encoded bytes, as pieces to be hashed and compressed in order without joining them.
    parts: tuple[Part, ...]

    @property
    def size(self) -> int:
        return sum(memoryview(p).nbytes for p in self.parts)


def is_plain(value: Any) -> bool:
    """True when msgpack gives the value back exactly, type for type."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is float or kind is bytes:
        return True
    if kind is int:
        return _INT_MIN <= value <= _INT_MAX
    if kind is list:
        return all(is_plain(item) for item in value)
    if kind is dict:
        return all(type(key) is str and is_plain(item) for key, item in value.items())
    return False


def encode(value: Any) -> Encoded:
    try:
        plain = is_plain(value)
    except RecursionError:
        plain = False
    if plain:
        return Encoded(MSGPACK, (msgpack.packb(value, use_bin_type=True),))
    buffers: list[pickle.PickleBuffer] = []
    body = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    views = [buffer.raw() for buffer in buffers]
    header = _PICKLE_MAGIC + struct.pack(f"<QI{len(views)}Q", len(body), len(views), *(v.nbytes for v in views))
    return Encoded(PICKLE, (header, body, *views))


def decode(encoding: str, payload: Part) -> Any:
    """The value back from its encoded bytes. A writable payload gives writable arrays."""
    view = memoryview(payload)
    if encoding == MSGPACK:
        return msgpack.unpackb(view, raw=False, strict_map_key=False)
    if encoding == PICKLE:
        if view[:4] != _PICKLE_MAGIC:
            raise ValueError("not a Flow pickle payload")
        body_len, count = struct.unpack_from("<QI", view, 4)
        offset = 4 + 12
        sizes: Sequence[int] = struct.unpack_from(f"<{count}Q", view, offset)
        offset += 8 * count
        body = view[offset:offset + body_len]
        offset += body_len
        buffers = []
        for size in sizes:
            buffers.append(view[offset:offset + size])
            offset += size
        return pickle.loads(body, buffers=buffers)
    if encoding == RAW:
        return bytes(view)
    raise ValueError(f"unknown encoding {encoding!r}")
