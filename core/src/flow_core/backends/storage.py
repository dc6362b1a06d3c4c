"""The storage-backend interface: the smallest surface a datastore plugin implements.

A storage backend moves opaque, named blobs. It knows nothing of artifacts, hashing or
compression: the core's content-addressed store does that, identically for every backend,
so a run stored on S3 holds exactly the objects a local run holds.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO, ClassVar, Union

from flow_core.errors import DataStoreError

if TYPE_CHECKING:
    from flow_core.plugin.settings import Settings

#: What a blob may be handed over as; a memoryview avoids copying a large buffer.
Blob = Union[bytes, bytearray, memoryview]


class StorageBackend(ABC):
    """Named blobs under one root.

    Keys are relative, ``/``-separated paths made of ``[A-Za-z0-9._-]`` segments. Every
    method is batched: implementations are expected to work in parallel inside a call
    (a thread pool for a remote store) and to be safe to call from several threads.

    Writes are atomic per object: a concurrent reader sees either the whole old blob, the
    whole new one, or nothing -- never a partial write (write to a temporary name, then rename,
    or rely on the store's own atomic PUT).

    A minimal backend::

        class MemoryStorage(StorageBackend):
            name = "memory"

            def __init__(self):
                self.blobs = {}

            @classmethod
            def from_settings(cls, settings):
                return cls()

            def put_many(self, items, overwrite=True):
                for key, blob in items:
                    if overwrite or key not in self.blobs:
                        self.blobs[key] = bytes(blob)

            def get_many(self, keys):
                out = {}
                for key in keys:
                    if key not in self.blobs:
                        raise BlobNotFound(key)
                    out[key] = self.blobs[key]
                return out

            def exists_many(self, keys):
                return {key for key in keys if key in self.blobs}

            def list(self, prefix=""):
                return iter(sorted(k for k in self.blobs if k.startswith(prefix)))

            def describe(self):
                return "memory"
    """

    #: The name configuration selects this backend by (``METAFLOW_DEFAULT_DATASTORE``).
    name: ClassVar[str]
    #: True when only this machine can reach the blobs (a local folder): remote compute
    #: refuses to run with such a datastore.
    local_only: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> StorageBackend:
        """Build the backend from configuration; raise ConfigError naming a missing setting."""

    @abstractmethod
    def put_many(self, items: Iterable[tuple[str, Blob]], overwrite: bool = True) -> None:
        """Store every (key, blob). With ``overwrite=False`` an existing key is left as it is
        (content-addressed blobs never change, so skipping them saves the upload)."""

    @abstractmethod
    def get_many(self, keys: Iterable[str]) -> Mapping[str, bytes]:
        """Return ``{key: blob}`` for every key; raise `BlobNotFound` for a missing one."""

    @abstractmethod
    def exists_many(self, keys: Iterable[str]) -> set[str]:
        """Return the subset of ``keys`` that exist."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key starting with ``prefix``, in sorted order."""

    @abstractmethod
    def describe(self) -> str:
        """Where the blobs live, for messages (``/home/me/.flow``, ``s3://bucket/prefix``)."""

    def location(self, key: str) -> str | None:
        """The blob's address as another machine fetches it with its own credentials
        (``s3://bucket/prefix/key``), for a remote task's bootstrap, which runs before Flow
        itself is importable; None when there is no such address."""
        return None

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove these blobs (missing ones are fine). Only `verify --remove-damaged` calls it,
        so that the next task producing a damaged value stores it again; a backend that cannot
        delete leaves this as it is and that option says so."""
        raise DataStoreError(f"the {self.name} datastore cannot delete objects")

    def remove_leftovers(self, older_than: float) -> list[str]:
        """Remove what interrupted writes left behind more than ``older_than`` seconds ago
        (temporary files of a process killed mid-write, say) and return their names. A store
        whose writes leave nothing behind keeps this default."""
        return []

    def warm_up(self) -> None:
        """Do slow, one-time setup (loading an SDK's models, say) in the local fork server,
        so every task forked from it starts ready. Must not open a connection: the object is
        then used only by the forked tasks, never again by the process that warmed it."""

    # Conveniences built on the batched calls; backends rarely need to override them.

    def put(self, key: str, blob: Blob, overwrite: bool = True) -> None:
        self.put_many([(key, blob)], overwrite=overwrite)

    def put_pieces(self, key: str, pieces: Sequence[Blob], overwrite: bool = True) -> None:
        """Store the concatenation of ``pieces`` under one key (a header and a compressed
        body). A backend that can write them one after another, as the local one does, saves
        joining a large blob in memory first; the default joins them."""
        self.put(key, b"".join(pieces), overwrite=overwrite)

    def get(self, key: str) -> bytes:
        return self.get_many([key])[key]

    def get_buffer(self, key: str) -> bytes | memoryview:
        """One blob as a read-only buffer, for a reader that only looks at it once (a chunk
        decompressed into place). A backend that can hand out its bytes without a copy, as
        the local one maps the file, overrides this; the default is `get`."""
        return self.get(key)

    def open_reader(self, key: str) -> BinaryIO:
        """One blob as a file object to read from start to end (``read``, ``readinto``), for a
        reader that streams it straight into place (a chunk of a large value). A backend that
        can hand out a stream without holding the whole blob first, as the local one opens the
        file, overrides this; the default wraps `get_buffer`. Raises `BlobNotFound`."""
        return io.BytesIO(self.get_buffer(key))

    def exists(self, key: str) -> bool:
        return key in self.exists_many([key])
