"""A storage backend that keeps every blob in one SQLite file.

Flow's content-addressed store sits on top: this class only moves named blobs. Each write is
a transaction, so a reader never sees half a blob, and the file's write-ahead log lets the
tasks of a run read while one of them writes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from flow_core.plugin_api import Blob, BlobNotFound, DataStoreError, Settings, StorageBackend

from flow_datastore_sqlite.plugin import SQLITE_FILE

SCHEMA = "CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, value BLOB NOT NULL)"


class SqliteStorage(StorageBackend):
    name = "sqlite"  # must equal the name plugin.py registers
    local_only = True  # the file is on this machine: remote compute refuses this datastore

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser().absolute()
        # A SQLite connection belongs to one process: Flow forks its tasks from a prepared
        # process, so each (process, thread) opens its own on first use. A child never closes
        # what it inherited, which could release its parent's locks on the file.
        self._connections: dict[tuple[int, int], sqlite3.Connection] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteStorage:
        return cls(settings.require(SQLITE_FILE.name, "set it to the file the sqlite datastore keeps blobs in"))

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def put_many(self, items: Iterable[tuple[str, Blob]], overwrite: bool = True) -> None:
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        rows = list(items)
        with self._reporting("write to"), self._connection() as connection:  # one transaction
            connection.executemany(f"{verb} INTO blobs (key, value) VALUES (?, ?)", rows)

    def get_many(self, keys: Iterable[str]) -> Mapping[str, bytes]:
        found = {}
        with self._reporting("read"):
            connection = self._connection()
            for key in keys:
                row = connection.execute("SELECT value FROM blobs WHERE key = ?", (key,)).fetchone()
                if row is None:
                    raise BlobNotFound(key)
                found[key] = row[0]
        return found

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        with self._reporting("read"):
            connection = self._connection()
            return {key for key in keys if connection.execute("SELECT 1 FROM blobs WHERE key = ?", (key,)).fetchone()}

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._reporting("list"):
            rows = self._connection().execute(
                "SELECT key FROM blobs WHERE substr(key, 1, ?) = ? ORDER BY key", (len(prefix), prefix)).fetchall()
        return iter([key for (key,) in rows])

    def delete_many(self, keys: Iterable[str]) -> None:
        with self._reporting("delete from"), self._connection() as connection:
            connection.executemany("DELETE FROM blobs WHERE key = ?", [(key,) for key in keys])

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the table made) on first use."""
        me = (os.getpid(), threading.get_ident())
        connection = self._connections.get(me)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Waits up to a minute for another task's write to finish instead of failing.
            connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(SCHEMA)
            self._connections[me] = connection
        return connection

    @contextlib.contextmanager
    def _reporting(self, doing: str) -> Iterator[None]:
        """Turn SQLite's and the file system's errors into one sentence naming the file."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise DataStoreError(f"cannot {doing} the SQLite datastore {self.path} ({exc}); "
                                 f"check that {SQLITE_FILE.name} names a file you can write") from None
