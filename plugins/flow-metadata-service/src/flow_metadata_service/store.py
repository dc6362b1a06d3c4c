"""Every query the service makes, on an asyncpg connection pool.

Rows come back as the JSON objects of metaflow-service's API (see `shapes`), so the HTTP
layer only routes and validates.

A run or task is named in a path either by the number the service allocated or by the
string id a client chose (``argo-…``, ``sfn-…``); `parse_id` tells which.
Numbers are 64-bit; a number past that range names nothing (404), never an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from .attempts import AttemptChange
from .batching import Batcher
from .errors import ServiceError
from .ids import ATTEMPT_TAG, is_number
from .limits import check_count
from .paging import Page
from .shapes import (
    artifact_json,
    attempt_json,
    exposed_id,
    flow_json,
    metadata_json,
    run_json,
    step_json,
    tag_list,
    task_json,
)

MAX_BIGINT = 2**63 - 1
HEARTBEAT_INTERVAL = 10  # seconds: what the service tells clients to wait between heartbeats
CRASH_AFTER = 60  # seconds without a heartbeat before a running run is taken to have crashed
# What a run owns, leaves first. The schema has no foreign keys (every insert finds its parent
# in the same statement; checking each one again cost a lock on a shared parent row), so
# deletes name every table.
CHILD_TABLES = ("artifacts", "metadata", "tasks", "steps", "runs")


class NotFound(ServiceError):
    """The object a request names does not exist (HTTP 404)."""


class Conflict(ServiceError):
    """The object to create exists already (HTTP 409)."""


class Invalid(ServiceError):
    """The request is well-formed JSON but asks for something impossible (HTTP 400/422)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_id(value: str, what: str) -> tuple[str, Any]:
    """('number', int) for an allocated id, ('name', str) for a client-chosen one."""
    if is_number(value):
        number = int(value)
        if number > MAX_BIGINT:
            raise NotFound(f"{what} {value} does not exist")
        return "number", number
    return "name", value


def _run_column(run: str) -> tuple[str, Any]:
    """The runs column a path's run segment matches, and the value to match."""
    kind, value = parse_id(run, "run")
    return ("run_number" if kind == "number" else "run_id"), value


def _task_column(task: str) -> tuple[str, Any]:
    kind, value = parse_id(task, "task")
    return ("task_id" if kind == "number" else "task_name"), value


def _task_by_path(run: str, task: str) -> str:
    """The query for (run_number, task_id) of the task ``$1/$2/$3/$4`` names (flow, run, step, task)."""
    return ("SELECT t.run_number, t.task_id FROM tasks t JOIN runs r USING (flow_id, run_number)"
            f" WHERE t.flow_id = $1 AND r.{_run_column(run)[0]} = $2 AND t.step_name = $3"
            f" AND t.{_task_column(task)[0]} = $4")


# The tail of a write that answers one row whether or not it wrote: batched executions are
# matched to their requests by position.
ONE_ROW = "FROM (SELECT) AS one LEFT JOIN"

RUN_STATUS = f"""
    CASE WHEN r.status = 'running'
              AND coalesce(r.last_heartbeat_ts, r.ts_epoch / 1000) < extract(epoch FROM now()) - {CRASH_AFTER}
         THEN CASE WHEN r.has_failure THEN 'failed' ELSE 'crashed' END
         ELSE r.status END"""

RUN_COLUMNS = f"""r.flow_id, r.run_number, r.run_id, r.user_name, r.ts_epoch, r.last_heartbeat_ts, r.tags,
    r.system_tags, r.status AS recorded_status, {RUN_STATUS} AS status, r.finished_at, r.origin_run_id"""

TASK_COLUMNS = """t.flow_id, t.run_number, r.run_id, t.step_name, t.task_id, t.task_name, t.user_name, t.ts_epoch,
    t.last_heartbeat_ts, r.tags, r.system_tags, t.attempt, t.status, t.finished_at"""

ARTIFACT_COLUMNS = """a.flow_id, a.run_number, r.run_id, a.step_name, a.task_id, t.task_name, a.attempt_id, a.name,
    a.location, a.ds_type, a.sha, a.type, a.content_type, a.size, a.user_name, a.ts_epoch, r.tags, r.system_tags"""

#: Each attempt's first ``attempt`` field and last ``attempt_ok`` field, by the attempt its
#: ``attempt_id:N`` tag names (Metaflow's clients and Flow's both tag them so).
ATTEMPTS_OF_RUN = f"""
    SELECT t.step_name, t.task_id, t.task_name, a.attempt,
           min(m.ts_epoch) FILTER (WHERE m.field_name = 'attempt') AS started_at,
           max(m.ts_epoch) FILTER (WHERE m.field_name = 'attempt_ok') AS finished_at,
           bool_and(m.value = 'True') FILTER (WHERE m.field_name = 'attempt_ok') AS ok,
           min(m.ts_epoch) AS first_ts
    FROM metadata m
    JOIN tasks t USING (flow_id, run_number, step_name, task_id)
    CROSS JOIN LATERAL (SELECT substr(tag, {len(ATTEMPT_TAG) + 1})::int AS attempt
                        FROM jsonb_array_elements_text(m.tags) AS tag
                        WHERE tag ~ '^{ATTEMPT_TAG}[0-9]{{1,9}}$' LIMIT 1) AS a
    WHERE m.flow_id = $1 AND m.run_number = $2 AND m.field_name IN ('attempt', 'attempt_ok')
    GROUP BY t.step_name, t.task_id, t.task_name, a.attempt
    ORDER BY t.task_id, a.attempt"""


class MetadataStore:
    """The service's tables behind one connection pool."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool
        self._batcher = Batcher(self._run_batch)

    async def _write(self, sql: str, *args: Any, conn: Any = None) -> asyncpg.Record:
        """The one row a write statement answers. Outside a transaction of the caller's, the
        statement is batched with concurrent executions of itself (see `batching`)."""
        if conn is not None:
            return await conn.fetchrow(sql, *args)
        return await self._batcher.submit(sql, args)

    async def _run_batch(self, sql: str, batch: Sequence[tuple]) -> list[asyncpg.Record]:
        """One round trip and one transaction: asyncpg pipelines the executions, then commits.
        Ordered by flow and run, so that concurrent batches lock shared rows in the same order."""
        order = sorted(range(len(batch)), key=lambda i: (batch[i][0], str(batch[i][1])))
        async with self.pool.acquire() as conn:
            rows = await conn.fetchmany(sql, [batch[i] for i in order])
        answers: list = [None] * len(batch)
        for i, row in zip(order, rows):
            answers[i] = row
        return answers

    # -- resolving path ids ------------------------------------------------------------------

    async def _run_number(self, conn, flow_id: str, run: str) -> int:
        column, value = _run_column(run)
        number = await conn.fetchval(f"SELECT run_number FROM runs WHERE flow_id = $1 AND {column} = $2",
                                     flow_id, value)
        if number is None:
            raise NotFound(f"run {flow_id}/{run} does not exist")
        return number

    # -- flows ---------------------------------------------------------------------------------

    async def create_flow(self, flow_id: str, user_name: str | None, tags: list, system_tags: list) -> dict:
        row = await self.pool.fetchrow(
            "INSERT INTO flows VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING *",
            flow_id, user_name, now_ms(), json.dumps(tags), json.dumps(system_tags))
        if row is None:
            raise Conflict(f"flow {flow_id} exists already")
        return flow_json(row)

    async def get_flow(self, flow_id: str) -> dict:
        row = await self.pool.fetchrow("SELECT * FROM flows WHERE flow_id = $1", flow_id)
        if row is None:
            raise NotFound(f"flow {flow_id} does not exist")
        return flow_json(row)

    async def list_flows(self, page: Page) -> tuple[list[dict], Any]:
        args: list = []
        where, tail = page.sql("flow_id", args)
        rows = await self.pool.fetch(f"SELECT * FROM flows WHERE true{where}{tail}", *args)
        rows, cursor = page.cut(rows, "flow_id")
        return [flow_json(r) for r in rows], cursor

    async def delete_flow(self, flow_id: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for table in CHILD_TABLES:
                await conn.execute(f"DELETE FROM {table} WHERE flow_id = $1", flow_id)
            if await conn.fetchval("DELETE FROM flows WHERE flow_id = $1 RETURNING 1", flow_id) is None:
                raise NotFound(f"flow {flow_id} does not exist")

    async def create_run(self, flow_id: str, user_name: str | None, tags: list, system_tags: list,
                         run_id: str | None = None, origin_run_id: str | None = None) -> dict:
        now = now_ms()
        # One statement: the flow registered if new, the run inserted (foreign keys are checked
        # at the end of the statement, when both rows exist).
        row = await self._write(
            "WITH flow AS (INSERT INTO flows VALUES ($1, $3, $4, '[]', '[]') ON CONFLICT DO NOTHING),"
            " new AS (INSERT INTO runs AS r (flow_id, run_id, user_name, ts_epoch, last_heartbeat_ts, tags,"
            " system_tags, origin_run_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
            f" RETURNING {RUN_COLUMNS}) SELECT new.* {ONE_ROW} new ON true",
            flow_id, run_id, user_name, now, now // 1000, json.dumps(tags), json.dumps(system_tags), origin_run_id)
        if row["flow_id"] is None:
            raise Conflict(f"run {flow_id}/{run_id} exists already")
        return run_json(row)
    async def get_run(self, flow_id: str, run: str) -> dict:
        column, value = _run_column(run)
        row = await self.pool.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.flow_id = $1 AND r.{column} = $2",
                                       flow_id, value)
        if row is None:
            raise NotFound(f"run {flow_id}/{run} does not exist")
        return run_json(row)

    async def list_runs(self, flow_id: str, page: Page, tags: Sequence[str] = (), status: str | None = None
                        ) -> tuple[list[dict], Any]:
        args: list = [flow_id]
        where = ""
        for tag in tags:  # user or system tag; the GIN indexes answer `@>`
            args.append(json.dumps([tag]))
            where += f" AND (r.tags @> ${len(args)}::jsonb OR r.system_tags @> ${len(args)}::jsonb)"
        if status is not None:
            args.append(status)
            where += f" AND {RUN_STATUS} = ${len(args)}"
        more, tail = page.sql("r.run_number", args, descending=True)
        rows = await self.pool.fetch(f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.flow_id = $1{where}{more}{tail}",
                                     *args)
        if not rows and not await self.pool.fetchval("SELECT 1 FROM flows WHERE flow_id = $1", flow_id):
            raise NotFound(f"flow {flow_id} does not exist")
        rows, cursor = page.cut(rows, "run_number")
        return [run_json(r) for r in rows], cursor

    async def finish_run(self, flow_id: str, run: str, status: str) -> dict:
        async with self.pool.acquire() as conn:
            number = await self._run_number(conn, flow_id, run)
            await conn.execute("UPDATE runs SET status = $3, finished_at = $4 WHERE flow_id = $1 AND run_number = $2",
                               flow_id, number, status, now_ms())
        return await self.get_run(flow_id, str(number))

    async def heartbeat_run(self, flow_id: str, run: str) -> None:
        column, value = _run_column(run)
        done = await self._write(
            f"WITH beat AS (UPDATE runs SET last_heartbeat_ts = $3 WHERE flow_id = $1 AND {column} = $2 RETURNING 1)"
            " SELECT count(*) FROM beat", flow_id, value, int(time.time()))
        if not done[0]:
            raise NotFound(f"run {flow_id}/{run} does not exist")
    async def mutate_tags(self, flow_id: str, run: str, add: list[str], remove: list[str]) -> dict:
        async with self.pool.acquire() as conn, conn.transaction():
            number = await self._run_number(conn, flow_id, run)
            row = await conn.fetchrow("SELECT tags, system_tags FROM runs WHERE flow_id = $1 AND run_number = $2"
                                      " FOR UPDATE", flow_id, number)
            tags, system_tags = tag_list(row["tags"]), set(tag_list(row["system_tags"]))
            if set(remove) & system_tags:
                raise Invalid(f"cannot remove system tags {sorted(set(remove) & system_tags)}", status=422)
            new = [t for t in tags if t not in set(remove)]
            new += [t for t in dict.fromkeys(add) if t not in system_tags and t not in new]
            if len(new) > len(tags):  # a run over the limit already may still shed tags, as in Metaflow
                check_count(len(new), f"run {flow_id}/{run} would have {{count}} tags", "tag_count")
            if new != tags:
                await conn.execute("UPDATE runs SET tags = $3 WHERE flow_id = $1 AND run_number = $2",
                                   flow_id, number, json.dumps(new))
        return {"tags": new, "system_tags": sorted(system_tags)}

    async def delete_run(self, flow_id: str, run: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            number = await self._run_number(conn, flow_id, run)
            for table in CHILD_TABLES:
                await conn.execute(f"DELETE FROM {table} WHERE flow_id = $1 AND run_number = $2", flow_id, number)

    async def create_step(self, flow_id: str, run: str, step: str, user_name: str | None) -> dict:
        column, value = _run_column(run)
        row = await self._write(
            f"WITH run AS (SELECT run_number, run_id, tags, system_tags FROM runs WHERE flow_id = $1 AND {column} = $2),"
            " new AS (INSERT INTO steps SELECT $1, run.run_number, $3, $4, $5 FROM run ON CONFLICT DO NOTHING"
            f" RETURNING *) SELECT new.*, run.run_id, run.tags, run.system_tags {ONE_ROW} (new CROSS JOIN run) ON true",
            flow_id, value, step, user_name, now_ms())
        if row["flow_id"] is None:
            await self.get_step(flow_id, run, step)  # 404 for a missing run
            raise Conflict(f"step {flow_id}/{run}/{step} exists already")
        return step_json(row)
    async def get_step(self, flow_id: str, run: str, step: str) -> dict:
        async with self.pool.acquire() as conn:
            number = await self._run_number(conn, flow_id, run)
            row = await conn.fetchrow(
                "SELECT s.*, r.run_id, r.tags, r.system_tags FROM steps s JOIN runs r USING (flow_id, run_number)"
                " WHERE s.flow_id = $1 AND s.run_number = $2 AND s.step_name = $3", flow_id, number, step)
        if row is None:
            raise NotFound(f"step {flow_id}/{run}/{step} does not exist")
        return step_json(row)

    async def list_steps(self, flow_id: str, run: str, page: Page) -> tuple[list[dict], Any]:
        async with self.pool.acquire() as conn:
            number = await self._run_number(conn, flow_id, run)
            args: list = [flow_id, number]
            where, tail = page.sql("s.ts_epoch", args, then="s.step_name")
            rows = await conn.fetch(
                "SELECT s.*, r.run_id, r.tags, r.system_tags FROM steps s JOIN runs r USING (flow_id, run_number)"
                f" WHERE s.flow_id = $1 AND s.run_number = $2{where}{tail}", *args)
        rows, cursor = page.cut(rows, "ts_epoch")
        return [step_json(r) for r in rows], cursor

    async def create_tasks(self, flow_id: str, run: str, step: str, user_name: str | None,
                           names: Sequence[str | None]) -> list[dict]:
        """Tasks of a step (the step registered if new), one per name; None: a number is allocated.
        One statement, so one round trip and one commit, however many tasks."""
        now = now_ms()
        column, value = _run_column(run)
        sql = (
            f"WITH run AS (SELECT run_number, run_id, tags, system_tags FROM runs WHERE flow_id = $1 AND {column} = $2),"
            " step AS (INSERT INTO steps SELECT $1, run.run_number, $3, $4, $5 FROM run ON CONFLICT DO NOTHING),"
            " beat AS (UPDATE runs SET last_heartbeat_ts = $6 WHERE flow_id = $1"
            "          AND run_number = (SELECT run_number FROM run) AND last_heartbeat_ts < $6),"
            " t AS (INSERT INTO tasks (flow_id, run_number, step_name, task_name, user_name, ts_epoch, last_heartbeat_ts)"
            "       SELECT $1, run.run_number, $3, name, $4, $5, $6 FROM run, unnest($7::text[]) AS name"
            "       ON CONFLICT DO NOTHING RETURNING *)"
            " SELECT t.flow_id, t.run_number, r.run_id, t.step_name, t.task_id, t.task_name, t.user_name, t.ts_epoch,"
            " t.last_heartbeat_ts, r.tags, r.system_tags, t.attempt, t.status, t.finished_at")
        args = (flow_id, value, step, user_name, now, now // 1000, list(names))
        if len(names) == 1:  # a task at a time, as Metaflow asks: batched with others' requests
            row = await self._write(sql + f" {ONE_ROW} (t CROSS JOIN run r) ON true", *args)
            rows = [row] if row["task_id"] is not None else []
        else:
            rows = await self.pool.fetch(sql + " FROM t, run r ORDER BY t.task_id", *args)
        if len(rows) != len(names):
            await self.get_run(flow_id, run)  # 404 for a missing run
            raise Conflict(f"a task of {flow_id}/{run}/{step} named {names} exists already")
        return [task_json(r) for r in rows]
    async def get_task(self, flow_id: str, run: str, step: str, task: str) -> dict:
        async with self.pool.acquire() as conn:
            number, task_id = await self._task_of(conn, flow_id, run, step, task)
            row = await conn.fetchrow(f"SELECT {TASK_COLUMNS} FROM tasks t JOIN runs r USING (flow_id, run_number)"
                                      " WHERE t.flow_id = $1 AND t.run_number = $2 AND t.step_name = $3"
                                      " AND t.task_id = $4", flow_id, number, step, task_id)
        return task_json(row)

    async def list_tasks(self, flow_id: str, run: str, step: str | None, page: Page) -> tuple[list[dict], Any]:
        async with self.pool.acquire() as conn:
            number = await self._run_number(conn, flow_id, run)
            args: list = [flow_id, number]
            where = ""
            if step is not None:
                args.append(step)
                where = " AND t.step_name = $3"
                if not await conn.fetchval("SELECT 1 FROM steps WHERE flow_id = $1 AND run_number = $2"
                                           " AND step_name = $3", *args):
                    raise NotFound(f"step {flow_id}/{run}/{step} does not exist")
            more, tail = page.sql("t.task_id", args)
            rows = await conn.fetch(f"SELECT {TASK_COLUMNS} FROM tasks t JOIN runs r USING (flow_id, run_number)"
                                    f" WHERE t.flow_id = $1 AND t.run_number = $2{where}{more}{tail}", *args)
        rows, cursor = page.cut(rows, "task_id")
        return [task_json(r) for r in rows], cursor

    async def filtered_tasks(self, flow_id: str, run: str, step: str, field: str | None, pattern: str | None
                             ) -> list[str]:
        async with self.pool.acquire() as conn:
            number = await self._run_number(conn, flow_id, run)
            args: list = [flow_id, number, step]
            where = ""
            if field:
                args.append(field)
                where += f" AND m.field_name = ${len(args)}"
            if pattern:
                args.append(pattern)
                where += f" AND m.value ~ ${len(args)}"
            try:
                rows = await conn.fetch(
                    "SELECT DISTINCT t.task_id, t.task_name, r.run_id FROM metadata m"
                    " JOIN tasks t USING (flow_id, run_number, step_name, task_id) JOIN runs r USING (flow_id, run_number)"
                    f" WHERE m.flow_id = $1 AND m.run_number = $2 AND m.step_name = $3{where} ORDER BY t.task_id", *args)
            except asyncpg.InvalidRegularExpressionError as exc:
                raise Invalid(f"the pattern is not a valid regular expression: {exc}") from None
        return ["/".join([flow_id, str(exposed_id(number, r["run_id"])), step,
                          str(exposed_id(r["task_id"], r["task_name"]))]) for r in rows]

    async def heartbeat_task(self, flow_id: str, run: str, step: str, task: str) -> None:
        """The task's heartbeat, and its run's: one statement."""
        column, value = _run_column(run)
        task_column, task_value = _task_column(task)
        beat = await self._write(
            f"WITH run AS (SELECT run_number FROM runs WHERE flow_id = $1 AND {column} = $2),"
            " t AS (UPDATE tasks SET last_heartbeat_ts = $5 WHERE flow_id = $1"
            f"      AND run_number = (SELECT run_number FROM run) AND step_name = $3 AND {task_column} = $4"
            "       RETURNING run_number),"
            " r AS (UPDATE runs SET last_heartbeat_ts = $5 WHERE flow_id = $1 AND last_heartbeat_ts < $5"
            "       AND run_number = (SELECT run_number FROM run) AND EXISTS (SELECT FROM t))"
            " SELECT count(*) FROM t", flow_id, value, step, task_value, int(time.time()))
        if not beat[0]:
            raise NotFound(f"task {flow_id}/{run}/{step}/{task} does not exist")

    async def _scope(self, conn, flow_id: str, run: str, step: str | None,
                     task: str | None) -> tuple[int, int | None]:
        """(run number, task id or None): what a listing of a run's or a task's records filters by."""
        if task is None:
            return await self._run_number(conn, flow_id, run), None
        return await self._task_of(conn, flow_id, run, step, task)  # type: ignore[arg-type]

    async def _task_of(self, conn, flow_id: str, run: str, step: str, task: str) -> tuple[int, int]:
        """(run number, task id) of a task named by the path, in one query."""
        row = await conn.fetchrow(_task_by_path(run, task), flow_id, _run_column(run)[1], step,
                                  _task_column(task)[1])
        if row is None:
            raise NotFound(f"task {flow_id}/{run}/{step}/{task} does not exist")
        return row["run_number"], row["task_id"]

    async def add_metadata(self, flow_id: str, run: str, step: str, task: str, fields: Sequence[dict],
                           conn: Any = None) -> int:
        """Insert the fields, and fold what they say into the task's and run's state, in one
        statement: atomic, and one round trip."""
        now = now_ms()
        change = AttemptChange.of(fields, step, now)
        found = await self._write(
            f"WITH task AS ({_task_by_path(run, task)}),"
            " m AS (INSERT INTO metadata (flow_id, run_number, step_name, task_id, field_name, value, type, user_name,"
            "       ts_epoch, tags, system_tags) SELECT $1, task.run_number, $3, task.task_id, f, v, ty, u, $5,"
            "       tg::jsonb, st::jsonb FROM task, unnest($6::text[], $7::text[], $8::text[], $9::text[],"
            "       $10::text[], $11::text[]) AS x(f, v, ty, u, tg, st)),"
            " state AS (UPDATE tasks t SET attempt = greatest(t.attempt, $12), status = $13, finished_at = $14"
            "       WHERE $13::text IS NOT NULL AND t.flow_id = $1 AND t.run_number = (SELECT run_number FROM task)"
            "       AND t.step_name = $3 AND t.task_id = (SELECT task_id FROM task)),"
            " outcome AS (UPDATE runs r SET has_failure = r.has_failure OR $15,"
            "       status = CASE WHEN $16 AND r.status = 'running' THEN 'succeeded' ELSE r.status END,"
            "       finished_at = CASE WHEN $16 AND r.status = 'running' THEN $5 ELSE r.finished_at END"
            "       WHERE r.flow_id = $1 AND r.run_number = (SELECT run_number FROM task)"
            "       AND ($15 AND NOT r.has_failure OR $16 AND r.status = 'running'))"
            " SELECT count(*) FROM task",
            flow_id, _run_column(run)[1], step, _task_column(task)[1], now,
            [f["field_name"] for f in fields], [f["value"] for f in fields], [f["type"] for f in fields],
            [f.get("user_name") for f in fields], [json.dumps(f.get("tags") or []) for f in fields],
            [json.dumps(f.get("system_tags") or []) for f in fields],
            change.attempt, change.status, change.finished_at, change.run_failed, change.run_succeeded, conn=conn)
        if not found[0]:
            raise NotFound(f"task {flow_id}/{run}/{step}/{task} does not exist")
        return len(fields)

    async def add_artifacts(self, flow_id: str, run: str, step: str, task: str, artifacts: Sequence[dict],
                            conn: Any = None) -> int:
        """One statement for all of them; an artifact recorded already (a retried request) stays."""
        columns = ("attempt_id", "name", "location", "ds_type", "sha", "type", "content_type", "size", "user_name")
        found = await self._write(
            f"WITH task AS ({_task_by_path(run, task)}),"
            " a AS (INSERT INTO artifacts SELECT $1, task.run_number, $3, task.task_id, a, n, l, d, sh, ty, ct, sz, u,"
            "       $5, tg::jsonb, st::jsonb FROM task, unnest($6::int[], $7::text[], $8::text[], $9::text[],"
            "       $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], $15::text[], $16::text[])"
            "       AS x(a, n, l, d, sh, ty, ct, sz, u, tg, st) ON CONFLICT DO NOTHING)"
            " SELECT count(*) FROM task",
            flow_id, _run_column(run)[1], step, _task_column(task)[1], now_ms(),
            *([a.get(c) for a in artifacts] for c in columns),
            [json.dumps(a.get("tags") or []) for a in artifacts],
            [json.dumps(a.get("system_tags") or []) for a in artifacts], conn=conn)
        if not found[0]:
            raise NotFound(f"task {flow_id}/{run}/{step}/{task} does not exist")
        return len(artifacts)

    async def record_attempts(self, flow_id: str, run: str, events: Sequence[dict]) -> int:
        """Many tasks' attempt events (their fields and artifacts) in one transaction: how Flow's
        runtime records a batch of short tasks with one request."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._run_number(conn, flow_id, run)  # a missing run is named as such
            for event in events:
                step, task = event["step_name"], event["task_id"]
                if event["artifacts"]:
                    await self.add_artifacts(flow_id, run, step, task, event["artifacts"], conn)
                await self.add_metadata(flow_id, run, step, task, event["metadata"], conn)
        return len(events)

    async def list_metadata(self, flow_id: str, run: str, step: str | None = None, task: str | None = None,
                            page: Page | None = None) -> tuple[list[dict], Any]:
        page = page or Page()
        async with self.pool.acquire() as conn:
            number, task_id = await self._scope(conn, flow_id, run, step, task)
            args: list = [flow_id, number]
            where = ""
            if task_id is not None:
                args += [step, task_id]
                where = " AND m.step_name = $3 AND m.task_id = $4"
            more, tail = page.sql("m.id", args)
            rows = await conn.fetch(
                "SELECT m.*, t.task_name, r.run_id FROM metadata m JOIN tasks t USING (flow_id, run_number, step_name,"
                " task_id) JOIN runs r USING (flow_id, run_number)"
                f" WHERE m.flow_id = $1 AND m.run_number = $2{where}{more}{tail}", *args)
        rows, cursor = page.cut(rows, "id")
        return [metadata_json(r) for r in rows], cursor

    async def list_attempts(self, flow_id: str, run: str) -> list[dict]:
        """Every attempt of the run's tasks with its start and end, from the fields that open
        (``attempt``) and close (``attempt_ok``) it, in one statement: what a timeline of
        thousands of tasks needs without a request per task."""
        async with self.pool.acquire() as conn:
            number = await self._run_number(conn, flow_id, run)
            rows = await conn.fetch(ATTEMPTS_OF_RUN, flow_id, number)
        return [attempt_json(r) for r in rows]

    async def list_artifacts(self, flow_id: str, run: str, step: str | None = None, task: str | None = None,
                             attempt: int | None = None, name: str | None = None) -> list[dict]:
        """Artifacts of a run, a step or a task: of one attempt, or of each task's latest one."""
        async with self.pool.acquire() as conn:
            number, task_id = await self._scope(conn, flow_id, run, step, task)
            args: list = [flow_id, number]
            where = ""
            if step is not None:
                args.append(step)
                where += " AND a.step_name = $3"
            if task_id is not None:
                args.append(task_id)
                where += " AND a.task_id = $4"
            if attempt is not None:
                args.append(attempt)
                where += f" AND a.attempt_id = ${len(args)}"
            else:  # each task's latest attempt that stored artifacts
                where += (" AND a.attempt_id = (SELECT max(l.attempt_id) FROM artifacts l WHERE l.flow_id = a.flow_id"
                          " AND l.run_number = a.run_number AND l.step_name = a.step_name AND l.task_id = a.task_id)")
            if name is not None:
                args.append(name)
                where += f" AND a.name = ${len(args)}"
            rows = await conn.fetch(
                f"SELECT {ARTIFACT_COLUMNS} FROM artifacts a JOIN tasks t USING (flow_id, run_number, step_name,"
                " task_id) JOIN runs r ON r.flow_id = a.flow_id AND r.run_number = a.run_number"
                f" WHERE a.flow_id = $1 AND a.run_number = $2{where} ORDER BY a.step_name, a.task_id, a.name", *args)
        return [artifact_json(r) for r in rows]
