"""Flow's metadata backend on the service: `ServiceMetadata`, selected by
``METAFLOW_DEFAULT_METADATA=service`` with ``METAFLOW_SERVICE_URL``.

A task's life costs at most three requests: its id (allocated with its step's other tasks
in one request), its start and its end; the local runtime records the starts and ends of
many short tasks in one request (`batch`). Runs and tasks an orchestrator names itself are
created with the service's ``run_number``/``task_id`` body fields; its 409 for a name taken
already is what makes a retried creation find the first one.
Every request has a timeout, and connection errors and 5xx answers are retried with capped
exponential back-off, so a service or database restart in the middle of a run costs a pause,
not the run. Batches are cut to stay within the service's per-request limits (`limits`); a
request the service still refuses as over a limit is a `LimitExceeded` naming it.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

import urllib3
from flow_core.plugin_api import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    ArtifactRecord,
    AttemptRecord,
    FlowRecord,
    MetadataBackend,
    MetadataField,
    NotFound,
    RunRecord,
    Settings,
    StepRecord,
    TaskRecord,
    close_superseded,
)

from .errors import LimitExceeded, ServiceError
from .ids import attempt_from_tags, is_number
from .limits import MAX_ARTIFACTS, MAX_BODY, MAX_EVENTS, MAX_METADATA

FLOW_API_HEADER = "FLOW_METADATA_API"
FLOW_API_VERSION = "1"
#: The header that says which additions to version 1 the service has (absent: none).
FLOW_API_REVISION_HEADER = "FLOW_METADATA_API_REVISION"
#: The revision that answers ``GET …/runs/{run}/attempts``; an older service gets a query per task.
ATTEMPTS_REVISION = 1
TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)
RETRY_FOR_SECONDS = 60.0  # how long a request keeps retrying through outages (FLOW_SERVICE_RETRY_SECONDS)
MAX_BACKOFF = 4.0
RETRIED_STATUSES = {500, 502, 503, 504}
BOOKKEEPING = "flow-attempt"  # the type of the fields that start and end an attempt


class ServiceMetadata(MetadataBackend):
    name = "service"

    def __init__(self, url: str, auth_key: str | None = None, user: str | None = None):
        self.url = url.rstrip("/")
        self.user = user
        self.headers = {"Content-Type": "application/json"}
        if auth_key:
            self.headers["Authorization"] = f"Bearer {auth_key}"
        self._pool: urllib3.PoolManager | None = None
        self._pool_pid = 0
        self._checked = False
        self._revision = 0
        self._batches = threading.local()  # a batch belongs to the thread that opened it
        self.retry_for = float(os.environ.get("FLOW_SERVICE_RETRY_SECONDS", RETRY_FOR_SECONDS))

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceMetadata:
        url = settings.require("METAFLOW_SERVICE_URL", "set it to the metadata service's address, "
                                                       "for example http://metadata.internal:8080")
        return cls(url, settings.get("METAFLOW_SERVICE_AUTH_KEY"), settings.user)

    def describe(self) -> str:
        return f"service@{self.url}"

    # -- HTTP -------------------------------------------------------------------------------------

    def _http(self) -> urllib3.PoolManager:
        if self._pool is None or self._pool_pid != os.getpid():  # sockets must not cross a fork
            self._pool = urllib3.PoolManager(maxsize=8, timeout=TIMEOUT, retries=False)
            self._pool_pid = os.getpid()
        return self._pool

    def _send(self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None
              ) -> urllib3.BaseHTTPResponse:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        deadline = time.monotonic() + self.retry_for
        attempt = 0
        while True:
            try:
                response = self._http().request(method, url, body=data, headers=self.headers)
                if response.status not in RETRIED_STATUSES or time.monotonic() > deadline:
                    return response
            except urllib3.exceptions.HTTPError as exc:
                if time.monotonic() > deadline:
                    raise ServiceError(f"cannot reach the metadata service at {self.url} ({_reason(exc)}); "
                                       "check METAFLOW_SERVICE_URL and that the service is running") from None
            attempt += 1
            time.sleep(min(MAX_BACKOFF, 0.1 * 2 ** attempt) * random.uniform(0.8, 1.2))

    def _request(self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None,
                 missing_ok: bool = False, accept: Collection[int] = ()) -> urllib3.BaseHTTPResponse | None:
        """The service's answer, None for a 404 when ``missing_ok``; an error status in
        ``accept`` is answered for the caller to read; any other error raises."""
        self._check_version()
        response = self._send(method, path, body, query)
        if response.status in accept:
            return response
        if response.status == 404 and missing_ok:
            return None
        if response.status in (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.UNPROCESSABLE_ENTITY):
            over = _over_limit(response)
            if over is not None:
                reason, limit, maximum = over
                raise LimitExceeded(f"the metadata service at {self.url} refused {method} {path} because {reason}",
                                    limit, maximum)
        if response.status >= 300:
            raise ServiceError(f"the metadata service at {self.url} refused {method} {path} "
                               f"({response.status}): {_message(response)}")
        return response

    def _call(self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None,
              missing_ok: bool = False) -> Any:
        response = self._request(method, path, body, query, missing_ok)
        return None if response is None else response.json()

    def _check_version(self) -> None:
        if self._checked:
            return
        response = self._send("GET", "/ping")
        if response.status == 401:
            raise ServiceError(f"the metadata service at {self.url} refused the credentials; "
                               "set METAFLOW_SERVICE_AUTH_KEY to its key")
        if response.status >= 300:
            raise ServiceError(f"the metadata service at {self.url} answered /ping with {response.status}")
        if response.headers.get(FLOW_API_HEADER) != FLOW_API_VERSION:
            raise ServiceError(
                f"the metadata service at {self.url} does not speak Flow's metadata API version {FLOW_API_VERSION} "
                f"(it says {response.headers.get(FLOW_API_HEADER) or 'nothing'}); run flow-metadata-service "
                "of the same release as this client")
        revision = response.headers.get(FLOW_API_REVISION_HEADER, "0")
        self._revision = int(revision) if is_number(revision) else 0
        self._checked = True

    @staticmethod
    def _quote(*parts: str) -> str:
        return "".join("/" + urllib.parse.quote(p, safe="") for p in parts)

    # -- write side -------------------------------------------------------------------------------

    def new_run(self, flow_name: str, user: str, tags: Iterable[str] = (), system_tags: Iterable[str] = (),
                origin_run_id: str | None = None, run_id: str | None = None) -> RunRecord:
        body = {"user_name": user, "tags": list(tags), "system_tags": list(system_tags),
                "origin_run_id": origin_run_id}
        if run_id is None:
            return _run(self._call("POST", self._quote("flows", flow_name, "run"), body))
        body["run_number"] = self.check_name("run", run_id)
        response = self._request("POST", self._quote("flows", flow_name, "run"), body, accept=[HTTPStatus.CONFLICT])
        if response is not None and response.status != HTTPStatus.CONFLICT:
            return _run(response.json())
        existing = self.get_run(flow_name, run_id)  # taken already: by this run, on a retry
        if existing is None:
            raise ServiceError(f"the metadata service at {self.url} says run {flow_name}/{run_id} exists "
                               "but does not return it")
        return existing

    def finish_run(self, flow_name: str, run_id: str, succeeded: bool) -> None:
        self._call("POST", self._quote("flows", flow_name, "runs", run_id, "finish"),
                   {"status": SUCCEEDED if succeeded else FAILED})

    def heartbeat_run(self, flow_name: str, run_id: str) -> None:
        self._call("POST", self._quote("flows", flow_name, "runs", run_id, "heartbeat"), {})

    def new_tasks(self, flow_name: str, run_id: str, step_name: str, count: int = 1) -> list[str]:
        tasks = self._call("POST", self._quote("flows", flow_name, "runs", run_id, "steps", step_name, "tasks"),
                           {"count": count, "user_name": self.user})
        return [str(t["task_id"]) for t in tasks]

    def register_tasks(self, flow_name: str, run_id: str, step_name: str, task_ids: Sequence[str]) -> None:
        """One request per name (the service creates named tasks one at a time, batching
        concurrent requests); its 409 says the task exists, as it does on a retry."""
        names = list(dict.fromkeys(self.check_name("task", t) for t in task_ids))
        step = self._quote("flows", flow_name, "runs", run_id, "steps", step_name)
        requests = [(step + "/task", {"task_id": n, "user_name": self.user}) for n in names]
        for path, body in requests or [(step + "/step", {"user_name": self.user})]:
            response = self._request("POST", path, body, accept=[HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT])
            if response is not None and response.status == HTTPStatus.NOT_FOUND:
                raise NotFound(f"run {flow_name}/{run_id} does not exist in {self.describe()}")

    def _task_path(self, flow_name: str, run_id: str, step_name: str, task_id: str, *rest: str) -> str:
        return self._quote("flows", flow_name, "runs", run_id, "steps", step_name, "tasks", task_id, *rest)

    def _fields(self, attempt: int, fields: Mapping[str, str], kind: str | None = None) -> list[dict]:
        return [{"field_name": k, "value": str(v), "type": kind or k, "user_name": self.user,
                 "tags": [f"attempt_id:{attempt}"]} for k, v in fields.items()]

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Attempt starts and ends made inside the block go in one request per run, recorded
        in one transaction, when it ends."""
        if getattr(self._batches, "events", None) is not None:  # nested: the outer block sends
            yield
            return
        self._batches.events = {}
        try:
            yield
        finally:
            events, self._batches.events = self._batches.events, None
            for (flow_name, run_id), batch in events.items():
                self._post_events(flow_name, run_id, batch)

    def _record(self, flow_name: str, run_id: str, event: dict) -> None:
        events = getattr(self._batches, "events", None)
        if events is not None:
            events.setdefault((flow_name, run_id), []).append(event)
        else:
            self._post_events(flow_name, run_id, [event])

    def _post_events(self, flow_name: str, run_id: str, events: list[dict]) -> None:
        path = self._quote("flows", flow_name, "runs", run_id, "attempts")
        for request in attempt_requests(events):
            self._call("POST", path, request)

    def start_attempt(self, flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int,
                      fields: Mapping[str, str] = {}) -> None:
        metadata = self._fields(attempt, {"attempt": str(attempt)}, BOOKKEEPING) + self._fields(attempt, fields)
        self._record(flow_name, run_id, {"step_name": step_name, "task_id": task_id, "metadata": metadata})

    def finish_attempt(self, flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int,
                       succeeded: bool, artifacts: Sequence[ArtifactRecord] = (),
                       fields: Mapping[str, str] = {}) -> None:
        records = [{"name": a.name, "attempt_id": attempt, "location": a.key, "sha": a.key, "ds_type": "flow",
                    "type": a.type, "content_type": a.encoding, "size": a.size, "user_name": self.user}
                   for a in artifacts]
        # attempt_ok comes after the artifacts in the same transaction: it marks the attempt over
        metadata = self._fields(attempt, fields) + self._fields(attempt, {"attempt_ok": str(bool(succeeded))},
                                                                BOOKKEEPING)
        self._record(flow_name, run_id, {"step_name": step_name, "task_id": task_id, "metadata": metadata,
                                         "artifacts": records})

    def add_run_tags(self, flow_name: str, run_id: str, tags: Iterable[str]) -> None:
        self._mutate(flow_name, run_id, list(tags), [])

    def remove_run_tags(self, flow_name: str, run_id: str, tags: Iterable[str]) -> None:
        run = self.get_run(flow_name, run_id)  # the service refuses to remove system tags; here they stay
        self._mutate(flow_name, run_id, [], [t for t in tags if run is None or t not in run.system_tags])

    def _mutate(self, flow_name: str, run_id: str, add: list[str], remove: list[str]) -> None:
        self._call("PATCH", self._quote("flows", flow_name, "runs", run_id, "tag", "mutate"),
                   {"tags_to_add": add, "tags_to_remove": remove})

    # -- read side --------------------------------------------------------------------------------

    def _all(self, path: str, query: Mapping[str, Any] | None = None, page_size: int = 1000,
             limit: int | None = None) -> list[dict]:
        """Every row of a paginated listing (or the first ``limit``)."""
        rows: list[dict] = []
        query = dict(query or {})
        while True:
            size = page_size if limit is None else min(page_size, limit - len(rows))
            response = self._request("GET", path, query={**query, "_limit": size}, missing_ok=True)
            if response is None:
                return []
            rows += response.json()
            cursor = response.headers.get("X-Next-Cursor")
            if cursor is None or (limit is not None and len(rows) >= limit):
                return rows
            query["_cursor"] = cursor

    def list_flows(self) -> list[FlowRecord]:
        return [FlowRecord(f["flow_id"], f["ts_epoch"] / 1000) for f in self._all("/flows")]

    def list_runs(self, flow_name: str, tags: Iterable[str] = (), limit: int | None = None) -> list[RunRecord]:
        rows = self._all(self._quote("flows", flow_name, "runs"), {"tag": list(dict.fromkeys(tags))}, limit=limit)
        return [_run(r) for r in rows]

    def get_run(self, flow_name: str, run_id: str) -> RunRecord | None:
        row = self._call("GET", self._quote("flows", flow_name, "runs", run_id), missing_ok=True)
        return None if row is None else _run(row)

    def list_steps(self, flow_name: str, run_id: str) -> list[StepRecord]:
        return [StepRecord(flow_name, run_id, s["step_name"], s["ts_epoch"] / 1000)
                for s in self._all(self._quote("flows", flow_name, "runs", run_id, "steps"))]

    def list_tasks(self, flow_name: str, run_id: str, step_name: str | None = None) -> list[TaskRecord]:
        if step_name is None:
            steps = [s.step_name for s in self.list_steps(flow_name, run_id)]
        else:
            steps = [step_name]
        tasks = [_task(t) for step in steps
                 for t in self._all(self._quote("flows", flow_name, "runs", run_id, "steps", step, "tasks"))]
        return sorted(tasks, key=lambda t: int(t.task_id) if is_number(t.task_id) else 0)

    def get_task(self, flow_name: str, run_id: str, step_name: str, task_id: str) -> TaskRecord | None:
        row = self._call("GET", self._task_path(flow_name, run_id, step_name, task_id), missing_ok=True)
        return None if row is None else _task(row)

    def list_artifacts(self, flow_name: str, run_id: str, step_name: str, task_id: str,
                       attempt: int | None = None) -> list[ArtifactRecord]:
        rest = ("artifacts",) if attempt is None else ("attempt", str(attempt), "artifacts")
        rows = self._call("GET", self._task_path(flow_name, run_id, step_name, task_id, *rest), missing_ok=True)
        return [ArtifactRecord(a["name"], a["sha"], a["type"], a["size"] or 0, a["content_type"], a["attempt_id"])
                for a in rows or () if a["ds_type"] == "flow"]

    def list_metadata(self, flow_name: str, run_id: str, step_name: str, task_id: str) -> list[MetadataField]:
        rows = self._all(self._task_path(flow_name, run_id, step_name, task_id, "metadata"))
        return [MetadataField(m["field_name"], m["value"], m["type"] if m["type"] != m["field_name"] else "",
                              attempt_from_tags(m["tags"]) or 0, m["ts_epoch"] / 1000) for m in rows if m["type"] != BOOKKEEPING]

    def list_attempts(self, flow_name: str, run_id: str) -> list[AttemptRecord]:
        """One request, where the service has the route; an older one is asked task by task."""
        self._check_version()
        if self._revision < ATTEMPTS_REVISION:
            return super().list_attempts(flow_name, run_id)
        rows = self._call("GET", self._quote("flows", flow_name, "runs", run_id, "attempts"), missing_ok=True)
        return close_superseded([
            AttemptRecord(a["step_name"], str(a["task_id"]), a["attempt"], a["started_at"] / 1000,
                          _seconds(a["finished_at"]), a["status"]) for a in rows or ()])


#: What the client puts in one request at most: half the service's limit leaves room for
#: what a size estimate misses.
REQUEST_BYTES = MAX_BODY // 2
_COUNTS = {"metadata": MAX_METADATA, "artifacts": MAX_ARTIFACTS}


def attempt_requests(events: Sequence[dict], max_bytes: int = REQUEST_BYTES) -> list[list[dict]]:
    """The attempt events as the bodies of as few ``…/attempts`` requests as the service's
    limits allow, in their order. A 1000-task foreach's starts fit in one request; a task
    with too many artifacts or fields for one is cut into pieces of itself."""
    requests: list[list[dict]] = []
    current: list[dict] = []
    counts = {"metadata": 0, "artifacts": 0}
    size = 0
    for event in events:
        for piece in _pieces(event, max_bytes):
            piece_size = _size(piece)
            if current and (len(current) >= MAX_EVENTS or size + piece_size > max_bytes or any(
                    counts[kind] + len(piece.get(kind, ())) > most for kind, most in _COUNTS.items())):
                requests.append(current)
                current, counts, size = [], {"metadata": 0, "artifacts": 0}, 0
            current.append(piece)
            size += piece_size
            for kind in _COUNTS:
                counts[kind] += len(piece.get(kind, ()))
    if current:
        requests.append(current)
    return requests


def _pieces(event: dict, max_bytes: int) -> list[dict]:
    """One event as events that each fit a request: its artifacts first, then its fields in
    their order, so the field that closes the attempt still comes after its artifacts."""
    if _size(event) <= max_bytes and all(len(event.get(kind, ())) <= most for kind, most in _COUNTS.items()):
        return [event]
    head = {"step_name": event["step_name"], "task_id": event["task_id"]}
    pieces = [{**head, "metadata": [], "artifacts": []}]
    size = _size(pieces[0])
    for kind in ("artifacts", "metadata"):
        for item in event.get(kind, ()):
            item_size = _size(item) + 1
            piece = pieces[-1]
            if (piece["metadata"] or piece["artifacts"]) and (
                    len(piece[kind]) >= _COUNTS[kind] or size + item_size > max_bytes):
                piece = {**head, "metadata": [], "artifacts": []}
                pieces.append(piece)
                size = _size(piece)
            piece[kind].append(item)
            size += item_size
    return pieces


def _size(value: Any) -> int:
    return len(json.dumps(value))


def _over_limit(response: urllib3.BaseHTTPResponse) -> tuple[str, str, int | None] | None:
    """(reason, limit, maximum) of a refusal over one of the service's limits; a 413 from a
    proxy in front of the service, which names no limit, counts as the body's."""
    try:
        answer = json.loads(response.data)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("limit"):
        return str(answer.get("message", ""))[:300], str(answer["limit"]), answer.get("maximum")
    if response.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        return "the request body is larger than it (or a proxy in front of it) accepts", "body_size", None
    return None


def _run(row: dict) -> RunRecord:
    status = row.get("recorded_status") or RUNNING
    return RunRecord(row["flow_id"], str(row["run_number"]), row.get("user_name") or "", row["ts_epoch"] / 1000,
                     status, _seconds(row.get("finished_at")), row.get("last_heartbeat_ts"),
                     row.get("tags") or (), row.get("system_tags") or (), row.get("origin_run_id"))


def _task(row: dict) -> TaskRecord:
    return TaskRecord(row["flow_id"], str(row["run_number"]), row["step_name"], str(row["task_id"]),
                      row["ts_epoch"] / 1000, row.get("attempt", -1), row.get("status") or RUNNING,
                      _seconds(row.get("finished_at")))


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _message(response: urllib3.BaseHTTPResponse) -> str:
    try:
        return str(json.loads(response.data).get("message", ""))[:300]
    except (ValueError, AttributeError):
        return response.data[:300].decode(errors="replace")


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1][:200]
