"""A small ASGI router: routes looked up by method and segment count, then literal segments.

Starlette's router tries each route's regular expression in turn and wraps every request in
two middlewares; with forty routes and thousands of requests a second that was a tenth of the
service's time. Requests and responses are still Starlette's.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("flow_metadata_service")


def _json(status: int, message: str) -> Response:
    return Response(json.dumps({"message": message}), status_code=status, media_type="application/json")


class Router:
    """``Router([(method, "/flows/{flow_id}", endpoint), ...], startup, shutdown)``"""

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
        path = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
        found = self.match(path)
        if found is None:
            response = _json(404, f"no such route: {scope['path']}")
        elif scope["method"] not in found[0]:
            response = _json(405, f"{scope['method']} is not allowed here; use {', '.join(sorted(found[0]))}")
        else:
            scope["path_params"] = found[1]
            try:
                response = await found[0][scope["method"]](Request(scope, receive))
            except Exception:
                log.exception("%s %s failed", scope["method"], scope["path"])
                response = _json(500, "the service failed on this request; its log says why")
        await response(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.startup:
                        await self.startup()
                except Exception as exc:  # reported by the server, which then exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.shutdown:
                    await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
