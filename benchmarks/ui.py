"""How fast ``flow ui`` answers for a 1,000-task run and for a folder of 10,000 runs.

    .venv/bin/python benchmarks/ui.py                      # about a minute
    .venv/bin/python benchmarks/ui.py --width 1000 --runs 10000 --repeat 5

Why: the issue asks that a run of 1,000 tasks opens in under a second and that 10,000 runs
list fast, paging all the way down.

1. A foreach of WIDTH trivial tasks, made with ``flow run --max-workers 2`` (local fork
   server) in a fresh folder. Then ``flow ui`` (in this process, on a free loopback port)
   is asked for the run's JSON and page: the first request (cold: the graph's edges are read,
   and every attempt's times in one `list_attempts` query) and the median of the next REPEAT
   (warm: a finished run's edges are kept).
2. RUNS runs recorded straight through the metadata backend (`flow_core.plugin_api`'s
   ``Backends``: a run record costs what ``flow run`` writes for it, without the tasks), then
   the runs list: first page, a middle page, the last page, and a filter by tag.

Timings are wall-clock over real HTTP (urllib), whole responses read.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

FLOW = '''
from flow_core import FlowSpec, step

class WideFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range({width}))
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.square = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    WideFlow()
'''


def timed_get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


def serve(root: Path):
    os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(root)
    from flow_ui.server import make_server

    server = make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def measure(url: str, repeat: int) -> str:
    cold, size = timed_get(url)
    warm = statistics.median(timed_get(url)[0] for _ in range(repeat))
    return f"cold {cold * 1000:7.0f} ms   warm {warm * 1000:6.0f} ms   ({size / 1024:.0f} KiB)"


def wide_run(width: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="flow-ui-bench-") as folder:
        root = Path(folder)
        (root / "wide.py").write_text(textwrap.dedent(FLOW.format(width=width)))
        env = {**os.environ, "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root / ".flow"), "METAFLOW_USER": "bench"}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "flow_core", "--quiet", "run", "wide.py", "--max-workers", "2",
                        "--max-num-splits", str(width + 1)],
                       cwd=root, env=env, check=True, capture_output=True)
        print(f"{width + 3} tasks recorded in {time.perf_counter() - started:.1f} s")
        server, url = serve(root / ".flow")
        try:
            print(f"  run JSON  /api/flows/WideFlow/1   {measure(url + '/api/flows/WideFlow/1', repeat)}")
            server.router.q._edges.clear()
            print(f"  run page  /flows/WideFlow/1       {measure(url + '/flows/WideFlow/1', repeat)}")
            tasks = server.router.q.metadata.list_tasks("WideFlow", "1", "each")
            print(f"  task page /flows/{tasks[500].pathspec:<20}{measure(url + '/flows/' + tasks[500].pathspec, repeat)}")
        finally:
            server.shutdown()


def many_runs(count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="flow-ui-bench-") as folder:
        os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = folder
        from flow_core.plugin_api import Backends

        metadata = Backends.configured().metadata
        started = time.perf_counter()
        with metadata.batch():
            for i in range(count):
                record = metadata.new_run(f"Flow{i % 3}", "bench" if i % 2 else "ana", tags=["even"] if i % 2 == 0 else [],
                                          system_tags=[f"user:{'bench' if i % 2 else 'ana'}", "runtime:local"])
                metadata.finish_run(record.flow_name, record.run_id, succeeded=i % 7 != 0)
        print(f"{count} runs recorded in {time.perf_counter() - started:.1f} s")
        server, url = serve(Path(folder))
        try:
            pages = -(-count // 50)
            for label, path in [("first page", "/api/runs"), ("middle page", f"/api/runs?page={pages // 2}"),
                                ("last page", f"/api/runs?page={pages}"), ("HTML first page", "/"),
                                ("HTML last page", f"/?page={pages}"), ("tag filter", "/api/runs?tag=even"),
                                ("status filter", "/api/runs?status=failed&page=5"),
                                ("one flow", "/api/runs?flow=Flow1&page=20")]:
                server.router.q._listing.clear()  # cold: no listing kept from the request before
                print(f"  {label:<16} {measure(url + path, repeat)}")
        finally:
            server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1000, help="foreach width of the wide run")
    parser.add_argument("--runs", type=int, default=10000, help="runs in the listing benchmark")
    parser.add_argument("--repeat", type=int, default=5, help="warm requests per measurement (median)")
    args = parser.parse_args()
    print(f"flow ui benchmark on {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    wide_run(args.width, args.repeat)
    many_runs(args.runs, args.repeat)


if __name__ == "__main__":
    main()
