"""Flow's `S3` client beside Metaflow's: put_many and get_many on one SeaweedFS on loopback.

    uv run python benchmarks/s3_client.py                 # 1,000 × 1 KiB and 16 × 64 MiB
    uv run python benchmarks/s3_client.py --quick         # 1,000 × 1 KiB and 4 × 16 MiB
    uv run python benchmarks/s3_client.py --rounds 3      # medians of three rounds

Metaflow comes from PyPI into benchmarks/.venv-metaflow (run.py's helper). Each measurement is
a fresh interpreter of its framework running this file with --worker: it opens ``S3(s3root=...)``,
stores one tiny object (so client set-up is not timed), then times ``put_many`` of the objects
(bytes in memory) and ``get_many`` of them back (downloaded to local files, as both clients do).
Both frameworks alternate, on fresh prefixes of the same server, after 512 MiB written
to it untimed (a fresh SeaweedFS is slow while it grows its first volumes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KiB, MiB = 1024, 1024 * 1024


def worker(module: str, root: str, count: int, size: int, tmproot: str) -> None:
    """Runs inside each framework's interpreter: prints one JSON line of timings."""
    if module == "metaflow":
        from metaflow import S3
    else:
        from flow_datastore_s3 import S3
    base = os.urandom(size)
    payloads = [i.to_bytes(8, "big") + base[8:] for i in range(count)]
    keys = [f"obj/{i:05}" for i in range(count)]
    with S3(s3root=root, tmproot=tmproot) as s3:
        s3.put("warm-up", b"x")
        started = time.perf_counter()
        s3.put_many(list(zip(keys, payloads)))
        put_seconds = time.perf_counter() - started
        del payloads
        started = time.perf_counter()
        objects = s3.get_many(keys)
        get_seconds = time.perf_counter() - started
        if len(objects) != count or any(o.size != size for o in objects):
            raise SystemExit(f"{module}: get_many returned the wrong objects")
    print(json.dumps({"put_many": put_seconds, "get_many": get_seconds}))


def measure(framework, endpoint: str, count: int, size: int) -> dict[str, float]:
    from run import fresh_folder

    with fresh_folder() as folder:
        env = {**framework.environment(folder), "METAFLOW_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        root = f"s3://bench/{framework.module}-{time.time_ns()}"
        result = subprocess.run([framework.python, __file__, "--worker", framework.module, "--root", root,
                                 "--count", str(count), "--size", str(size), "--tmproot", str(folder)],
                                env=env, cwd=folder, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{framework.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 × 16 MiB instead of 16 × 64 MiB")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--worker"), parser.add_argument("--root"), parser.add_argument("--tmproot")
    parser.add_argument("--count", type=int), parser.add_argument("--size", type=int)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.root, args.count, args.size, args.tmproot)

    sys.path.insert(0, str(HERE))
    from run import frameworks, warm_up_s3_server

    from flow_datastore_s3.testing import SeaweedS3

    workloads = [("1,000 × 1 KiB", 1000, KiB),
                 ("4 × 16 MiB", 4, 16 * MiB) if args.quick else ("16 × 64 MiB", 16, 64 * MiB)]
    both = frameworks()
    server = SeaweedS3(Path(tempfile.mkdtemp(prefix="flow-bench-s3client-"))).start()
    try:
        server.create_bucket("bench")
        warm_up_s3_server(server, "bench")
        rows = []
        for label, count, size in workloads:
            times: dict[str, dict[str, list[float]]] = {f.name: {"put_many": [], "get_many": []} for f in both}
            for round_index in range(args.rounds):
                for framework in (both if round_index % 2 == 0 else both[::-1]):
                    for op, seconds in measure(framework, server.endpoint_url, count, size).items():
                        times[framework.name][op].append(seconds)
            for op in ("put_many", "get_many"):
                flow, metaflow = (statistics.median(times[name][op]) for name in ("Flow", "Metaflow"))
                rows.append(f"| {op} {label} | {flow:.2f} s | {metaflow:.2f} s | {metaflow / flow:.1f}× |")
                print(rows[-1], flush=True)
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)
    print("\n| workload | Flow | Metaflow | Metaflow / Flow |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
