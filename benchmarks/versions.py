"""Time this checkout of Flow against an earlier commit, on the same workloads, alternately.

    uv run python benchmarks/versions.py --against f542c8e [-k foreach] [--rounds 4]

Side-by-side ratios against Metaflow (run.py) move with the machine's speed, which changes by
the hour on a shared host; two versions of Flow timed in turn, minutes apart, show what a
change itself costs. The earlier commit is checked out into a temporary git worktree with its
own environment (``uv sync``), removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from run import compile_flow_bytecode
from scratch import scratch_folder

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOADS = HERE / "workloads"
MiB = 1024 * 1024


def workload_file(name: str, folder: Path) -> Path:
    path = folder / name
    path.write_text((WORKLOADS / name).read_text().replace("from FRAMEWORK import", "from flow_core import"))
    return path


def run_flow(python: str, name: str, env: dict[str, str], *options: str) -> str:
    """Run a workload flow in a fresh folder with ``python``; return what it printed."""
    with scratch_folder(prefix="flow-versions-") as folder:
        workload_file(name, folder)
        full_env = {**os.environ, **env, "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(folder / ".flow"),
                    "METAFLOW_HOME": str(folder / "config"), "METAFLOW_USER": "bench"}
        return subprocess.run([python, "-m", "flow_core", "run", name, *options], cwd=folder, env=full_env,
                              check=True, capture_output=True, text=True).stdout


def whole_run(name: str, env: dict[str, str] | None = None, *options: str) -> Callable[[str], float]:
    """The wall time of ``flow run`` of a workload, start to exit."""
    def measure(python: str) -> float:
        started = time.perf_counter()
        run_flow(python, name, env or {}, *options)
        return time.perf_counter() - started

    return measure


def foreach(width: int, workers: int | None) -> Callable[[str], float]:
    return whole_run("foreach.py", {"BENCH_WIDTH": str(width)}, "--max-num-splits", "100000",
                     *(["--max-workers", str(workers)] if workers else []))


def artifact(kind: str, size: int) -> Callable[[str], float]:
    """Save + load of one artifact, less the same for a tiny one (as run.py measures it)."""

    def seconds(python: str, value_size: int) -> float:
        output = run_flow(python, "artifact.py", {"BENCH_KIND": kind, "BENCH_SIZE": str(value_size)})
        return float(output.split("BENCH_SECONDS", 1)[1].split()[0])

    return lambda python: max(0.0, seconds(python, size) - seconds(python, 8))


WORKLOADS_BY_NAME = {
    "hello (2 steps)": whole_run("hello.py"),
    "foreach 1000": foreach(1000, None),
    "foreach 1000, 2 workers": foreach(1000, 2),
    "128 MiB array save+load": artifact("array", 128 * MiB),
    "1 GiB array save+load": artifact("array", 1024 * MiB),
    "1e6-entry dict save+load": artifact("dict", 1_000_000),
    "array + dict: whole run": whole_run("artifact_pair.py"),
}


def earlier_checkout(rev: str, folder: Path) -> str:
    """A worktree of ``rev`` with its own environment; the path of its interpreter."""
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(folder), rev], cwd=REPO, check=True)
    subprocess.run(["uv", "sync", "--all-packages", "--quiet"], cwd=folder, check=True)
    python = str(folder / ".venv" / "bin" / "python")
    compile_flow_bytecode(python, folder)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("-k", "--only", default="", help="run the workloads whose name contains this")
    parser.add_argument("-r", "--rounds", type=int, default=4)
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="flow-earlier-")) / "checkout"
    try:
        pythons = {options.against: earlier_checkout(options.against, folder), "this checkout": sys.executable}
        compile_flow_bytecode()
        for name, measure in WORKLOADS_BY_NAME.items():
            if options.only not in name:
                continue
            times: dict[str, list[float]] = {label: [] for label in pythons}
            for _ in range(options.rounds):
                for label, python in pythons.items():  # in turn, so drift in the machine hits both alike
                    times[label].append(measure(python))
            before, after = (statistics.median(times[label]) for label in pythons)
            print(f"{name:<26} {options.against}: {before:7.3f} s   this checkout: {after:7.3f} s   "
                  f"after/before {after / before:.2f}", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO, check=False)
        shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
