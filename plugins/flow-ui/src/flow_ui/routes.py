"""URLs to answers. Every path segment is checked before it reaches a backend, so a URL can
name only runs, tasks and artifacts the metadata knows, never a file."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from flow_core.cards import get_cards
from flow_core.plugin_api import FlowError, NotFound

from . import pages
from .queries import Queries

#: The only files served, by URL name.
STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}
HTML, JSON = "text/html; charset=utf-8", "application/json"
#: Log characters shown at most per stream (the end is kept: that is where failures are).
LOG_CHARS = 2_000_000


#: What the UI's own pages may load: only the UI itself.
UI_POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
#: A card is a page of its own, with inline scripts (Vega) and styles: it runs sandboxed, even
#: when opened directly, and loads nothing.
CARD_POLICY = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
               "style-src 'unsafe-inline'; img-src data:")


class Answer:
    def __init__(self, status: int, content_type: str, body: str | bytes, policy: str = UI_POLICY):
        self.status = status
        self.content_type = content_type
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.policy = policy


def segments(path: str) -> list[str]:
    """The path's decoded segments; NotFound for one that could climb out of a name
    (``..``, ``.``, an encoded slash, a NUL or control character)."""
    parts = []
    for raw in path.strip("/").split("/"):
        part = unquote(raw)
        if (not part or part in (".", "..") or any(c in part for c in "/\\")
                or any(ord(c) < 32 or ord(c) == 127 for c in part)):
            raise NotFound(f"{path!r} names nothing the UI shows")
        parts.append(part)
    return parts


def _json(value: Any) -> Answer:
    return Answer(200, JSON, json.dumps(value, default=str))


def _tail(text: str) -> str:
    return text if len(text) <= LOG_CHARS else "[… earlier output cut …]\n" + text[-LOG_CHARS:]


class Router:
    def __init__(self, queries: Queries):
        self.q = queries

    def answer(self, target: str) -> Answer:
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        api = url.path.startswith("/api/")
        try:
            return self._route(url.path, query)
        except NotFound as exc:
            return self._error(404, str(exc), api)
        except (FlowError, KeyError) as exc:
            status = 404 if isinstance(exc, KeyError) else 502
            message = exc.args[0] if exc.args else str(exc)
            return self._error(status, str(message), api)

    def _error(self, status: int, message: str, api: bool) -> Answer:
        if api:
            return Answer(status, JSON, json.dumps({"error": message}))
        return Answer(status, HTML, pages.error_page(status, message))

    def _route(self, path: str, query: dict[str, str]) -> Answer:
        if path in ("/", "/runs", "/api/runs"):
            listing = self.q.runs(query.get("flow"), query.get("user"), query.get("tag"), query.get("status"),
                                  _int(query.get("page"), 1))
            return _json(listing) if path == "/api/runs" else Answer(200, HTML, pages.runs_page(listing, self.q.flows()))
        if path.startswith("/static/"):
            name = path[len("/static/"):]
            if name not in STATIC:
                raise NotFound(f"{path!r} names nothing the UI shows")
            return Answer(200, STATIC[name], resources.files("flow_ui").joinpath("static", name).read_bytes())
        api = path.startswith("/api/flows/")
        if not (api or path.startswith("/flows/")):
            raise NotFound(f"{path!r} names nothing the UI shows")
        parts = segments(path[len("/api/flows/" if api else "/flows/"):])
        handler: Callable[..., Answer] | None = {
            2: self._run, 4: self._task, 5: self._artifact}.get(len(parts))
        if len(parts) == 1:
            return self._flow(parts[0], api)
        if len(parts) == 6 and parts[4] == "cards" and not api:
            return self._card(*parts[:4], card_hash=parts[5], attempt=query.get("attempt"))
        if handler is None:
            raise NotFound(f"{path!r} names nothing the UI shows")
        if len(parts) == 4:
            return self._task(*parts, api=api, attempt=query.get("attempt"))
        return handler(*parts, api=api)

    def _flow(self, flow: str, api: bool) -> Answer:
        if flow not in self.q.flows():
            raise NotFound(f"flow '{flow}' does not exist in {self.q.describe()}")
        listing = self.q.runs(flow)
        return _json(listing) if api else Answer(200, HTML, pages.runs_page(listing, self.q.flows()))

    def _run(self, flow: str, run_id: str, api: bool) -> Answer:
        run = self.q.run(flow, run_id)
        timeline = self.q.timeline(flow, run["run_id"])
        if api:
            return _json({**run, "timeline": timeline})
        return Answer(200, HTML, pages.run_page(run, timeline))

    def _task(self, flow: str, run_id: str, step: str, task_id: str, api: bool, attempt: str | None = None) -> Answer:
        task = self.q.task(flow, run_id, step, task_id, attempt)
        attempts = self.q.attempts(task)
        cards = list(get_cards(task))
        stdout, stderr = _tail(task.stdout), _tail(task.stderr)
        if api:
            exception = task.exception if task.finished and not task.successful else None
            return _json({
                "pathspec": task.pathspec, "finished": task.finished, "successful": task.successful,
                "attempt": task.current_attempt, "attempts": attempts, "stdout": stdout, "stderr": stderr,
                "exception": {"type": exception.type, "message": exception.exception,
                              "stacktrace": exception.stacktrace} if exception else None,
                "artifacts": [{"name": a.id, "type": a.type, "size": a.size, "sha": a.sha} for a in task],
                "cards": [{"type": c.type, "id": c.id, "hash": c.hash,
                           "href": pages.card_href(task, c, task.current_attempt if attempt is not None else None)}
                          for c in cards],
            })
        chosen = task.current_attempt if attempt is not None else None
        return Answer(200, HTML, pages.task_page(task, attempts, stdout, stderr, cards, chosen))

    def _card(self, flow: str, run_id: str, step: str, task_id: str, card_hash: str,
              attempt: str | None = None) -> Answer:
        task = self.q.task(flow, run_id, step, task_id, attempt)
        for card in get_cards(task):
            if card.hash == card_hash:
                return Answer(200, HTML, card.html, policy=CARD_POLICY)
        raise NotFound(f"task {task.pathspec} has no card {card_hash!r}")

    def _artifact(self, flow: str, run_id: str, step: str, task_id: str, name: str, api: bool) -> Answer:
        artifact = self.q.task(flow, run_id, step, task_id)[name]
        if api:
            return _json({"pathspec": artifact.pathspec, "type": artifact.type, "size": artifact.size,
                          "sha": artifact.sha})
        return Answer(200, HTML, pages.artifact_page(artifact))


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default
