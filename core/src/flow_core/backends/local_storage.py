"""The local storage backend: blobs as files under the local root."""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from flow_core.backends.storage import Blob, StorageBackend
from flow_core.errors import BlobNotFound, DataStoreError
from flow_core.plugin.settings import Settings

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
_TEMP_PREFIX = ".tmp-"
_PARALLEL_FROM = 4  # batches smaller than this are done inline
#: A read from the page cache takes tens of microseconds, less than handing it to a thread.
#: Reads slower than this on average (a cold disk, a network filesystem, large files) are
#: waits that threads can overlap.
_INLINE_READ_SECONDS = 100e-6
_MAP_FROM = 1024 * 1024  # get_buffer maps files this large instead of reading them
_COUNTER = itertools.count()  # next() on it is atomic under the GIL
_IOV_MAX = 1024  # the most buffers one writev takes (Linux, macOS)


def check_key(key: str) -> str:
    segments = key.split("/")
    if not key or any(s in ("", ".", "..") or not _SEGMENT.match(s) or s.startswith(_TEMP_PREFIX) for s in segments):
        raise DataStoreError(f"'{key}' is not a valid datastore key")
    return key


class LocalStorage(StorageBackend):
    """Files under one folder; a write goes to a temporary file that is then renamed into place."""

    name = "local"
    local_only = True

    def __init__(self, root: Path):
        self.root = Path(root)
        self._root = str(self.root)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStorage:
        return cls(settings.local_root)

    def describe(self) -> str:
        return str(self.root)

    def _map(self, function, items: list) -> list:
        if len(items) < _PARALLEL_FROM:
            return [function(item) for item in items]
        if self._pool is None or self._pool_pid != os.getpid():  # never reuse a pool across fork
            self._pool = ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) * 4))
            self._pool_pid = os.getpid()
        return list(self._pool.map(function, items))

    def _file(self, key: str) -> str:
        """The key's file as a string path: every task writes and reads several blobs, and
        building `Path` objects for them cost more than the system calls they make."""
        return os.path.join(self._root, check_key(key))

    def put_pieces(self, key: str, pieces: Sequence[Blob], overwrite: bool = True) -> None:
        self._put((key, pieces, overwrite))

    def _put(self, item: tuple[str, Blob | Sequence[Blob], bool]) -> None:
        key, blob, overwrite = item
        pieces = blob if isinstance(blob, (list, tuple)) else (blob,)
        path = self._file(key)
        if not overwrite and os.path.exists(path):
            return
        folder = os.path.dirname(path)
        try:
            fd, tmp = self._temporary_file(folder)
            try:
                try:
                    _write_all(fd, pieces)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except BaseException:  # a failed or interrupted write leaves no temporary file behind
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise DataStoreError(f"cannot write {path}: {exc.strerror}") from None

    @staticmethod
    def _temporary_file(folder: str) -> tuple[int, str]:
        """A new file beside where the blob goes, named by process, thread and a counter
        (`tempfile.mkstemp` seeds a random generator anew in every forked task); the folder
        is made only when the open says it is missing."""
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        while True:
            tmp = os.path.join(folder, f"{_TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{next(_COUNTER)}")
            try:
                return os.open(tmp, flags, 0o600), tmp
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            except FileExistsError:  # another machine's process of the same pid, on a shared folder
                pass

    def put_many(self, items: Iterable[tuple[str, Blob]], overwrite: bool = True) -> None:
        self._map(self._put, [(key, blob, overwrite) for key, blob in items])

    def _get(self, key: str) -> tuple[str, bytes]:
        path = self._file(key)
        try:
            with open(path, "rb", buffering=0) as handle:
                return key, handle.readall()
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise DataStoreError(f"cannot read {path}: {exc.strerror}") from None

    def get_buffer(self, key: str) -> bytes | memoryview:
        path = self._file(key)
        try:
            with open(path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size < _MAP_FROM:
                    return handle.read()
                return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise DataStoreError(f"cannot read {path}: {exc.strerror}") from None

    def open_reader(self, key: str) -> BinaryIO:
        """The file itself, unbuffered: ``readinto`` goes from the page cache straight into the
        caller's buffer (no mapping whose pages would count twice in memory, no extra copy)."""
        path = self._file(key)
        try:
            return open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise DataStoreError(f"cannot read {path}: {exc.strerror}") from None

    def get_many(self, keys: Iterable[str]) -> Mapping[str, bytes]:
        """Read in this thread while reads are fast (a join reading a thousand small indexes
        from the page cache spent three quarters of its time handing them to threads), and
        the rest on the pool once they turn out to wait."""
        keys = list(keys)
        found: dict[str, bytes] = {}
        started = time.perf_counter()
        for done, key in enumerate(keys):
            if done >= _PARALLEL_FROM and time.perf_counter() - started > done * _INLINE_READ_SECONDS:
                found.update(self._map(self._get, keys[done:]))
                break
            found[key] = self._get(key)[1]
        return found

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        return {key for key in keys if os.path.isfile(self._file(key))}

    def delete_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                os.unlink(self._file(key))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise DataStoreError(f"cannot remove {self._file(key)}: {exc.strerror}") from None

    def remove_leftovers(self, older_than: float) -> list[str]:
        """Temporary files of writes that never finished (the writer was killed before its rename)."""
        cutoff = time.time() - older_than
        removed = []
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                try:
                    if filename.startswith(_TEMP_PREFIX) and os.stat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed.append(os.path.relpath(path, self.root))
                except FileNotFoundError:
                    pass  # its writer finished or another clean-up got there first
        return sorted(removed)

    def list(self, prefix: str = "") -> Iterator[str]:
        # Walk only the folder the prefix points into, and below it only the folders whose
        # keys start with the prefix. (Every task lists its parents' folders: os.walk and
        # relpath cost it more than the directory reads do.)
        folder = prefix.rpartition("/")[0]
        found = []
        pending = [(os.path.join(self._root, folder) if folder else self._root, folder)]
        while pending:
            path, rel = pending.pop()
            try:
                entries = os.scandir(path)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    if entry.name.startswith(_TEMP_PREFIX):
                        continue
                    key = f"{rel}/{entry.name}" if rel else entry.name
                    if not key.startswith(prefix):
                        continue
                    if entry.is_dir():
                        pending.append((entry.path, key))
                    else:
                        found.append(key)
        return iter(sorted(found))


def _write_all(fd: int, pieces: Sequence[Blob]) -> None:
    """Write the pieces one after another with ``writev``, however many calls it takes (one
    may write only part): no file object, whose set-up costs a small blob more system calls
    than the write itself."""
    views = [view for view in (memoryview(piece).cast("B") for piece in pieces) if view.nbytes]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first: first + _IOV_MAX])
        while first < len(views) and written >= views[first].nbytes:
            written -= views[first].nbytes
            first += 1
        if written:
            views[first] = views[first][written:]
