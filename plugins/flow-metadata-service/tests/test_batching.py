"""Concurrent writes share statements, yet every request keeps its own answer."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import asyncpg
from flow_metadata_service.batching import Batcher


def test_a_batch_that_fails_on_one_item_answers_each_item_alone():
    batches: list[list[str]] = []

    async def run_batch(key, items):
        batches.append(list(items))
        await asyncio.sleep(0.01)  # a round trip, during which more requests queue
        if "bad" in items:
            raise asyncpg.DataError("value out of range")
        return [item.upper() for item in items]

    async def main():
        batcher = Batcher(run_batch)
        return await asyncio.gather(*(batcher.submit("sql", item) for item in ["a", "b", "bad", "c", "d"]),
                                    return_exceptions=True)

    answers = asyncio.run(main())
    assert answers[:2] == ["A", "B"] and answers[3:] == ["C", "D"]
    assert isinstance(answers[2], asyncpg.DataError)
    assert batches[0] == ["a"] and ["b", "bad", "c", "d"] in batches  # queued while the first ran
    assert ["bad"] in batches and ["c"] in batches  # then each alone


def test_a_lost_connection_reaches_every_request_of_its_batch():
    async def run_batch(key, items):
        raise ConnectionResetError("server closed the connection")

    async def main():
        batcher = Batcher(run_batch)
        return await asyncio.gather(*(batcher.submit("sql", i) for i in range(3)), return_exceptions=True)

    assert [type(answer) for answer in asyncio.run(main())] == [ConnectionResetError] * 3


def test_concurrent_requests_through_the_service_each_get_their_own_answer(api):
    runs = [api("POST", "/flows/BatchFlow/run", {})[1]["run_number"] for _ in range(12)]
    assert runs == list(range(1, 13))  # as text, "10" sorts before "9": batches reorder items
    tasks = [(run, api("POST", f"/flows/BatchFlow/runs/{run}/steps/start/task", {})[1]["task_id"]) for run in runs]
    requests = []
    for i, (run, task) in enumerate(tasks):
        base = f"/flows/BatchFlow/runs/{run}/steps/start/tasks"
        requests += [("POST", f"{base}/{task}/heartbeat", {}, 200), ("POST", f"{base}/{task + 1000}/heartbeat", {}, 404),
                     ("POST", f"{base}/{task}/metadata", [{"field_name": "i", "value": str(i), "type": "x"}], 200),
                     ("POST", f"{base}/{task + 1000}/metadata", [{"field_name": "i", "value": "x", "type": "x"}], 404),
                     ("POST", "/flows/BatchFlow/run", {"run_number": "only-once"}, None)]
    with ThreadPoolExecutor(48) as pool:
        statuses = list(pool.map(lambda r: api(*r[:3])[0], requests * 3))
    expected = [r[3] for r in requests * 3]
    assert [s for s, e in zip(statuses, expected) if e is not None] == [e for e in expected if e is not None]
    assert sorted(s for s, e in zip(statuses, expected) if e is None) == [200] + [409] * 35
    for i, (run, task) in enumerate(tasks):
        _, rows, _ = api("GET", f"/flows/BatchFlow/runs/{run}/steps/start/tasks/{task}/metadata")
        assert [(r["field_name"], r["value"]) for r in rows] == [("i", str(i))] * 3
