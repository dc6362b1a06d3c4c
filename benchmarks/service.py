"""Throughput and latency of the metadata service under the per-task call sequence.

    uv run python benchmarks/service.py [--seconds 10] [--clients 1,16,32,64] [--workers 1]

Starts PostgreSQL and the service on 127.0.0.1 (as the tests do), then, for each number of
concurrent clients, runs two sequences for a fixed time over keep-alive connections:

- task: create a task, post its metadata, post its artifacts, heartbeat (what every task costs);
- upstream: create a run, a step, a task, heartbeat (the sequence metaflow-service's reference
  figures were measured with).

It prints sequences and requests per second, latency percentiles per request, and the CPU
time the service and PostgreSQL spent per sequence. The load generator is a plain asyncio
HTTP/1.1 client on the same machine, so it competes with the service and PostgreSQL for the
same cores, as any loopback measurement does; the CPU time per sequence is the figure that
moves least when the machine is busy with something else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Connection:
    """One keep-alive HTTP/1.1 connection: the least a client can do per request."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def open(self) -> "Connection":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        self.writer.write(b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (method.encode(), path.encode(), len(payload), payload))
        head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15: head.index(b"\r\n", at)]) if at >= 0 else 0
        data = await self.reader.readexactly(length) if length else b""
        return int(head[9:12]), data


def _metadata(attempt: int) -> list[dict]:
    tags = [f"attempt_id:{attempt}"]
    return [{"field_name": name, "value": value, "type": name, "user_name": "bench", "tags": tags}
            for name, value in (("attempt", "0"), ("hostname", "bench-host"), ("pid", "4242"))]


ARTIFACTS = [{"name": f"artifact_{i}", "attempt_id": 0, "location": "data/ab/" + "ab" * 31, "ds_type": "flow",
              "sha": "ab" * 32, "type": "builtins.int", "content_type": "msgpack", "size": 12, "user_name": "bench"}
             for i in range(5)]


async def timed(conn: Connection, latencies: list[float], method: str, path: str, body: object = None) -> bytes:
    """One request, its latency recorded; anything but 200 stops the benchmark."""
    start = time.perf_counter()
    status, data = await conn.request(method, path, body)
    latencies.append(time.perf_counter() - start)
    if status != 200:
        raise RuntimeError(f"{method} {path} answered {status}: {data[:200]!r}")
    return data


async def task_sequence(conn: Connection, run: str, latencies: list[float]) -> None:
    base = f"/flows/BenchFlow/runs/{run}/steps/work"
    task = json.loads(await timed(conn, latencies, "POST", base + "/task", {"user_name": "bench"}))["task_id"]
    await timed(conn, latencies, "POST", f"{base}/tasks/{task}/metadata", _metadata(0))
    await timed(conn, latencies, "POST", f"{base}/tasks/{task}/artifact", ARTIFACTS)
    await timed(conn, latencies, "POST", f"{base}/tasks/{task}/heartbeat", {})


async def upstream_sequence(conn: Connection, run: str, latencies: list[float]) -> None:
    body = {"user_name": "bench", "system_tags": ["user:bench"]}
    number = json.loads(await timed(conn, latencies, "POST", "/flows/BenchFlow/run", body))["run_number"]
    await timed(conn, latencies, "POST", f"/flows/BenchFlow/runs/{number}/steps/start/step", body)
    task = json.loads(await timed(conn, latencies, "POST", f"/flows/BenchFlow/runs/{number}/steps/start/task",
                                  body))["task_id"]
    await timed(conn, latencies, "POST", f"/flows/BenchFlow/runs/{number}/steps/start/tasks/{task}/heartbeat", {})


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and all its descendants now alive (Linux)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


async def load(port: int, clients: int, seconds: float, sequence, watched: dict[str, int]) -> dict:
    setup = await Connection("127.0.0.1", port).open()
    status, data = await setup.request("POST", "/flows/BenchFlow/run", {"user_name": "bench"})
    run = str(json.loads(data)["run_number"])
    setup.writer.close()
    latencies: list[float] = []
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        conn = await Connection("127.0.0.1", port).open()
        while time.perf_counter() < deadline:
            await sequence(conn, run, latencies)
            done += 1
        conn.writer.close()

    cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    cpu = {name: (cpu_seconds(pid) - cpu_before[name]) / done * 1000 for name, pid in watched.items()}
    latencies.sort()
    return {"sequences": done / elapsed, "requests": len(latencies) / elapsed,
            "p50": latencies[len(latencies) // 2] * 1000, "p99": latencies[int(len(latencies) * 0.99)] * 1000,
            "mean": statistics.fmean(latencies) * 1000, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per measurement")
    parser.add_argument("--clients", default="1,16,32,64", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--workers", type=int, default=1, help="service processes")
    parser.add_argument("--pool-size", type=int, default=8, help="database connections per service process")
    args = parser.parse_args()

    import uvloop

    from flow_metadata_service.migrations import migrate_database
    from flow_metadata_service.postgres_server import PostgresServer
    from flow_metadata_service.service_process import ServiceProcess

    folder = Path(tempfile.mkdtemp(prefix="flow-bench-pg-"))
    with PostgresServer(folder) as postgres:
        migrate_database(postgres.url)
        with ServiceProcess(postgres.url, folder / "service.log", workers=args.workers,
                            pool_size=args.pool_size) as service:
            rows = []
            for clients in [int(c) for c in args.clients.split(",")]:
                for name, sequence in (("task", task_sequence), ("upstream", upstream_sequence)):
                    watched = {"service": service.process.pid, "postgres": postgres.process.pid}
                    result = uvloop.run(load(service.port, clients, args.seconds, sequence, watched))
                    rows.append((name, clients, result))
                    print(f"{name:<9} {clients:>3} clients  {result['sequences']:8.0f} seq/s  "
                          f"{result['requests']:8.0f} req/s  p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms"
                          f"  CPU/seq: service {result['cpu']['service']:.2f} ms, "
                          f"PostgreSQL {result['cpu']['postgres']:.2f} ms", flush=True)
    print("\n| sequence | clients | sequences/s | requests/s | p50 | p99 | CPU per sequence: service + PostgreSQL |"
          "\n|---|---:|---:|---:|---:|---:|---:|")
    for name, clients, r in rows:
        print(f"| {name} | {clients} | {r['sequences']:.0f} | {r['requests']:.0f} | {r['p50']:.1f} ms "
              f"| {r['p99']:.1f} ms | {r['cpu']['service']:.2f} + {r['cpu']['postgres']:.2f} ms |")
    print(f"\n{sys.platform}, service workers: {args.workers}, {args.seconds:.0f} s per row, "
          f"{time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
