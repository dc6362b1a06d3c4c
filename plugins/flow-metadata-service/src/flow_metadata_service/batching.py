"""Concurrent writes of one kind, run as one statement.

A busy service receives the same few writes from many tasks at once (heartbeats, new
tasks, their metadata). PostgreSQL's cost is mostly per statement and per commit, not per
row, so a `Batcher` lets a request wait only while an earlier statement of its kind is under
way, then runs every request that queued meanwhile as one statement: under load, one
round trip and one commit serve many requests; alone, a request goes at once.

Each request keeps its own outcome: the statement reports per item, and when it fails as a
whole on something an item could cause (bad data, a deadlock), every item runs again alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

import asyncpg

#: Failures one item can cause; the others (a lost connection) are every item's.
ITEM_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, asyncpg.DeadlockDetectedError,
               asyncpg.SerializationError)

RunBatch = Callable[[Hashable, Sequence[Any]], Awaitable[Sequence[Any]]]


class Batcher:
    """``await batcher.submit(key, item)``: ``run_batch(key, items)`` answers a list aligned
    with ``items`` whose entries are results, or exceptions to raise in that item's request."""

    def __init__(self, run_batch: RunBatch, max_in_flight: int = 1, max_size: int = 256):
        self.run_batch = run_batch
        self.max_in_flight, self.max_size = max_in_flight, max_size
        self._queues: dict[Hashable, list[tuple[Any, asyncio.Future]]] = {}
        self._in_flight: dict[Hashable, int] = {}
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, key: Hashable, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, []).append((item, future))
        if self._in_flight.get(key, 0) < self.max_in_flight:
            self._start(key)
        return await future

    def _start(self, key: Hashable) -> None:
        queue = self._queues[key]
        batch, self._queues[key] = queue[:self.max_size], queue[self.max_size:]
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        task = asyncio.ensure_future(self._run(key, batch))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: Hashable, batch: list[tuple[Any, asyncio.Future]]) -> None:
        try:
            outcomes = await self._outcomes(key, [item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 -- a lost connection, say: every request of the batch answers with it
            outcomes = [exc] * len(batch)
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        finally:
            self._in_flight[key] -= 1
            if self._queues[key] and self._in_flight[key] < self.max_in_flight:
                self._start(key)
        for (_, future), outcome in zip(batch, outcomes):
            if future.done():  # its request was cancelled
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _outcomes(self, key: Hashable, items: list[Any]) -> Sequence[Any]:
        try:
            return await self.run_batch(key, items)
        except ITEM_ERRORS as exc:
            if len(items) == 1:
                return [exc]
        outcomes: list[Any] = []
        for item in items:  # which one was it: each alone, each with its own outcome
            try:
                outcomes += await self.run_batch(key, [item])
            except ITEM_ERRORS as exc:
                outcomes.append(exc)
        return outcomes
