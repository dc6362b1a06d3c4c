"""Connections to PostgreSQL: the service's pool, and one-off connections for commands.

Every way of connecting fails the same way: one sentence naming the server (never its
password) and what the driver said.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from .errors import ServiceError

UNREACHABLE = (OSError, asyncpg.PostgresError, TimeoutError)


def redact(database_url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = database_url.rpartition("@")
    if not sep:
        return database_url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}@{tail}"


def unreachable(database_url: str, exc: Exception) -> ServiceError:
    return ServiceError(f"cannot connect to PostgreSQL at {redact(database_url)}: {exc}")


async def on_connection(database_url: str, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    """``await work(connection)`` on a connection of its own, closed after."""
    try:
        conn = await asyncpg.connect(database_url, timeout=10)
    except UNREACHABLE as exc:
        raise unreachable(database_url, exc) from None
    try:
        return await work(conn)
    finally:
        await conn.close()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo when a connection goes back to the pool: the service never changes
    session state (no LISTEN, no session locks, no SET). asyncpg's default reset would cost
    a round trip and four statements per request."""


async def connect_pool(database_url: str, min_size: int = 2, max_size: int = 8) -> asyncpg.Pool:
    # PostgreSQL's default plan caching stands: every statement of the service finds its rows
    # through an index on its parameters, so the generic plan it settles on is an index lookup
    # whatever the tables' statistics say, and planning each execution anew would cost more
    # than executing it.
    try:
        return await asyncpg.create_pool(database_url, min_size=min_size, max_size=max_size, reset=_keep_session,
                                         command_timeout=30, max_inactive_connection_lifetime=300)
    except UNREACHABLE as exc:
        raise unreachable(database_url, exc) from None
