"""Throughput and latency of the metadata service under the per-task call sequence.

    uv run python benchmarks/service.py [--seconds 10] [--clients 1,16,32,64] [--workers 1]
    uv run python benchmarks/service.py --against http://127.0.0.1:8080 [--against-pids S,P] [--rounds 3]

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

With --against, the same load also goes to another service speaking the metadata API (a
metaflow-service started by hand, say), alternately with Flow's, round after round, and the
table gives each side's medians and their ratio. --against-pids names that service's process
and its PostgreSQL's postmaster, for the CPU columns.
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
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Connection:
    """One keep-alive HTTP/1.1 connection: the least a client can do per request."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def open(self) -> Connection:
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
    if not 200 <= status < 300:
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
    """User and system CPU time of a process and all its descendants, alive or ended (Linux).

    An ended child's time is in its parent's cutime and cstime once the parent has reaped it,
    as PostgreSQL's postmaster does when a connection's backend exits."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


async def load(host: str, port: int, clients: int, seconds: float, sequence, watched: dict[str, int]) -> dict:
    setup, untimed = await Connection(host, port).open(), []
    await setup.request("POST", "/flows/BenchFlow", {"user_name": "bench"})  # 409 once it exists
    created = await timed(setup, untimed, "POST", "/flows/BenchFlow/run", {"user_name": "bench"})
    run = str(json.loads(created)["run_number"])
    await timed(setup, untimed, "POST", f"/flows/BenchFlow/runs/{run}/steps/work/step", {"user_name": "bench"})
    setup.writer.close()
    latencies: list[float] = []
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        conn = await Connection(host, port).open()
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
            "cpu": cpu}


SEQUENCES = {"task": task_sequence, "upstream": upstream_sequence}
WATCHED = ("service", "postgres")  # the processes whose CPU time is counted, in the order printed


def median_result(results: list[dict]) -> dict:
    """Each figure's median over the rounds."""
    medians = {key: statistics.median(r[key] for r in results) for key in ("sequences", "requests", "p50", "p99")}
    return medians | {"cpu": {name: statistics.median(r["cpu"][name] for r in results) for name in results[0]["cpu"]}}


def cpu_text(result: dict) -> str:
    if not result["cpu"]:
        return "-"
    return " + ".join(f"{result['cpu'][name]:.2f}" for name in WATCHED if name in result["cpu"]) + " ms"


def print_line(label: str, name: str, clients: int, result: dict) -> None:
    cpu = f"  CPU/seq: {cpu_text(result)}" if result["cpu"] else ""
    print(f"{label:<8} {name:<9} {clients:>3} clients  {result['sequences']:8.0f} seq/s  "
          f"{result['requests']:8.0f} req/s  p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms{cpu}", flush=True)


def print_table(rows: list[tuple[str, int, dict]]) -> None:
    print("\n| sequence | clients | sequences/s | requests/s | p50 | p99 | CPU per sequence: service + PostgreSQL |"
          "\n|---|---:|---:|---:|---:|---:|---:|")
    for name, clients, results in rows:
        r = results["Flow"]
        print(f"| {name} | {clients} | {r['sequences']:.0f} | {r['requests']:.0f} | {r['p50']:.1f} ms "
              f"| {r['p99']:.1f} ms | {cpu_text(r)} |")


def print_comparison(rows: list[tuple[str, int, dict]], other: str) -> None:
    print(f"\n| sequence | clients | sequences/s: Flow / {other} | ratio | p99: Flow / {other} | ratio "
          f"| CPU per sequence: Flow / {other} |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, clients, results in rows:
        ours, theirs = results["Flow"], results[other]
        print(f"| {name} | {clients} | {ours['sequences']:.0f} / {theirs['sequences']:.0f} "
              f"| {ours['sequences'] / theirs['sequences']:.2f}x | {ours['p99']:.1f} / {theirs['p99']:.1f} ms "
              f"| {ours['p99'] / theirs['p99']:.2f}x | {cpu_text(ours)} / {cpu_text(theirs)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per measurement")
    parser.add_argument("--clients", default="1,16,32,64", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--workers", type=int, default=1, help="service processes")
    parser.add_argument("--pool-size", type=int, default=8, help="database connections per service process")
    parser.add_argument("--against", metavar="URL", help="another metadata service to measure alternately")
    parser.add_argument("--against-name", default="metaflow-service", help="its name in the table")
    parser.add_argument("--against-pids", metavar="SERVICE[,POSTGRES]", default="",
                        help="its process and its PostgreSQL's, for the CPU columns")
    parser.add_argument("--rounds", type=int, help="measurements per side, alternating (default 1; 3 with --against)")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.against else 1)

    import uvloop
    from flow_metadata_service.migrations import migrate_database
    from flow_metadata_service.postgres_server import PostgresServer
    from flow_metadata_service.service_process import ServiceProcess

    folder = Path(tempfile.mkdtemp(prefix="flow-bench-pg-"))
    with PostgresServer(folder) as postgres:
        migrate_database(postgres.url)
        with ServiceProcess(postgres.url, folder / "service.log", workers=args.workers,
                            pool_size=args.pool_size) as service:
            targets = {"Flow": ("127.0.0.1", service.port,
                                {"service": service.process.pid, "postgres": postgres.process.pid})}
            if args.against:
                url = urllib.parse.urlsplit(args.against)
                pids = [int(p) for p in args.against_pids.split(",") if p]
                targets[args.against_name] = (url.hostname, url.port or 80,
                                              dict(zip(WATCHED, pids)))
            rows = []
            for clients in [int(c) for c in args.clients.split(",")]:
                for name, sequence in SEQUENCES.items():
                    results: dict[str, list[dict]] = {label: [] for label in targets}
                    for _ in range(rounds):
                        for label, (host, port, watched) in targets.items():
                            result = uvloop.run(load(host, port, clients, args.seconds, sequence, watched))
                            results[label].append(result)
                            print_line(label, name, clients, result)
                    rows.append((name, clients, {label: median_result(r) for label, r in results.items()}))
    if args.against:
        print_comparison(rows, args.against_name)
    else:
        print_table(rows)
    print(f"\n{sys.platform}, service workers: {args.workers}, {args.seconds:.0f} s per measurement, "
          f"{rounds} round(s), medians, {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
