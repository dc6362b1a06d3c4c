"""Turning a value into bytes and back, exactly.

Plain data -- None, bool, int in 64-bit range, float, str, bytes, and lists and dicts of
those (exactly those types, not subclasses) -- is msgpack: compact, fast, readable from
any language. Anything else (a
tuple, a set, a numpy array, your own class) is pickle protocol 5 with out-of-band buffers,
so a large array's memory is handed over as it is instead of being copied into the pickle.

Plain data whose msgpack form is large is pickled too: msgpack interns every dict key it
reads, so Python loads a dict of a million entries three times faster from a pickle. Such
a value has passed msgpack's strict check, so it holds no cycles and no identity worth
keeping, and pickle's fast mode (no memo) writes it at msgpack's pace.
"""

from __future__ import annotations

import io
import mmap
import pickle
import struct
from typing import Any, Callable, Sequence, Union

import attrs
import msgpack

MSGPACK, PICKLE, RAW = "msgpack", "pickle", "raw"

Part = Union[bytes, bytearray, memoryview, mmap.mmap]

_PICKLE_MAGIC = b"FP5\x00"
#: Plain data whose msgpack form reaches this size is pickled instead (see the module's docstring).
PICKLE_PLAIN_FROM = 1024 * 1024


@attrs.frozen
class Encoded:
    encoding: str
    #: The encoded bytes, as pieces to be hashed and compressed in order without joining them.
    parts: tuple[Part, ...]

    @property
    def size(self) -> int:
        return sum(memoryview(p).nbytes for p in self.parts)


class _NotPlain(Exception):
    pass


def _refuse(value: Any) -> Any:
    raise _NotPlain


def encode(value: Any) -> Encoded:
    # msgpack in strict mode refuses anything it would not give back type for type (a
    # tuple, a set, a subclass, an int beyond 64 bits): one pass decides and encodes.
    try:
        packed = msgpack.packb(value, use_bin_type=True, strict_types=True, default=_refuse)
    except (_NotPlain, OverflowError, ValueError, TypeError):
        return _pickled(value, plain=False)
    if len(packed) < PICKLE_PLAIN_FROM:
        return Encoded(MSGPACK, (packed,))
    return _pickled(value, plain=True)


def _pickled(value: Any, plain: bool) -> Encoded:
    buffers: list[pickle.PickleBuffer] = []
    return _pickle_payload(_pickle_body(value, plain, buffers.append), [buffer.raw() for buffer in buffers])


def _pickle_payload(body: memoryview, views: list[memoryview]) -> Encoded:
    """The pickle and its out-of-band buffers behind the header `decode` reads."""
    header = _PICKLE_MAGIC + struct.pack(f"<QI{len(views)}Q", len(body), len(views), *(v.nbytes for v in views))
    return Encoded(PICKLE, (header, body, *views))


def _pickle_body(value: Any, plain: bool, buffer_callback: Callable[[pickle.PickleBuffer], Any],
                 out: io.BytesIO | None = None) -> memoryview:
    out = out or io.BytesIO()
    pickler = pickle.Pickler(out, protocol=5, buffer_callback=buffer_callback)
    pickler.fast = plain  # no memo: plain data has no cycles, and msgpack would not keep shared parts shared either
    pickler.dump(value)
    return out.getbuffer()


class _CappedBytesIO(io.BytesIO):
    """Refuses to grow past ``limit`` bytes (the pickler writes a frame at a time)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def write(self, data: Any) -> int:
        if self.tell() + memoryview(data).nbytes > self.limit:
            raise _NotPlain
        return super().write(data)


def pickled_as_plain(value: Any, limit: int) -> Encoded | None:
    """``value`` pickled as `encode` pickles large plain data, without the msgpack pass that
    finds it plain; None as soon as it proves not plain (an array's buffer, a cycle) or grows
    past ``limit`` bytes. Only for comparing with an earlier encoding of the same value: equal
    bytes mean `encode` gives these bytes too."""
    try:
        return _pickle_payload(_pickle_body(value, True, _refuse, _CappedBytesIO(limit)), [])
    except Exception:
        return None


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
