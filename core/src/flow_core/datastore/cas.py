"""The content-addressed store: every value encoded, hashed and compressed once.

A blob's key is the BLAKE3 hash of its encoded bytes (and encoding), so an equal value is stored once whatever
run or flow wrote it, and a key that exists is never uploaded again. Stored layout::

    data/<first two hex digits>/<64 hex digits>

Each stored blob is a 16-byte header (magic, format, flags, encoding, payload size) and
the payload, zstd-compressed when that shrinks it by a tenth or more (a few percent off
random numbers is not worth compressing every byte and decompressing it on every read). A
payload over `CHUNK_SIZE` is cut into chunks stored as blobs of their own, and the value's
key then holds a manifest listing them, so a large artifact moves in parallel and in
bounded memory. (The key of a
chunked value is the hash of its chunks' digests.)

Every read checks that the bytes still hash to their key, chunk by chunk in the threads that
load them: a flipped bit on disk or a truncated upload is refused, never returned as a value.
A chunk streams from storage straight into its place in the value, hashed a block at a time
as it lands, so a large value costs one buffer of its size and one pass over it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import blake3
import msgpack
import zstandard

from flow_core.backends.records import ArtifactRecord
from flow_core.backends.storage import StorageBackend
from flow_core.datastore.buffers import WritableBuffer, writable_buffer, writable_copy
from flow_core.datastore.encoding import (
    MSGPACK,
    PICKLE,
    PICKLE_PLAIN_FROM,
    RAW,
    Encoded,
    Part,
    decode,
    encode,
    pickled_as_plain,
)
from flow_core.errors import BlobNotFound, DataStoreError

DATA_PREFIX = "data"
MAGIC = b"FLWB"
#: Format 1 named objects by SHA-256; format 2 by BLAKE3, which hashes several times faster, so
#: that every read can afford to check its bytes. Objects of both formats stay readable.
FORMAT = 2
HASHES: dict[int, Callable[[bytes], Any]] = {1: hashlib.sha256, 2: blake3.blake3}
HEADER = struct.Struct("<4sBBBxQ")  # magic, format, flags, encoding id, payload size
FLAG_ZSTD, FLAG_MANIFEST = 1, 2
ENCODING_IDS = {RAW: 0, MSGPACK: 1, PICKLE: 2}
ENCODINGS = {v: k for k, v in ENCODING_IDS.items()}

CHUNK_SIZE = 16 * 1024 * 1024
COMPRESS_FROM = 512  # smaller payloads are stored as they are: zstd would barely shrink them
THREADED_FROM = 4 * 1024 * 1024  # multi-threaded zstd above this size
SAMPLE_FROM = 1024 * 1024  # probe compressibility on a sample above this size
SAMPLE_SIZE = 32 * 1024  # bytes taken from each of SAMPLES places spread over the payload
SAMPLES = 4
WORTH_COMPRESSING = 0.9  # compress when the sample shrinks to this fraction of its size or less
READ_BLOCK = 1024 * 1024  # a chunk is read, decompressed and hashed this much at a time
LEVEL = 3
FAST_LEVEL = 1  # large payloads: nearly the same ratio (often better than gzip's) at twice the speed
FAST_LEVEL_FROM = 1024 * 1024
CHUNKS_IN_FLIGHT = 8
BACKGROUND_FROM = 1024 * 1024  # encoded values this large are stored while the next is encoded
POOL_SIZE = 8  # remote stores want several transfers at once; hashing and zstd release the GIL


class DamagedObject(DataStoreError):
    """A stored object whose bytes no longer hash to its name: a flipped bit on disk, a
    truncated upload, a hand-edited file. Never handed back as a value."""

    def __init__(self, key: str, why: str):
        super().__init__(f"the datastore object {key} is damaged: {why}")
        self.key = key
        self.why = why
        self.value_digest = key.rsplit("/", 1)[-1]


class UnstorableValue(DataStoreError):
    """A value neither msgpack nor pickle can encode."""

    def __init__(self, name: str, cause: Exception):
        super().__init__(f"'{name}' cannot be stored ({type(cause).__name__}: {cause})")
        self.name = name
        self.cause = cause


def blob_key(digest: str) -> str:
    return f"{DATA_PREFIX}/{digest[:2]}/{digest}"


def qualified_type(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _views(parts: Sequence[Part]) -> list[memoryview]:
    return [memoryview(p).cast("B") for p in parts if memoryview(p).nbytes]


def _digest(encoding: str, parts: Sequence[memoryview], fmt: int | None = None) -> str:
    hasher = HASHES[fmt or FORMAT](bytes([ENCODING_IDS[encoding]]))
    for part in parts:
        hasher.update(part)
    return hasher.hexdigest()


def _chunked_digest(encoding: str, chunk_digests: Sequence[str], fmt: int | None = None) -> str:
    """A chunked value's name: the hash of its chunks' digests (a Merkle root)."""
    hasher = HASHES[fmt or FORMAT](b"chunks" + bytes([ENCODING_IDS[encoding]]))
    for chunk_digest in chunk_digests:
        hasher.update(bytes.fromhex(chunk_digest))
    return hasher.hexdigest()


def _slice(parts: list[memoryview], start: int, size: int) -> list[memoryview]:
    """The views covering bytes [start, start+size) of the concatenated parts, without copying."""
    out = []
    offset = 0
    for part in parts:
        end = offset + part.nbytes
        if end > start and offset < start + size:
            out.append(part[max(0, start - offset): min(part.nbytes, start + size - offset)])
        offset = end
    return out


class ContentAddressedStore:
    def __init__(self, storage: StorageBackend):
        self.storage = storage
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pools_pid = 0
        self._pools_lock = threading.Lock()

    def _threads(self, role: str) -> ThreadPoolExecutor:
        """The store's threads for one kind of work, made anew in a forked child (threads do not
        survive a fork). No work waits on threads of its own kind, which could deadlock once all
        of them wait: ``chunks`` hash, read and write one chunk each; ``values`` store a large
        value while the caller encodes the next (see `save_values`); ``callers`` run the
        functions of `map_in_parallel`, which may load or check values."""
        with self._pools_lock:  # several threads may ask at once (a value stored while the next is hashed)
            if self._pools_pid != os.getpid():
                self._pools, self._pools_pid = {}, os.getpid()
            if role not in self._pools:
                size = 1 if role == "values" else max(POOL_SIZE, os.cpu_count() or 1)
                self._pools[role] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"flow-{role}")
            return self._pools[role]

    def map_in_parallel(self, function: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        """``function`` over ``items`` on the store's threads, results in order."""
        return self._threads("callers").map(function, items)

    # -- writing ---------------------------------------------------------------------------

    def _compress(self, parts: list[memoryview], size: int, threads: int | None = None) -> tuple[int, list[Part]]:
        """(flags, stored body parts): zstd when it shrinks the payload, else the parts as they are."""
        if size < COMPRESS_FROM:
            return 0, list(parts)
        if size >= SAMPLE_FROM:
            spots = range(0, size - SAMPLE_SIZE, (size - SAMPLE_SIZE) // (SAMPLES - 1) or 1)
            sample = b"".join(bytes(v) for spot in spots for v in _slice(parts, spot, SAMPLE_SIZE))
            if len(zstandard.ZstdCompressor(level=FAST_LEVEL).compress(sample)) > WORTH_COMPRESSING * len(sample):
                return 0, list(parts)
        if threads is None:
            threads = -1 if size >= THREADED_FROM else 0
        level = LEVEL if size < FAST_LEVEL_FROM else FAST_LEVEL
        compressor = zstandard.ZstdCompressor(level=level, threads=threads).compressobj(size=size)
        pieces = [compressor.compress(part) for part in parts]
        pieces.append(compressor.flush())
        if sum(len(piece) for piece in pieces) >= size:
            return 0, list(parts)
        return FLAG_ZSTD, pieces

    def _stored_pieces(self, encoding: str, parts: list[memoryview], size: int, flags: int = 0,
                       threads: int | None = None) -> list[Part]:
        """The stored object as pieces to write one after another: the header, then the body."""
        zstd_flag, body = self._compress(parts, size, threads) if not flags & FLAG_MANIFEST else (0, list(parts))
        return [HEADER.pack(MAGIC, FORMAT, flags | zstd_flag, ENCODING_IDS[encoding], size), *body]

    def _hash(self, encoding: str, parts: list[memoryview], size: int) -> tuple[str, list[str]]:
        """(the value's digest, its chunks' digests): a payload over `CHUNK_SIZE` is hashed a
        chunk at a time on several threads, and its digest hashes the chunks' digests (a Merkle
        root); a smaller one has no chunks."""
        if size <= CHUNK_SIZE:
            return _digest(encoding, parts), []
        chunk_digests = list(self._threads("chunks").map(
            lambda start: _digest(RAW, _slice(parts, start, min(CHUNK_SIZE, size - start))),
            range(0, size, CHUNK_SIZE)))
        return _chunked_digest(encoding, chunk_digests), chunk_digests

    def _save_encoded(self, encoded: Encoded) -> str:
        parts = _views(encoded.parts)
        size = sum(p.nbytes for p in parts)
        digest, chunk_digests = self._hash(encoded.encoding, parts, size)
        key = blob_key(digest)
        if self.storage.exists(key):
            return digest
        # Then write without asking again (a HEAD request on S3): another writer storing the
        # same key meanwhile stores the same bytes.
        if not chunk_digests:
            self.storage.put_pieces(key, self._stored_pieces(encoded.encoding, parts, size))
            return digest
        self._save_chunks(parts, size, chunk_digests)
        manifest = msgpack.packb({"chunks": chunk_digests, "chunk_size": CHUNK_SIZE})
        self.storage.put_pieces(key, self._stored_pieces(encoded.encoding, [memoryview(manifest)], size, FLAG_MANIFEST))
        return digest

    def _save_chunks(self, parts: list[memoryview], size: int, chunk_digests: list[str]) -> None:
        """A large payload's missing chunks, compressed and stored in parallel, a few at a time
        (bounded memory); its manifest goes under the value's key after them."""
        starts = range(0, size, CHUNK_SIZE)
        chunk_keys = {blob_key(d) for d in chunk_digests}
        missing = chunk_keys - self.storage.exists_many(chunk_keys)

        def store(item: tuple[int, str]) -> None:
            start, chunk_digest = item
            chunk = _slice(parts, start, min(CHUNK_SIZE, size - start))
            pieces = self._stored_pieces(RAW, chunk, sum(v.nbytes for v in chunk), threads=0)
            self.storage.put_pieces(blob_key(chunk_digest), pieces)  # known missing, as above

        todo = [(start, d) for start, d in zip(starts, chunk_digests) if blob_key(d) in missing]
        for batch in range(0, len(todo), CHUNKS_IN_FLIGHT):
            list(self._threads("chunks").map(store, todo[batch: batch + CHUNKS_IN_FLIGHT]))

    def _unchanged(self, value: Any, before: ArtifactRecord) -> bool:
        """Whether ``value`` still encodes to the bytes stored under ``before`` (the record it
        was loaded from), told without `encode`'s msgpack pass where that pass costs as much as
        the pickling: a large dict or list of plain data. Equal bytes mean `encode` would give
        these bytes too; anything else is encoded in full, after a pickle of at most
        ``before.size`` bytes (fast mode writes a shared part out again at every reference)."""
        if before.encoding != PICKLE or before.size < PICKLE_PLAIN_FROM // 2 or type(value) not in (dict, list):
            return False
        guess = pickled_as_plain(value, before.size)
        if guess is None or guess.size != before.size:
            return False
        # ...and still there, as the full path would make sure (a removed object is written again)
        return (self._hash(PICKLE, _views(guess.parts), guess.size)[0] == before.key
                and self.storage.exists(blob_key(before.key)))

    def save_values(self, values: Mapping[str, Any],
                    loaded_from: Mapping[str, ArtifactRecord] | None = None) -> dict[str, ArtifactRecord]:
        """Store each value; return its record (content key, type, encoded size, encoding).
        ``loaded_from`` names the records some of the values were loaded from: a large one
        that has not changed keeps its record for less than encoding it again.

        Encoding holds the GIL; hashing and writing mostly do not. So a large value is stored
        on a thread of its own while the next one is encoded, one at a time, so that no more
        than two encoded values are held at once."""
        loaded_from = loaded_from or {}
        # name -> (its digest, or the future of a store still under way; its type, size, encoding)
        saved: dict[str, tuple[str | Future[str], str, int, str]] = {}
        storing: Future[str] | None = None
        try:
            for name, value in values.items():
                before = loaded_from.get(name)
                if before is not None and self._unchanged(value, before):
                    saved[name] = (before.key, before.type, before.size, before.encoding)
                    continue
                try:
                    encoded = encode(value)
                except Exception as exc:  # pickle refuses locks, generators, sockets, local functions
                    raise UnstorableValue(name, exc) from None
                if encoded.size < BACKGROUND_FROM:
                    digest: str | Future[str] = self._save_encoded(encoded)
                else:
                    if storing is not None:
                        storing.result()
                    digest = storing = self._threads("values").submit(self._save_encoded, encoded)
                saved[name] = (digest, qualified_type(value), encoded.size, encoded.encoding)
        finally:
            if storing is not None:
                wait([storing])  # nothing left writing behind the caller's back, even on an error
        return {
            name: ArtifactRecord(name=name, key=digest if isinstance(digest, str) else digest.result(),
                                 type=type_, size=size, encoding=encoding)
            for name, (digest, type_, size, encoding) in saved.items()
        }

    def save_blobs(self, blobs: Sequence[Part]) -> list[str]:
        """Store raw bytes (logs, code packages); return their content keys."""
        return [self._save_encoded(Encoded(RAW, (blob,))) for blob in blobs]

    # -- reading ---------------------------------------------------------------------------

    def _payloads(self, digests: Sequence[str], copy: bool = True) -> dict[str, tuple[str, Part]]:
        unique = list(dict.fromkeys(digests))
        stored = self.storage.get_many([blob_key(d) for d in unique])
        out = {}
        for digest in unique:
            try:
                out[digest] = self._open(digest, stored[blob_key(digest)], copy)
            except DamagedObject as exc:
                exc.value_digest = digest  # a chunk's damage is the value's damage
                raise
        return out

    def _open(self, digest: str, blob: Part, copy: bool = True) -> tuple[str, Part]:
        """(encoding, payload), checked against ``digest``: bytes that no longer hash to their
        name raise `DamagedObject` instead of coming back as a wrong value. A pickle payload is
        writable (arrays load writable); with ``copy=False`` an uncompressed payload may be a
        view of the stored blob."""
        fmt, encoding, flags, size, body = self._header(digest, blob)
        if flags & FLAG_MANIFEST:
            return encoding, self._join_chunks(digest, self._manifest(digest, fmt, encoding, body), size)
        if flags & FLAG_ZSTD:
            payload: Part = self._decompress(digest, body, size)
        elif len(body) != size:
            raise DamagedObject(blob_key(digest), "it is truncated")
        else:
            payload = body
        if _digest(encoding, [memoryview(payload)], fmt) != digest:
            raise DamagedObject(blob_key(digest), "its bytes do not match their hash")
        if payload is not body:
            return encoding, payload
        if not copy:
            return encoding, body
        return encoding, writable_copy(body) if encoding == PICKLE else bytes(body)

    @classmethod
    def _header(cls, digest: str, blob: Part) -> tuple[int, str, int, int, memoryview]:
        """(format, encoding, flags, payload size, stored body) of a stored object."""
        return (*cls._parse_header(digest, blob), memoryview(blob)[HEADER.size:])

    @staticmethod
    def _parse_header(digest: str, head: Part) -> tuple[int, str, int, int]:
        """(format, encoding, flags, payload size) from a stored object's first bytes."""
        if len(head) < HEADER.size:
            raise DamagedObject(blob_key(digest), "it is truncated")
        magic, fmt, flags, encoding_id, size = HEADER.unpack_from(head)
        if magic == MAGIC and fmt > FORMAT:
            raise DataStoreError(f"the datastore object {blob_key(digest)} was written by a newer "
                                 "version of Flow; upgrade flow-core to read it")
        if magic != MAGIC or fmt not in HASHES or encoding_id not in ENCODINGS or flags & ~(FLAG_ZSTD | FLAG_MANIFEST):
            raise DamagedObject(blob_key(digest), "its header is not one Flow writes")
        return fmt, ENCODINGS[encoding_id], flags, size

    @staticmethod
    def _manifest(digest: str, fmt: int, encoding: str, body: memoryview) -> dict:
        """A chunked value's manifest, checked: its chunks' digests must hash to its name."""
        try:
            manifest = msgpack.unpackb(body)
            chunks, chunk_size = manifest["chunks"], manifest["chunk_size"]
            ok = all(isinstance(c, str) and len(c) == 64 for c in chunks) and chunk_size > 0
        except Exception:
            ok = False
        if not ok or _chunked_digest(encoding, chunks, fmt) != digest:
            raise DamagedObject(blob_key(digest), "its list of chunks does not match its hash")
        return manifest

    @staticmethod
    def _decompress(digest: str, body: memoryview, size: int) -> WritableBuffer:
        out = writable_buffer(size)
        try:
            with zstandard.ZstdDecompressor().stream_reader(body) as reader:
                filled = reader.readinto(out)
                while filled < size:
                    more = reader.readinto(memoryview(out)[filled:])
                    if not more:
                        break
                    filled += more
        except zstandard.ZstdError as exc:
            raise DamagedObject(blob_key(digest), f"it does not decompress ({exc})") from None
        if filled != size:
            raise DamagedObject(blob_key(digest), "it is truncated")
        return out

    def _join_chunks(self, digest: str, manifest: dict, size: int) -> WritableBuffer:
        """Read, decompress and check the chunks in parallel, each straight into its place."""
        out = writable_buffer(size)
        view = memoryview(out)
        chunk_size = manifest["chunk_size"]
        chunks = manifest["chunks"]
        if len(chunks) != -(-size // chunk_size):
            raise DamagedObject(blob_key(digest), "its list of chunks does not cover its size")

        def load(item: tuple[int, str]) -> None:
            index, chunk_digest = item
            self._load_chunk(digest, chunk_digest, view[index * chunk_size: min(size, (index + 1) * chunk_size)])

        list(self._threads("chunks").map(load, enumerate(chunks)))
        return out

    def _load_chunk(self, digest: str, chunk_digest: str, into: memoryview) -> None:
        """Stream one chunk of the value ``digest`` into ``into`` (exactly its size), hashing
        each block as it arrives, and raise `DamagedObject` unless it matches its name."""
        key = blob_key(chunk_digest)
        try:
            reader = self.storage.open_reader(key)
        except BlobNotFound:
            raise DamagedObject(blob_key(digest), f"its chunk {key} is missing") from None
        with reader:
            fmt, encoding, flags, size = self._parse_header(chunk_digest, reader.read(HEADER.size))
            if flags & FLAG_MANIFEST or size != into.nbytes:
                raise DamagedObject(key, "its size is not the one its manifest gives")
            hasher = HASHES[fmt](bytes([ENCODING_IDS[encoding]]))
            source = zstandard.ZstdDecompressor().stream_reader(reader, closefd=False) if flags & FLAG_ZSTD else reader
            filled = 0
            try:
                while filled < size:
                    block = into[filled: min(size, filled + READ_BLOCK)]
                    got = source.readinto(block)
                    if not got:
                        break
                    hasher.update(block[:got])
                    filled += got
            except zstandard.ZstdError as exc:
                raise DamagedObject(key, f"it does not decompress ({exc})") from None
            if filled != size or (not flags & FLAG_ZSTD and reader.read(1)):
                raise DamagedObject(key, "it is truncated" if filled != size else "it is longer than its header says")
        if hasher.hexdigest() != chunk_digest:
            raise DamagedObject(key, "its bytes do not match their hash")

    def verify(self, digest: str) -> None:
        """Re-read one stored object (each chunk of a chunked one, without joining them) and
        raise `DamagedObject` if its bytes no longer hash to its name; `BlobNotFound` if gone."""
        blob = self.storage.get_buffer(blob_key(digest))
        fmt, encoding, flags, size, body = self._header(digest, blob)
        if not flags & FLAG_MANIFEST:
            self._open(digest, blob, copy=False)
            return
        manifest = self._manifest(digest, fmt, encoding, body)
        chunk_size = manifest["chunk_size"]

        def check(item: tuple[int, str]) -> None:
            index, chunk_digest = item
            length = min(chunk_size, size - index * chunk_size)
            self._load_chunk(digest, chunk_digest, memoryview(bytearray(length)))

        list(self._threads("chunks").map(check, enumerate(manifest["chunks"])))

    def load_values(self, records: Mapping[str, ArtifactRecord]) -> dict[str, Any]:
        payloads = self._payloads([record.key for record in records.values()])
        values = {}
        for name, record in records.items():
            encoding, payload = payloads[record.key]
            try:
                values[name] = decode(encoding, payload)
            except Exception as exc:
                raise DataStoreError(f"artifact '{name}' cannot be loaded: {type(exc).__name__}: {exc}") from None
        return values

    def load_blobs(self, digests: Iterable[str]) -> list[bytes]:
        digests = list(digests)
        payloads = self._payloads(digests)
        return [bytes(payloads[d][1]) for d in digests]
