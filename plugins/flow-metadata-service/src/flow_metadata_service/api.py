"""The HTTP API: metaflow-service's routes and JSON shapes, plus a few of Flow's own.

Upstream routes keep upstream behaviour where Metaflow's client depends on it (a heartbeat
answers a JSON-encoded string; creates answer 200; a missing object is 404, never 500).
Flow's additions: bulk task creation (``POST …/steps/{step}/tasks``), many tasks' attempt
records in one transaction (``POST …/runs/{run}/attempts``), and every attempt of a run
with its start and end in one answer (``GET …/runs/{run}/attempts``), an explicit run outcome
(``POST …/runs/{run}/finish``), ``?tag=``/``?status=`` filters and ``_limit``/
``_cursor`` pages on every listing, ``DELETE`` of runs and flows, ``/health``.

Bad input is always a 4xx with ``{"message": …}``; a request over one of the limits
(`limits`) is a 413 or 422 that names the limit and its value; a database that is down is
a 503, which Metaflow's client and Flow's both retry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

from .ids import is_number
from .limits import MAX_NAME, OverLimit, check_count, check_length
from .paging import Page
from .router import Reply, Request, json_reply, limit_reply, message_reply, text_reply
from .store import HEARTBEAT_INTERVAL, Conflict, Invalid, MetadataStore, NotFound

#: What ``/ping`` reports in its METADATA_SERVICE_VERSION header. Metaflow's client turns on
#: heartbeats at 2.0.4, attempt reads at 2.0.6 and tag changes at 2.3.0; from 2.6.1 newer
#: clients expect upstream's own pagination protocol, which this service does not speak.
COMPATIBLE_VERSION = "2.5.0"
API_VERSION = 1
#: Additions to API version 1 a client may look for (``FLOW_METADATA_API_REVISION`` on ``/ping``;
#: a service without the header is revision 0): 1 adds ``GET …/runs/{run}/attempts``.
API_REVISION = 1
MAX_PAGE = 10_000
NAME = re.compile(rf"^[^/\x00]{{1,{MAX_NAME}}}$")


class BadRequest(Exception):
    """The request itself is malformed (HTTP 400)."""


# -- reading requests -------------------------------------------------------------------------


def _body(request: Request, kind: type = dict) -> Any:
    raw = request.body
    if not raw.strip():
        return kind()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, kind):
        raise BadRequest(f"the request body must be a JSON {'object' if kind is dict else 'array'}")
    return body


def _path(request: Request, name: str) -> str:
    value = request.path_params[name]
    if not NAME.match(value):
        raise BadRequest(f"'{name}' must be 1 to {MAX_NAME} characters, without '/' or NUL")
    return value


def _text(body: dict, key: str, required: bool = False, default: Any = None, limit: str = "name_length") -> Any:
    value = body.get(key, default)
    if value is None:
        if required:
            raise BadRequest(f"'{key}' is required")
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or "\x00" in value:
        raise BadRequest(f"'{key}' must be a string")
    return check_length(value, f"'{key}'", limit)


def _tags(values: list, where: str) -> list[str]:
    """Tags within their limits, each once, in their order."""
    check_count(len(values), where + " holds {count} tags", "tag_count")
    for tag in values:
        check_length(tag, f"a tag in {where}", "tag_length")
    return list(dict.fromkeys(values))


def _names(body: dict, key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v and "\x00" not in v for v in value):
        raise BadRequest(f"'{key}' must be a list of non-empty strings")
    return _tags(value, f"'{key}'")


def _int(value: Any, what: str, low: int = 0, high: int = 2**31 - 1) -> int:
    if isinstance(value, str) and is_number(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"'{what}' must be an integer from {low} to {high}")
    return value


def _page(request: Request, cursor_type: type = int) -> Page:
    query = request.query_params
    limit = _int(query["_limit"], "_limit", 1, MAX_PAGE) if "_limit" in query else None
    cursor = None
    if "_cursor" in query:
        try:
            cursor = cursor_type(query["_cursor"])
        except ValueError:
            raise BadRequest("'_cursor' is not a cursor this listing returned") from None
    return Page(limit, cursor)


def _listing(rows: list, cursor: Any) -> Reply:
    return json_reply(rows, headers={"X-Next-Cursor": str(cursor)} if cursor is not None else None)


def _field(item: Any) -> dict:
    if not isinstance(item, dict):
        raise BadRequest("each metadata entry must be a JSON object")
    name = _text(item, "field_name", required=True)
    value = item.get("value")
    if not isinstance(value, str):  # Metaflow sends some values (foreach-stack) as JSON arrays
        value = json.dumps(value)
    if "\x00" in value:
        raise BadRequest("'value' must not contain NUL characters")
    check_length(value, f"the value of metadata field '{name}'", "value_length")
    return {"field_name": name, "value": value,
            "type": _text(item, "type", default=""), "user_name": _text(item, "user_name"),
            "tags": _names(item, "tags"), "system_tags": _names(item, "system_tags")}


def _artifact(item: Any) -> dict:
    if not isinstance(item, dict):
        raise BadRequest("each artifact must be a JSON object")
    size = item.get("size")
    return {"name": _text(item, "name", required=True), "attempt_id": _int(item.get("attempt_id", 0), "attempt_id"),
            "location": _text(item, "location", required=True, limit="text_length"),
            "ds_type": _text(item, "ds_type", required=True),
            "sha": _text(item, "sha", required=True), "type": _text(item, "type", default="", limit="text_length"),
            "content_type": _text(item, "content_type", default=""),
            "size": None if size is None else _int(size, "size", 0, 2**63 - 1),
            "user_name": _text(item, "user_name"), "tags": _names(item, "tags"),
            "system_tags": _names(item, "system_tags")}


# -- the routes -----------------------------------------------------------------------------------

Handler = Callable[[Request, MetadataStore], Awaitable[Reply]]
ROUTES: list[tuple[str, str, Handler]] = []


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((method, path, handler))
        return handler
    return register


FLOW = "/flows/{flow_id}"
RUN = FLOW + "/runs/{run}"
STEP = RUN + "/steps/{step}"
TASK = STEP + "/tasks/{task}"


def _ids(request: Request, *names: str) -> list[str]:
    return [_path(request, n) for n in names]


@route("GET", "/ping")
async def ping(request, store):
    return text_reply("pong", headers={"METADATA_SERVICE_VERSION": COMPATIBLE_VERSION,
                                       "FLOW_METADATA_API": str(API_VERSION),
                                       "FLOW_METADATA_API_REVISION": str(API_REVISION)})


@route("GET", "/version")
async def version(request, store):
    return text_reply(COMPATIBLE_VERSION)


@route("GET", "/flows")
async def list_flows(request, store):
    return _listing(*await store.list_flows(_page(request, str)))


@route("GET", FLOW)
async def get_flow(request, store):
    return json_reply(await store.get_flow(*_ids(request, "flow_id")))


@route("POST", FLOW)
async def create_flow(request, store):
    body = _body(request)
    return json_reply(await store.create_flow(_path(request, "flow_id"), _text(body, "user_name"),
                                              _names(body, "tags"), _names(body, "system_tags")))


@route("DELETE", FLOW)
async def delete_flow(request, store):
    await store.delete_flow(*_ids(request, "flow_id"))
    return json_reply({"deleted": request.path_params["flow_id"]})


@route("GET", FLOW + "/runs")
async def list_runs(request, store):
    status = request.query_params.get("status")
    if status not in (None, "running", "succeeded", "failed", "crashed"):
        raise BadRequest("'status' must be one of running, succeeded, failed, crashed")
    tags = _tags(request.query_params.getlist("tag"), "the query")
    return _listing(*await store.list_runs(_path(request, "flow_id"), _page(request), tags, status))


@route("POST", FLOW + "/run")
async def create_run(request, store):
    body = _body(request)
    run_id = _text(body, "run_number")
    if run_id is not None and (is_number(run_id) or not NAME.match(run_id)):
        raise BadRequest("a client-chosen 'run_number' must be a name, not a number")
    origin = _text(body, "origin_run_id")
    return json_reply(await store.create_run(_path(request, "flow_id"), _text(body, "user_name"),
                                             _names(body, "tags"), _names(body, "system_tags"), run_id, origin))


@route("GET", RUN)
async def get_run(request, store):
    return json_reply(await store.get_run(*_ids(request, "flow_id", "run")))


@route("DELETE", RUN)
async def delete_run(request, store):
    await store.delete_run(*_ids(request, "flow_id", "run"))
    return json_reply({"deleted": f"{request.path_params['flow_id']}/{request.path_params['run']}"})


@route("POST", RUN + "/finish")
async def finish_run(request, store):
    status = _text(_body(request), "status", required=True)
    if status not in ("succeeded", "failed"):
        raise BadRequest("'status' must be 'succeeded' or 'failed'")
    return json_reply(await store.finish_run(*_ids(request, "flow_id", "run"), status))


def _heartbeat_answer() -> Reply:
    # Metaflow's client decodes the body twice: it must be a JSON string holding JSON.
    return json_reply(json.dumps({"wait_time_in_seconds": HEARTBEAT_INTERVAL}))


@route("POST", RUN + "/heartbeat")
async def heartbeat_run(request, store):
    await store.heartbeat_run(*_ids(request, "flow_id", "run"))
    return _heartbeat_answer()


@route("PATCH", RUN + "/tag/mutate")
async def mutate_tags(request, store):
    body = _body(request)
    add, remove = _names(body, "tags_to_add"), _names(body, "tags_to_remove")
    return json_reply(await store.mutate_tags(*_ids(request, "flow_id", "run"), add, remove))


def _count_entries(metadata: int, artifacts: int) -> None:
    check_count(metadata, "the request carries {count} metadata entries", "metadata_per_request")
    check_count(artifacts, "the request carries {count} artifacts", "artifacts_per_request")


@route("POST", RUN + "/attempts")
async def record_attempts(request, store):
    items = _body(request, list)
    check_count(len(items), "the request carries {count} attempt events", "events_per_request")
    for item in items:
        if not isinstance(item, dict):
            raise BadRequest("each attempt event must be a JSON object")
        if not isinstance(item.get("metadata", []), list) or not isinstance(item.get("artifacts", []), list):
            raise BadRequest("'metadata' and 'artifacts' must be lists")
    _count_entries(sum(len(item.get("metadata", [])) for item in items),
                   sum(len(item.get("artifacts", [])) for item in items))
    events = []
    for item in items:
        step, task = _text(item, "step_name", required=True), _text(item, "task_id", required=True)
        if not NAME.match(step) or not NAME.match(task):
            raise BadRequest("'step_name' and 'task_id' must be names")
        events.append({"step_name": step, "task_id": task,
                       "metadata": [_field(f) for f in item.get("metadata", [])],
                       "artifacts": [_artifact(a) for a in item.get("artifacts", [])]})
    recorded = await store.record_attempts(*_ids(request, "flow_id", "run"), events)
    return json_reply({"attempts_recorded": recorded})


@route("GET", RUN + "/attempts")
async def list_attempts(request, store):
    return json_reply(await store.list_attempts(*_ids(request, "flow_id", "run")))


@route("GET", RUN + "/steps")
async def list_steps(request, store):
    return _listing(*await store.list_steps(*_ids(request, "flow_id", "run"), _page(request)))


@route("GET", RUN + "/metadata")
async def run_metadata(request, store):
    return _listing(*await store.list_metadata(*_ids(request, "flow_id", "run"), page=_page(request)))


@route("GET", RUN + "/artifacts")
async def run_artifacts(request, store):
    return json_reply(await store.list_artifacts(*_ids(request, "flow_id", "run")))


@route("GET", STEP)
async def get_step(request, store):
    return json_reply(await store.get_step(*_ids(request, "flow_id", "run", "step")))


@route("POST", STEP + "/step")
async def create_step(request, store):
    body = _body(request)
    return json_reply(await store.create_step(*_ids(request, "flow_id", "run", "step"), _text(body, "user_name")))


@route("GET", STEP + "/artifacts")
async def step_artifacts(request, store):
    return json_reply(await store.list_artifacts(*_ids(request, "flow_id", "run", "step")))


@route("GET", STEP + "/tasks")
async def list_tasks(request, store):
    return _listing(*await store.list_tasks(*_ids(request, "flow_id", "run", "step"), _page(request)))


@route("POST", STEP + "/task")
async def create_task(request, store):
    body = _body(request)
    name = _text(body, "task_id")
    if name is not None and (is_number(name) or not NAME.match(name)):
        raise BadRequest("a client-chosen 'task_id' must be a name, not a number")
    tasks = await store.create_tasks(*_ids(request, "flow_id", "run", "step"), _text(body, "user_name"), [name])
    return json_reply(tasks[0])


@route("POST", STEP + "/tasks")
async def create_tasks(request, store):
    body = _body(request)
    count = _int(body.get("count", 1), "count", 1, 100_000)
    return json_reply(await store.create_tasks(*_ids(request, "flow_id", "run", "step"),
                                               _text(body, "user_name"), [None] * count))


@route("GET", STEP + "/filtered_tasks")
async def filtered_tasks(request, store):
    query = request.query_params
    return json_reply(await store.filtered_tasks(*_ids(request, "flow_id", "run", "step"),
                                                 query.get("metadata_field_name") or None,
                                                 query.get("pattern") or None))


@route("GET", TASK)
async def get_task(request, store):
    return json_reply(await store.get_task(*_ids(request, "flow_id", "run", "step", "task")))


@route("POST", TASK + "/heartbeat")
async def heartbeat_task(request, store):
    await store.heartbeat_task(*_ids(request, "flow_id", "run", "step", "task"))
    return _heartbeat_answer()


@route("GET", TASK + "/metadata")
async def task_metadata(request, store):
    return _listing(*await store.list_metadata(*_ids(request, "flow_id", "run", "step", "task"), _page(request)))


@route("POST", TASK + "/metadata")
async def add_metadata(request, store):
    items = _body(request, list)
    _count_entries(len(items), 0)
    fields = [_field(item) for item in items]
    created = await store.add_metadata(*_ids(request, "flow_id", "run", "step", "task"), fields)
    return json_reply({"metadata_created": created})


@route("POST", TASK + "/artifact")
async def add_artifacts(request, store):
    items = _body(request, list)
    _count_entries(0, len(items))
    artifacts = [_artifact(item) for item in items]
    created = await store.add_artifacts(*_ids(request, "flow_id", "run", "step", "task"), artifacts)
    return json_reply({"artifacts_created": created})


@route("GET", TASK + "/artifacts")
async def task_artifacts(request, store):
    return json_reply(await store.list_artifacts(*_ids(request, "flow_id", "run", "step", "task")))


@route("GET", TASK + "/attempt/{attempt}/artifacts")
async def attempt_artifacts(request, store):
    attempt = _int(request.path_params["attempt"], "attempt")
    return json_reply(await store.list_artifacts(*_ids(request, "flow_id", "run", "step", "task"), attempt))


async def _one_artifact(request: Request, store: MetadataStore, attempt: int | None) -> Reply:
    name = _path(request, "name")
    found = await store.list_artifacts(*_ids(request, "flow_id", "run", "step", "task"), attempt, name)
    if not found:
        raise NotFound(f"artifact {name} does not exist")
    return json_reply(found[0])


@route("GET", TASK + "/artifacts/{name}")
async def get_artifact(request, store):
    return await _one_artifact(request, store, None)


@route("GET", TASK + "/artifacts/{name}/attempt/{attempt}")
async def get_artifact_attempt(request, store):
    return await _one_artifact(request, store, _int(request.path_params["attempt"], "attempt"))


# -- errors -----------------------------------------------------------------------------------------


def wrap(handler: Handler, app_state: Any) -> Callable[[Request], Awaitable[Reply]]:
    """Turn every failure into a status and a sentence: 4xx for the caller's mistakes, 503
    while the database is unreachable (clients retry it), 500 only for a bug of ours."""

    async def endpoint(request: Request) -> Reply:
        try:
            return await handler(request, app_state.store)
        except BadRequest as exc:
            return message_reply(400, str(exc))
        except OverLimit as exc:
            return limit_reply(exc)
        except Invalid as exc:
            return message_reply(exc.status, str(exc))
        except NotFound as exc:
            return message_reply(404, str(exc))
        except Conflict as exc:
            return message_reply(409, str(exc))
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            return message_reply(400, f"the database refused the request: {exc}")
        except asyncpg.SerializationError:
            return message_reply(409, "a concurrent change conflicted with this one; retry")
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                asyncpg.InterfaceError, asyncpg.AdminShutdownError, TimeoutError) as exc:
            return message_reply(503, f"the database is unavailable ({type(exc).__name__}); retry shortly")

    endpoint.__name__ = handler.__name__
    return endpoint


def endpoints(app_state: Any) -> list[tuple[str, str, Callable[[Request], Awaitable[Reply]]]]:
    """(method, path template, endpoint) for every route, ready for the router."""
    return [(method, path, wrap(handler, app_state)) for method, path, handler in ROUTES]
