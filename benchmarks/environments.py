"""What ``--environment=pypi`` costs on this machine: cold resolve + build, warm reuse, per task.

    .venv/bin/python benchmarks/environments.py                     # about four minutes
    .venv/bin/python benchmarks/environments.py --rounds 3 --repeat 7 --note "quiet machine"

Why: ``@pypi`` puts ``uv pip compile`` (resolve) and ``uv venv`` + ``uv pip install`` (build)
in front of a run the first time, a cache lookup every time after, and a fork server of the
environment's Python in front of its tasks. These are the numbers to weigh those against.
Flow only: Metaflow's ``@pypi`` needs micromamba, which cannot be downloaded here, so the
results file quotes Metaflow's published figures instead of measuring them.

1. Cold: ``python flow.py --environment=pypi environment resolve`` (it resolves and builds),
   whole process, for a step with ``@pypi(packages={"pandas": …, "scikit-learn": …})``, each
   time in a fresh METAFLOW_ENVIRONMENT_CACHE: first with an empty uv cache (UV_CACHE_DIR, so
   index requests and wheel downloads count), then on the uv cache that build filled ("uv
   download cache warm"). Where Python may not write bytecode (PYTHONDONTWRITEBYTECODE), builds
   compile it, which is then most of a cold build with a warm uv cache. The uv caches are
   temporary folders: ~/.cache/uv is not touched.
2. Warm: a second ``run`` of that flow: the time spent in ``PackageEnvironment.prepare`` (the
   console's "resolved before (cached), built before (cached)"), and the whole run against the
   same flow without the decorator under ``--environment=local``. The workspace virtualenv has
   no pandas, so both flows import nothing; a ``--environment=pypi``-only row then runs a step
   that imports pandas and scikit-learn.
3. Per task: a foreach of 10 and of WIDTH trivial tasks under ``@pypi_base`` with one small
   package, against the same flow without the decorator under ``--environment=local``; the
   per-task cost is the slope between the two widths, so fixed costs (prepare, fork servers)
   drop out.

Every measurement is a whole process; repetitions alternate pypi/local and the table shows
medians. The results, with the machine, go to benchmarks/results/environments.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "environments.md"
PANDAS, SKLEARN, SMALL = ("pandas", "3.1.1"), ("scikit-learn", "1.9.1"), ("humanize", "4.17.0")
NARROW = 10  # the smaller foreach; the per-task slope is taken between it and --width


def flow_source(decorator: str, imports: bool = False) -> str:
    """start → end; ``decorator`` goes on start ("" for none)."""
    body = "import pandas, sklearn\n        self.versions = (pandas.__version__, sklearn.__version__)" if imports \
        else "self.value = 1"
    return f'''from flow_core import FlowSpec, step, pypi


class PandasBench(FlowSpec):
    {decorator}
    @step
    def start(self):
        {body}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PandasBench()
'''


def foreach_source(decorator: str) -> str:
    """BENCH_WIDTH trivial tasks and their join; ``decorator`` goes on the class ("" for none)."""
    return f'''import os

from flow_core import FlowSpec, step, pypi_base


{decorator}
class ForeachEnvBench(FlowSpec):
    @step
    def start(self):
        self.items = list(range(int(os.environ["BENCH_WIDTH"])))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.value = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachEnvBench()
'''


PANDAS_DECORATOR = f'@pypi(packages={{"{PANDAS[0]}": "{PANDAS[1]}", "{SKLEARN[0]}": "{SKLEARN[1]}"}})'
SMALL_DECORATOR = f'@pypi_base(packages={{"{SMALL[0]}": "{SMALL[1]}"}})'

#: Runs a flow file as ``python flow.py ARGS`` would, printing the seconds spent in
#: PackageEnvironment.prepare (resolve or cache lookup, build or cache lookup) on stderr.
TIMED_PREPARE = """
import runpy, sys, time
from flow_env.environment import PackageEnvironment
_prepare = PackageEnvironment.prepare
def prepare(self, request):
    started = time.perf_counter()
    try:
        return _prepare(self, request)
    finally:
        print(f"BENCH_PREPARE {time.perf_counter() - started:.6f}", file=sys.stderr, flush=True)
PackageEnvironment.prepare = prepare
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

REPORTED = re.compile(r"Environment \S+ for [^:]+: resolved \d+ packages in ([\d.]+)s, built in ([\d.]+)s")


class Bench:
    """Fresh folders under one scratch folder, and whole-process timing."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.count = 0

    def folder(self, name: str) -> Path:
        self.count += 1
        path = self.scratch / f"{self.count:03}-{name}"
        path.mkdir()
        return path

    def run(self, source: str, args: list[str], env_cache: Path, extra_env: dict[str, str] | None = None,
            timed_prepare: bool = False) -> tuple[float, str]:
        """Seconds of ``python flow.py ARGS`` in a fresh folder and datastore, and its output."""
        folder = self.folder("flow")
        flow = folder / "flow.py"
        flow.write_text(source)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("METAFLOW_") and k not in ("UV_CACHE_DIR", "UV_COMPILE_BYTECODE", "VIRTUAL_ENV")}
        env.update(METAFLOW_HOME=str(folder / "metaflowconfig"), METAFLOW_DATASTORE_SYSROOT_LOCAL=str(folder / "ds"),
                   METAFLOW_ENVIRONMENT_CACHE=str(env_cache), **(extra_env or {}))
        command = [sys.executable, "-c", TIMED_PREPARE, str(flow), *args] if timed_prepare \
            else [sys.executable, str(flow), *args]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        shutil.rmtree(folder / "ds", ignore_errors=True)
        return seconds, result.stdout + result.stderr


def reported_parts(output: str) -> tuple[float, float]:
    """Resolve and build seconds as the console reported them, summed over the environments."""
    found = [(float(r), float(b)) for r, b in REPORTED.findall(output)]
    if not found:
        raise RuntimeError(f"no 'resolved … built …' line in:\n{output[-2000:]}")
    return sum(r for r, _ in found), sum(b for _, b in found)


def prepare_seconds(output: str) -> float:
    return float(output.rsplit("BENCH_PREPARE", 1)[1].split()[0])


# -- the three parts ------------------------------------------------------------------------------


def cold(bench: Bench, rounds: int) -> tuple[dict[str, list[tuple[float, float, float]]], Path]:
    """Whole ``environment resolve`` process, and its reported resolve/build parts, per kind of
    cold; also an environment cache left built for ``warm``."""
    resolve = ["--environment=pypi", "environment", "resolve"]
    source = flow_source(PANDAS_DECORATOR)
    found: dict[str, list[tuple[float, float, float]]] = {"empty": [], "warm_uv": []}
    for index in range(rounds):
        uv_cache = bench.folder("uv-cache")
        for kind in ("empty", "warm_uv"):
            env_cache = bench.folder(f"envs-{kind}")
            seconds, output = bench.run(source, resolve, env_cache, {"UV_CACHE_DIR": str(uv_cache)})
            found[kind].append((seconds, *reported_parts(output)))
            print(f"cold round {index + 1}, {kind}: {seconds:.2f} s ({output.count('Environment ')} environments)",
                  flush=True)
    return found, env_cache


def warm(bench: Bench, repeat: int, as_built: Path) -> dict[str, list[float]]:
    """A run whose environments are built already, against the same flow under local."""
    found: dict[str, list[float]] = {"prepare": [], "pypi": [], "local": [], "import_built": []}
    with_decorator, without = flow_source(PANDAS_DECORATOR), flow_source("")
    for index in range(repeat):
        for mode in (("pypi", "local") if index % 2 == 0 else ("local", "pypi")):
            if mode == "pypi":
                seconds, output = bench.run(with_decorator, ["--environment=pypi", "run"], as_built, timed_prepare=True)
                if "built before (cached)" not in output:
                    raise RuntimeError(f"the warm run built something:\n{output[-2000:]}")
                found["prepare"].append(prepare_seconds(output))
            else:
                seconds, _ = bench.run(without, ["--environment=local", "run"], as_built, timed_prepare=True)
            found[mode].append(seconds)
    importing = flow_source(PANDAS_DECORATOR, imports=True)
    for _ in range(max(2, repeat // 2)):
        found["import_built"].append(bench.run(importing, ["--environment=pypi", "run"], as_built)[0])
    print("warm done", flush=True)
    return found


def per_task(bench: Bench, repeat: int, width: int) -> dict[tuple[str, int], list[float]]:
    """Foreach runs of two widths, pypi and local alternately, in one environment built beforehand."""
    env_cache = bench.folder("envs-small")
    sources = {"pypi": foreach_source(SMALL_DECORATOR), "local": foreach_source("")}
    bench.run(sources["pypi"], ["--environment=pypi", "environment", "resolve"], env_cache)
    found: dict[tuple[str, int], list[float]] = {}
    for index in range(repeat):
        for mode in (("pypi", "local") if index % 2 == 0 else ("local", "pypi")):
            for each in (NARROW, width):
                seconds, _ = bench.run(sources[mode], [f"--environment={mode}", "run"], env_cache,
                                       {"BENCH_WIDTH": str(each)})
                found.setdefault((mode, each), []).append(seconds)
    print("per-task done", flush=True)
    return found


# -- the table ------------------------------------------------------------------------------------


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if abs(seconds) < 1 else f"{seconds:.2f} s"


def signed(seconds: float) -> str:
    return ("+" if seconds >= 0 else "−") + fmt(abs(seconds))


def table(cold_found, warm_found, task_found, width: int) -> list[str]:
    median = statistics.median
    rows = ["| measure | `--environment=pypi` | `--environment=local` | difference |", "|---|---:|---:|---:|"]
    labels = {"empty": "cold, empty uv cache (downloads included)", "warm_uv": "cold, uv download cache warm"}
    for kind, label in labels.items():
        whole, resolved, built = (median(x[i] for x in cold_found[kind]) for i in range(3))
        rows.append(f"| {label}: `environment resolve`, whole process (resolve {fmt(resolved)} + build {fmt(built)}) "
                    f"| {fmt(whole)} | – | – |")
    rows.append(f"| warm second `run`: time in `PackageEnvironment.prepare` | {fmt(median(warm_found['prepare']))} "
                "| – | – |")
    pypi, local = median(warm_found["pypi"]), median(warm_found["local"])
    rows.append(f"| warm second `run`, start → end, no imports: whole run | {fmt(pypi)} | {fmt(local)} "
                f"| {signed(pypi - local)} |")
    rows.append(f"| warm `run`, start imports pandas + sklearn: whole run "
                f"| {fmt(median(warm_found['import_built']))} | n/a (no pandas in the workspace venv) | – |")
    slopes = {}
    for each in (NARROW, width):
        pypi, local = median(task_found[("pypi", each)]), median(task_found[("local", each)])
        rows.append(f"| foreach {each} (@pypi_base with {SMALL[0]}): whole run | {fmt(pypi)} | {fmt(local)} "
                    f"| {signed(pypi - local)} |")
    for mode in ("pypi", "local"):
        slopes[mode] = (median(task_found[(mode, width)]) - median(task_found[(mode, NARROW)])) / (width - NARROW)
    rows.append(f"| per task: (foreach {width} − foreach {NARROW}) / {width - NARROW} | {fmt(slopes['pypi'])} "
                f"| {fmt(slopes['local'])} | {signed(slopes['pypi'] - slopes['local'])} |")
    return rows


def machine(uv_version: str, rounds: int, repeat: int, note: str) -> str:
    bytecode = os.environ.get("PYTHONDONTWRITEBYTECODE") or "unset"
    text = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.system()} {platform.machine()}, {os.cpu_count()} "
            f"cores, Python {platform.python_version()}; flow-core {version('flow-core')}, flow-env "
            f"{version('flow-env')}, {uv_version}; PYTHONDONTWRITEBYTECODE={bytecode}. Cold: median of {rounds} "
            f"rounds; warm and per task: median of {repeat} repetitions, pypi and local alternating.")
    return f"{text} {note}".strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="cold builds of each kind")
    parser.add_argument("--repeat", type=int, default=5, help="warm and per-task repetitions")
    parser.add_argument("--width", type=int, default=100, help="the wider foreach")
    parser.add_argument("--note", default="", help="appended to the machine line (e.g. that it was shared)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.relative_to(HERE.parent)}")
    args = parser.parse_args()

    from flow_env.uv_binary import uv_command

    uv_version = subprocess.run([*uv_command(), "--version"], capture_output=True, text=True).stdout.split("(")[0]
    scratch = Path(tempfile.mkdtemp(prefix="flow-bench-env-"))
    try:
        bench = Bench(scratch)
        cold_found, as_built = cold(bench, args.rounds)
        warm_found = warm(bench, args.repeat, as_built)
        task_found = per_task(bench, args.repeat, args.width)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    header = machine(uv_version.strip(), args.rounds, args.repeat, args.note)
    rows = table(cold_found, warm_found, task_found, args.width)
    print(f"\n{header}\n")
    print("\n".join(rows))
    if not args.no_write:
        RESULTS.write_text(f"# `--environment=pypi` on this machine (`benchmarks/environments.py`)\n\n{header}\n\n"
                           + "\n".join(rows) + "\n\n" + NOTES)
        print(f"\nwritten to {RESULTS}")


#: Written under the table: what the rows mean, and Metaflow's published figures (quoted, not measured).
NOTES = f"""\
Packages: `@pypi(packages={{"{PANDAS[0]}": "{PANDAS[1]}", "{SKLEARN[0]}": "{SKLEARN[1]}"}})` on the start
step. Under `--environment=pypi` the undecorated end step gets an environment of its own with only what
Flow needs (as in Metaflow, every step of a pypi run runs in an environment), so the cold rows resolve and
build two environments; "resolve" and "build" are the times the console reported for them, summed. The
cold uv cache is an empty UV_CACHE_DIR; "uv download cache warm" reuses the one the empty-cache build
filled. The pypi/local comparisons use flows that import nothing, because the workspace virtualenv has
no pandas to import under `--environment=local`.

Reading the rows: a warm run spends milliseconds in `PackageEnvironment.prepare`; what it costs beyond
`--environment=local` is mostly starting a fork server in each environment's Python (the first task of
a step in an environment waits for it), once per distinct environment per run; the start → end flow has
two environments, the foreach one. Both differences move by hundreds of milliseconds between runs of this
script on the shared machine. Where Python may not write bytecode (PYTHONDONTWRITEBYTECODE above),
builds compile the environment's (`flow_env.cache.install_wheels`), which is then most of a cold build
once the wheels are downloaded: without it every task would compile pandas and scikit-learn again as it
imports them (3.4 s a task in an earlier measurement: 6.52 s for the pandas row, against 2.99 s now).
Where Python writes bytecode, builds skip this (about 0.85 s for the same cold build with a warm uv
cache in that measurement), and the first import of each module writes it into the environment.

## Metaflow: quoted figures, not measured here

Metaflow's `@pypi` needs micromamba, which could not be downloaded on this machine, so there is no
Metaflow column. What Metaflow's own threads report (other machines, other flows, other years):

- [Netflix/metaflow#1654](https://github.com/Netflix/metaflow/pull/1654) (2023-12): "timings for
  environment resolving (seconds)" of a benchmark flow's `Bootstrapping virtual environment(s)`:
  111.19, 119.00, 123.63 (pip http cache) and 115.22, 113.97, 117.73 (local paths). The flow's
  packages are not given.
- [Netflix/metaflow#2226](https://github.com/Netflix/metaflow/pull/2226) (2025-01), setting up a
  resolved `@pypi` environment inside a remote task, per task: torch 2.5.1 28.31 s (11.00 s with the
  new fast initializer); matplotlib 3.9.2 13.53 s (5.29 s); seaborn 0.12 + fastapi 0.103.1 +
  scikit-learn 1.6.1 10.04 s (6.02 s).
- [Netflix/metaflow#622](https://github.com/Netflix/metaflow/issues/622) (2021, the conda-based
  `@conda` before micromamba): "For complex environments it can take several minutes (sometimes I wait
  10 minutes) for environments to be resolved and instantiated".
- The Netflix extensions' quickstart ([metaflow-nflx-extensions](https://www.mintlify.com/Netflix/metaflow-nflx-extensions/quickstart))
  shows, as expected output for two `@conda` pandas environments, "Resolving 2 environments ... done in
  27 seconds."

None of these is comparable with the table above as a ratio.
"""


if __name__ == "__main__":
    main()
