"""The service's HTTP layer on bare ASGI: a router, the request a handler sees, the reply it gives.

Every route answers a small JSON document after one database statement, so the few dozen
microseconds a general framework spends per request (Starlette's request and response
objects, its regular-expression router and two middlewares) were a fifth of the service's
time. Routes are looked up by method and segment count, then by literal segments.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from .limits import MAX_BODY, OverLimit, body_too_large

log = logging.getLogger("flow_metadata_service")


class Request:
    """What a handler needs of an HTTP request: its path parameters, query and body."""

    __slots__ = ("_query", "_query_string", "body", "method", "path_params")

    def __init__(self, method: str, path_params: dict[str, str], query_string: bytes, body: bytes):
        self.method, self.path_params, self.body = method, path_params, body
        self._query_string, self._query = query_string, None

    @property
    def query_params(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(urllib.parse.parse_qsl(self._query_string.decode("latin-1"),
                                                             keep_blank_values=True))
        return self._query


class QueryParams:
    """A query string's parameters: ``get`` gives a name's last value, ``getlist`` all of them."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self._pairs = pairs
        self._last = dict(pairs)

    def __contains__(self, name: str) -> bool:
        return name in self._last

    def __getitem__(self, name: str) -> str:
        return self._last[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._last.get(name, default)

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]


class Reply:
    """A complete response: status, body and headers, sent in two ASGI messages."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, body: bytes, status: int = 200, content_type: bytes = b"application/json",
                 headers: dict[str, str] | None = None):
        self.status, self.body = status, body
        self.headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        for name, value in (headers or {}).items():
            self.headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

    async def __call__(self, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def json_reply(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(orjson.dumps(content), status, headers=headers)


def text_reply(text: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(text.encode(), content_type=b"text/plain; charset=utf-8", headers=headers)


def message_reply(status: int, message: str) -> Reply:
    return json_reply({"message": message}, status)


def limit_reply(exc: OverLimit) -> Reply:
    """A refusal over a limit: the sentence, and which limit with its value for programs."""
    return json_reply({"message": str(exc), "limit": exc.limit, "maximum": exc.maximum}, exc.status)


Endpoint = Callable[[Request], Awaitable[Reply]]


class Router:
    """``Router([(method, "/flows/{flow_id}", endpoint), ...], startup, shutdown)``: an ASGI app."""

    def __init__(self, routes: list[tuple[str, str, Endpoint]],
                 startup: Callable[[], Awaitable[None]] | None = None,
                 shutdown: Callable[[], Awaitable[None]] | None = None):
        self.table: dict[int, list[tuple[list[str], dict[str, Endpoint]]]] = {}
        for method, template, endpoint in routes:
            segments = template.strip("/").split("/")
            candidates = self.table.setdefault(len(segments), [])
            for known, methods in candidates:
                if known == segments:
                    methods[method] = endpoint
                    break
            else:
                candidates.append((segments, {method: endpoint}))
        self.startup, self.shutdown = startup, shutdown

    def match(self, path: str) -> tuple[dict[str, Endpoint], dict[str, str]] | None:
        parts = path.strip("/").split("/")
        for segments, methods in self.table.get(len(parts), ()):
            params = {}
            for pattern, part in zip(segments, parts):
                if pattern[0] == "{":
                    params[pattern[1:-1]] = urllib.parse.unquote(part)
                elif pattern != part:
                    break
            else:
                return methods, params
        return None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        raw = scope.get("raw_path")
        # The raw path keeps an encoded '/' inside a segment (a name with a slash) as one segment.
        path = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
        found = self.match(path)
        method = scope["method"]
        if found is None:
            reply = message_reply(404, f"no such route: {scope['path']}")
        elif method not in found[0]:
            reply = message_reply(405, f"{method} is not allowed here; use {', '.join(sorted(found[0]))}")
        else:
            body = await _read_body(receive)
            if body is None:
                reply = limit_reply(body_too_large())
            else:
                try:
                    reply = await found[0][method](Request(method, found[1], scope["query_string"], body))
                except Exception:
                    log.exception("%s %s failed", method, scope["path"])
                    reply = message_reply(500, "the service failed on this request; its log says why")
        await reply(send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.startup:
                        await self.startup()
                except Exception as exc:  # noqa: BLE001 -- reported by the server, which then exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.shutdown:
                    await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Any) -> bytes | None:
    """The whole request body, or None past `MAX_BODY`. The rest of a body too large is
    read and dropped, not left unread: a client still sending it would see the connection
    reset instead of the 413 that says why."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        more = message.get("more_body", False)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        elif chunks:
            chunks = []  # over the limit: from here on only counted
    return b"".join(chunks) if size <= MAX_BODY else None
