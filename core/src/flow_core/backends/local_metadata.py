"""The local metadata backend: one SQLite database (WAL) under the local root.

WAL lets readers (a notebook listing runs) work while runs write. Every write is one short
``BEGIN IMMEDIATE`` transaction, which takes the write lock up front: that is what makes id
allocation safe when two runs of one flow start in the same folder at the same moment.
Run and task ids are integers counted per flow and per run, as Metaflow's service does. A run
or task a caller names (`MetadataBackend.check_name`) gets a number too, which keys it in every
table, and a name column the id it shows comes from: numbered lookups stay one indexed query.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.records import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    ArtifactRecord,
    AttemptRecord,
    FlowRecord,
    MetadataField,
    RunRecord,
    StepRecord,
    TaskRecord,
)
from flow_core.errors import MetadataError, NotFound
from flow_core.plugin.settings import Settings

DATABASE_NAME = "metadata.sqlite"
SCHEMA_VERSION = 3
BUSY_TIMEOUT_SECONDS = 60.0

SCHEMA = """
CREATE TABLE flows (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    next_run INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE runs (
    flow_name TEXT NOT NULL,
    run_number INTEGER NOT NULL,
    user TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL,
    finished_at REAL,
    heartbeat_at REAL,
    origin_run_id TEXT,
    next_task INTEGER NOT NULL DEFAULT 1,
    run_name TEXT,
    PRIMARY KEY (flow_name, run_number)
);
CREATE TABLE run_tags (
    flow_name TEXT NOT NULL,
    run_number INTEGER NOT NULL,
    tag TEXT NOT NULL,
    is_system INTEGER NOT NULL,
    PRIMARY KEY (flow_name, run_number, tag, is_system)
);
CREATE INDEX run_tags_by_tag ON run_tags (flow_name, tag);
CREATE TABLE steps (
    flow_name TEXT NOT NULL,
    run_number INTEGER NOT NULL,
    step_name TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (flow_name, run_number, step_name)
);
CREATE TABLE tasks (
    flow_name TEXT NOT NULL,
    run_number INTEGER NOT NULL,
    step_name TEXT NOT NULL,
    task_number INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempt INTEGER NOT NULL DEFAULT -1,
    status TEXT NOT NULL,
    finished_at REAL,
    task_name TEXT,
    PRIMARY KEY (flow_name, run_number, task_number)
);
CREATE INDEX tasks_by_step ON tasks (flow_name, run_number, step_name, task_number);
CREATE TABLE artifacts (
    flow_name TEXT NOT NULL,
    run_number INTEGER NOT NULL,
    task_number INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    type TEXT NOT NULL,
    size INTEGER NOT NULL,
    encoding TEXT NOT NULL,
    PRIMARY KEY (flow_name, run_number, task_number, attempt, name)
);
CREATE TABLE fields (
    flow_name TEXT NOT NULL,
    run_number INTEGER NOT NULL,
    task_number INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    type TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX fields_by_task ON fields (flow_name, run_number, task_number);
"""

#: Each attempt's start, end and outcome, so that a run's timeline is one query.
ATTEMPTS_TABLE = """
CREATE TABLE attempts (
    flow_name TEXT NOT NULL,
    run_number INTEGER NOT NULL,
    task_number INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    PRIMARY KEY (flow_name, run_number, task_number, attempt)
);
"""

#: Attempts recorded before the attempts table, as their fields and task tell them (an
#: earlier attempt failed and ended where the next started).
ATTEMPTS_FROM_FIELDS = """
INSERT INTO attempts
SELECT s.flow_name, s.run_number, s.task_number, s.attempt, s.started_at,
       CASE WHEN s.next_start IS NOT NULL THEN s.next_start WHEN t.status != 'running' THEN t.finished_at END,
       CASE WHEN s.next_start IS NOT NULL THEN 'failed' ELSE t.status END
FROM (SELECT flow_name, run_number, task_number, attempt, MIN(created_at) AS started_at,
             LEAD(MIN(created_at)) OVER (PARTITION BY flow_name, run_number, task_number ORDER BY attempt) AS next_start
      FROM fields GROUP BY flow_name, run_number, task_number, attempt) AS s
JOIN tasks t USING (flow_name, run_number, task_number)
"""

NAME_INDEXES = """
CREATE UNIQUE INDEX runs_by_name ON runs (flow_name, run_name) WHERE run_name IS NOT NULL;
CREATE UNIQUE INDEX tasks_by_name ON tasks (flow_name, run_number, task_name) WHERE task_name IS NOT NULL;
"""

#: The statements that bring a database from each older version to the next.
MIGRATIONS = {
    1: """
ALTER TABLE runs ADD COLUMN run_name TEXT;
ALTER TABLE tasks ADD COLUMN task_name TEXT;
""" + NAME_INDEXES,
    2: ATTEMPTS_TABLE + ";" + ATTEMPTS_FROM_FIELDS,
}
MAX_INTEGER = 2**63 - 1


def _as_number(value: str) -> int | None:
    """The number an allocated id spells, or None for a name (or a number too big to exist)."""
    text = str(value)
    if text.isascii() and text.isdigit() and int(text) <= MAX_INTEGER:
        return int(text)
    return None


def _script(conn: sqlite3.Connection, statements: str) -> None:
    for statement in filter(str.strip, statements.split(";")):
        conn.execute(statement)


class LocalMetadata(MetadataBackend):
    name = "local"
    local_only = True

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / DATABASE_NAME
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings) -> "LocalMetadata":
        return cls(settings.local_root)

    def describe(self) -> str:
        return f"local@{self.root}"

    # -- connections ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """One connection per thread and process: sqlite3 connections must not cross a fork."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # Switching a new database to WAL needs an exclusive lock and SQLite does not wait
            # for it (no busy handler), so concurrent first opens take turns on a lock file.
            with open(self.root / (DATABASE_NAME + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                self._ensure_schema(conn)
        except (sqlite3.Error, OSError) as exc:
            raise MetadataError(f"cannot open the local metadata database {self.path}: {exc}") from None
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise MetadataError(
                f"the local metadata database {self.path} was written by a newer flow-core; upgrade flow-core")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            if version == 0:
                _script(conn, SCHEMA + NAME_INDEXES + ATTEMPTS_TABLE)
            else:
                for older in range(version, SCHEMA_VERSION):
                    _script(conn, MIGRATIONS[older])
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._write() as db:
            self._local.batch = db
            try:
                yield
            finally:
                self._local.batch = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        batch = getattr(self._local, "batch", None)
        if batch is not None and self._local.pid == os.getpid():  # inside batch(): join its transaction
            yield batch
            return
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise MetadataError(f"cannot write the local metadata database {self.path}: {exc}") from None

    def _read(self, sql: str, args: Sequence = ()) -> list[tuple]:
        try:
            return self._connection().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise MetadataError(f"cannot read the local metadata database {self.path}: {exc}") from None

    # -- ids ------------------------------------------------------------------------------------

    def _run_number(self, flow_name: str, run_id: str) -> int:
        """The number keying a run given by its number or its name; NotFound for an unknown name."""
        number = _as_number(run_id)
        if number is not None:
            return number
        rows = self._read("SELECT run_number FROM runs WHERE flow_name = ? AND run_name = ?", (flow_name, run_id))
        if not rows:
            raise NotFound(f"run {flow_name}/{run_id} does not exist in {self.describe()}")
        return rows[0][0]

    def _task_key(self, flow_name: str, run_id: str, step_name: str, task_id: str) -> tuple[str, int, int]:
        """(flow, run number, task number) of a task given by numbers or names."""
        run = self._run_number(flow_name, run_id)
        number = _as_number(task_id)
        if number is None:
            rows = self._read("SELECT task_number FROM tasks WHERE flow_name = ? AND run_number = ? AND task_name = ?",
                              (flow_name, run, task_id))
            if not rows:
                raise NotFound(f"task {flow_name}/{run_id}/{step_name}/{task_id} does not exist in {self.describe()}")
            number = rows[0][0]
        return flow_name, run, number

    # -- write side -------------------------------------------------------------------------

    def new_run(self, flow_name: str, user: str, tags: Iterable[str] = (), system_tags: Iterable[str] = (),
                origin_run_id: str | None = None, run_id: str | None = None) -> RunRecord:
        if run_id is not None:
            self.check_name("run", run_id)
        now = time.time()
        tags, system_tags = frozenset(tags), frozenset(system_tags)
        with self._write() as db:
            if run_id is None or db.execute("SELECT 1 FROM runs WHERE flow_name = ? AND run_name = ?",
                                            (flow_name, run_id)).fetchone() is None:
                db.execute("INSERT OR IGNORE INTO flows (name, created_at) VALUES (?, ?)", (flow_name, now))
                (number,) = db.execute("SELECT next_run FROM flows WHERE name = ?", (flow_name,)).fetchone()
                db.execute("UPDATE flows SET next_run = ? WHERE name = ?", (number + 1, flow_name))
                db.execute(
                    "INSERT INTO runs (flow_name, run_number, user, created_at, status, heartbeat_at, origin_run_id,"
                    " run_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (flow_name, number, user, now, RUNNING, now, origin_run_id, run_id))
                db.executemany("INSERT INTO run_tags VALUES (?, ?, ?, ?)", [(flow_name, number, t, 0) for t in tags]
                               + [(flow_name, number, t, 1) for t in system_tags])
                return RunRecord(flow_name, run_id or str(number), user, now, RUNNING, None, now, tags, system_tags,
                                 origin_run_id)
        existing = self.get_run(flow_name, run_id)
        if existing is None:
            raise MetadataError(f"run {flow_name}/{run_id} vanished from {self.describe()} while it was registered")
        return existing

    def finish_run(self, flow_name: str, run_id: str, succeeded: bool) -> None:
        run = self._run_number(flow_name, run_id)
        with self._write() as db:
            db.execute("UPDATE runs SET status = ?, finished_at = ? WHERE flow_name = ? AND run_number = ?",
                       (SUCCEEDED if succeeded else FAILED, time.time(), flow_name, run))

    def heartbeat_run(self, flow_name: str, run_id: str) -> None:
        run = self._run_number(flow_name, run_id)
        with self._write() as db:
            db.execute("UPDATE runs SET heartbeat_at = ? WHERE flow_name = ? AND run_number = ?",
                       (time.time(), flow_name, run))

    def _allocate(self, db: sqlite3.Connection, flow_name: str, run: int, run_id: str, step_name: str,
                  names: Sequence[str | None]) -> int:
        """Register the step if new and one task per name (None: numbered); the first number."""
        now = time.time()
        row = db.execute("SELECT next_task FROM runs WHERE flow_name = ? AND run_number = ?",
                         (flow_name, run)).fetchone()
        if row is None:
            raise NotFound(f"run {flow_name}/{run_id} does not exist in {self.describe()}")
        first = row[0]
        if names:
            db.execute("UPDATE runs SET next_task = ? WHERE flow_name = ? AND run_number = ?",
                       (first + len(names), flow_name, run))
        db.execute("INSERT OR IGNORE INTO steps VALUES (?, ?, ?, ?)", (flow_name, run, step_name, now))
        db.executemany(
            "INSERT INTO tasks (flow_name, run_number, step_name, task_number, task_name, created_at, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(flow_name, run, step_name, first + i, name, now, RUNNING) for i, name in enumerate(names)])
        return first

    def new_tasks(self, flow_name: str, run_id: str, step_name: str, count: int = 1) -> list[str]:
        run = self._run_number(flow_name, run_id)
        with self._write() as db:
            first = self._allocate(db, flow_name, run, run_id, step_name, [None] * count)
        return [str(n) for n in range(first, first + count)]

    def register_tasks(self, flow_name: str, run_id: str, step_name: str, task_ids: Sequence[str]) -> None:
        names = list(dict.fromkeys(self.check_name("task", t) for t in task_ids))
        run = self._run_number(flow_name, run_id)
        with self._write() as db:
            known = dict(db.execute(
                "SELECT task_name, step_name FROM tasks WHERE flow_name = ? AND run_number = ?"
                " AND task_name IN (SELECT value FROM json_each(?))", (flow_name, run, json.dumps(names))).fetchall())
            for name, step in known.items():
                if step != step_name:
                    raise MetadataError(f"task {name} of run {flow_name}/{run_id} belongs to step {step}, "
                                        f"not {step_name}, and task ids are unique within a run")
            self._allocate(db, flow_name, run, run_id, step_name, [n for n in names if n not in known])

    def _insert_fields(self, db: sqlite3.Connection, key: tuple, attempt: int, fields: Mapping[str, str]) -> None:
        now = time.time()
        db.executemany("INSERT INTO fields VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [(*key, attempt, f, str(v), "", now) for f, v in fields.items()])

    def start_attempt(self, flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int,
                      fields: Mapping[str, str] = {}) -> None:
        key = self._task_key(flow_name, run_id, step_name, task_id)
        with self._write() as db:
            changed = db.execute(
                "UPDATE tasks SET attempt = MAX(attempt, ?), status = ?, finished_at = NULL"
                " WHERE flow_name = ? AND run_number = ? AND task_number = ?", (attempt, RUNNING, *key)).rowcount
            if not changed:
                raise NotFound(f"task {flow_name}/{run_id}/{step_name}/{task_id} was never allocated")
            db.execute("INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, NULL, ?)",
                       (*key, attempt, time.time(), RUNNING))
            self._insert_fields(db, key, attempt, fields)

    def finish_attempt(self, flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int,
                       succeeded: bool, artifacts: Sequence[ArtifactRecord] = (),
                       fields: Mapping[str, str] = {}) -> None:
        key = self._task_key(flow_name, run_id, step_name, task_id)
        status, now = SUCCEEDED if succeeded else FAILED, time.time()
        with self._write() as db:
            db.execute(
                "UPDATE tasks SET attempt = MAX(attempt, ?), status = ?, finished_at = ?"
                " WHERE flow_name = ? AND run_number = ? AND task_number = ?", (attempt, status, now, *key))
            db.execute("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?)"
                       " ON CONFLICT (flow_name, run_number, task_number, attempt) DO UPDATE"
                       " SET finished_at = excluded.finished_at, status = excluded.status",
                       (*key, attempt, now, now, status))
            db.executemany("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(*key, attempt, a.name, a.key, a.type, a.size, a.encoding) for a in artifacts])
            self._insert_fields(db, key, attempt, fields)

    def add_run_tags(self, flow_name: str, run_id: str, tags: Iterable[str]) -> None:
        run = self._run_number(flow_name, run_id)
        with self._write() as db:
            db.executemany("INSERT OR IGNORE INTO run_tags VALUES (?, ?, ?, 0)", [(flow_name, run, t) for t in tags])

    def remove_run_tags(self, flow_name: str, run_id: str, tags: Iterable[str]) -> None:
        run = self._run_number(flow_name, run_id)
        with self._write() as db:
            db.executemany("DELETE FROM run_tags WHERE flow_name = ? AND run_number = ? AND tag = ? AND is_system = 0",
                           [(flow_name, run, t) for t in tags])

    # -- read side --------------------------------------------------------------------------

    def list_flows(self) -> list[FlowRecord]:
        return [FlowRecord(*row) for row in self._read("SELECT name, created_at FROM flows ORDER BY name")]

    _RUN_COLUMNS = "run_number, run_name, user, created_at, status, finished_at, heartbeat_at, origin_run_id"

    def _runs(self, flow_name: str, rows: list[tuple]) -> list[RunRecord]:
        if not rows:
            return []
        tags: dict[int, tuple[set, set]] = {row[0]: (set(), set()) for row in rows}
        if len(rows) == 1:
            tag_rows = self._read("SELECT run_number, tag, is_system FROM run_tags WHERE flow_name = ? AND run_number = ?",
                                  (flow_name, rows[0][0]))
        else:
            tag_rows = self._read("SELECT run_number, tag, is_system FROM run_tags WHERE flow_name = ?", (flow_name,))
        for number, tag, is_system in tag_rows:
            if number in tags:
                tags[number][is_system].add(tag)
        return [RunRecord(flow_name, name or str(n), user, created, status, finished, heartbeat,
                          tags[n][0], tags[n][1], origin)
                for n, name, user, created, status, finished, heartbeat, origin in rows]

    def list_runs(self, flow_name: str, tags: Iterable[str] = (), limit: int | None = None) -> list[RunRecord]:
        sql = f"SELECT {self._RUN_COLUMNS} FROM runs WHERE flow_name = ?"
        args: list = [flow_name]
        for tag in dict.fromkeys(tags):
            sql += " AND run_number IN (SELECT run_number FROM run_tags WHERE flow_name = ? AND tag = ?)"
            args += [flow_name, tag]
        sql += " ORDER BY run_number DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return self._runs(flow_name, self._read(sql, args))

    def get_run(self, flow_name: str, run_id: str) -> RunRecord | None:
        number = _as_number(run_id)
        column, value = ("run_number", number) if number is not None else ("run_name", run_id)
        rows = self._read(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE flow_name = ? AND {column} = ?",
                          (flow_name, value))
        return self._runs(flow_name, rows)[0] if rows else None

    def list_steps(self, flow_name: str, run_id: str) -> list[StepRecord]:
        rows = self._read("SELECT step_name, created_at FROM steps WHERE flow_name = ? AND run_number = ? ORDER BY rowid",
                          (flow_name, self._run_number(flow_name, run_id)))
        return [StepRecord(flow_name, run_id, step, created) for step, created in rows]

    _TASK_COLUMNS = "step_name, task_number, task_name, created_at, attempt, status, finished_at"

    def _tasks(self, flow_name: str, run_id: str, rows: list[tuple]) -> list[TaskRecord]:
        return [TaskRecord(flow_name, run_id, step, name or str(n), created, attempt, status, finished)
                for step, n, name, created, attempt, status, finished in rows]

    def list_tasks(self, flow_name: str, run_id: str, step_name: str | None = None) -> list[TaskRecord]:
        sql = f"SELECT {self._TASK_COLUMNS} FROM tasks WHERE flow_name = ? AND run_number = ?"
        args: list = [flow_name, self._run_number(flow_name, run_id)]
        if step_name is not None:
            sql += " AND step_name = ?"
            args.append(step_name)
        return self._tasks(flow_name, run_id, self._read(sql + " ORDER BY task_number", args))

    def get_task(self, flow_name: str, run_id: str, step_name: str, task_id: str) -> TaskRecord | None:
        try:
            run = self._run_number(flow_name, run_id)
        except NotFound:
            return None
        number = _as_number(task_id)
        column, value = ("task_number", number) if number is not None else ("task_name", task_id)
        rows = self._read(f"SELECT {self._TASK_COLUMNS} FROM tasks WHERE flow_name = ? AND run_number = ?"
                          f" AND {column} = ? AND step_name = ?", (flow_name, run, value, step_name))
        return self._tasks(flow_name, run_id, rows)[0] if rows else None

    def list_artifacts(self, flow_name: str, run_id: str, step_name: str, task_id: str,
                       attempt: int | None = None) -> list[ArtifactRecord]:
        key = self._task_key(flow_name, run_id, step_name, task_id)
        if attempt is None:
            rows = self._read("SELECT attempt FROM tasks WHERE flow_name = ? AND run_number = ? AND task_number = ?"
                              " AND step_name = ?", (*key, step_name))
            if not rows:
                return []
            attempt = rows[0][0]
        rows = self._read("SELECT name, key, type, size, encoding, attempt FROM artifacts WHERE flow_name = ?"
                          " AND run_number = ? AND task_number = ? AND attempt = ? ORDER BY name", (*key, attempt))
        return [ArtifactRecord(*row) for row in rows]

    def list_metadata(self, flow_name: str, run_id: str, step_name: str, task_id: str) -> list[MetadataField]:
        key = self._task_key(flow_name, run_id, step_name, task_id)
        rows = self._read("SELECT field, value, type, attempt, created_at FROM fields WHERE flow_name = ?"
                          " AND run_number = ? AND task_number = ? ORDER BY rowid", key)
        return [MetadataField(*row) for row in rows]

    def list_attempts(self, flow_name: str, run_id: str) -> list[AttemptRecord]:
        """One query over the attempts table."""
        rows = self._read(
            "SELECT t.step_name, t.task_number, t.task_name, a.attempt, a.started_at, a.finished_at, a.status"
            " FROM attempts a JOIN tasks t USING (flow_name, run_number, task_number)"
            " WHERE a.flow_name = ? AND a.run_number = ? ORDER BY a.task_number, a.attempt",
            (flow_name, self._run_number(flow_name, run_id)))
        return [AttemptRecord(step, name or str(number), attempt, started, finished, status)
                for step, number, name, attempt, started, finished, status in rows]
