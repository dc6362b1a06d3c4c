"""The ASGI application and how it is served.

A small router of ours on bare ASGI dispatches to the handlers; asyncpg talks to PostgreSQL
(binary protocol, prepared statements); uvicorn with uvloop and httptools serves it. The
README gives the measurements behind these choices.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from typing import Any

import asyncpg

from .api import endpoints
from .database import connect_pool, on_connection
from .migrations import check_schema, schema_version
from .openapi import openapi_document
from .router import Request, Router, json_reply
from .store import MetadataStore

OPEN_PATHS = {"/health"}  # what a load balancer probes without credentials


class AppState:
    store: MetadataStore


class BearerAuth:
    """With an auth key set, every request but the health probe must carry it, as
    ``Authorization: Bearer KEY`` or (what Metaflow's client sends) ``x-api-key: KEY``."""

    def __init__(self, app: Any, key: str | None):
        self.app = app
        self.accepted = [f"Bearer {key}".encode(), key.encode()] if key else []

    async def __call__(self, scope, receive, send):
        if not self.accepted or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name in (b"authorization", b"x-api-key") and any(hmac.compare_digest(value, a) for a in self.accepted):
                return await self.app(scope, receive, send)
        body = json.dumps({"message": "missing or wrong credentials: send the service's key as "
                                      "'Authorization: Bearer <key>' (METAFLOW_SERVICE_AUTH_KEY)"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})


def create_app(database_url: str, auth_key: str | None = None, pool_size: int = 8) -> Any:
    state = AppState()

    async def startup() -> None:
        pool = await connect_pool(database_url, max_size=pool_size)
        async with pool.acquire() as conn:
            await check_schema(conn)
        state.store = MetadataStore(pool)

    async def shutdown() -> None:
        await state.store.pool.close()

    async def health(request: Request):
        try:
            async with state.store.pool.acquire(timeout=5) as conn:
                version = await schema_version(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            return json_reply({"status": "unavailable", "message": f"the database is unavailable: {exc}"},
                              status=503)
        return json_reply({"status": "ok", "schema_version": version})

    async def openapi(request: Request):
        return json_reply(openapi_document())

    routes = [("GET", "/health", health), ("GET", "/openapi.json", openapi), *endpoints(state)]
    return BearerAuth(Router(routes, startup, shutdown), auth_key)


def serve(database_url: str, host: str = "127.0.0.1", port: int = 8080, auth_key: str | None = None,
          workers: int = 1, pool_size: int = 8, access_log: bool = False) -> None:
    """Check the database, then serve until stopped. Refuses an unmigrated schema."""
    import uvicorn

    asyncio.run(on_connection(database_url, check_schema))
    options = {"host": host, "port": port, "log_level": "info" if access_log else "warning",
               "access_log": access_log, "loop": "uvloop", "http": "httptools", "lifespan": "on"}
    if workers == 1:
        uvicorn.run(create_app(database_url, auth_key, pool_size), **options)
        return
    # Worker processes build the app themselves, from the environment.
    os.environ.update({_ENV_URL: database_url, _ENV_POOL: str(pool_size)})
    if auth_key:
        os.environ[_ENV_KEY] = auth_key
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)


_ENV_URL, _ENV_KEY, _ENV_POOL = "FLOW_SERVICE_DATABASE_URL", "FLOW_SERVICE_AUTH_KEY", "FLOW_SERVICE_POOL_SIZE"


def app_from_environment() -> Any:
    return create_app(os.environ[_ENV_URL], os.environ.get(_ENV_KEY), int(os.environ.get(_ENV_POOL, "8")))

