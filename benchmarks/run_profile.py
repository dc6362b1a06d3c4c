"""Where a local run's time goes: the run's timeline and each step's Python profile.

    uv run python benchmarks/run_profile.py pair              # 128 MiB array + 1e6 dict, start -> end
    uv run python benchmarks/run_profile.py foreach --width 300
    uv run python benchmarks/run_profile.py pair --top 25

The flow runs in a process that wraps ``TaskRunner.run`` in cProfile before anything else
happens. The local compute forks its fork server from that process and every task from the
server, so each task inherits the wrapper: the profile covers a task from the moment its
runner starts to its commit, with nothing started or attached from outside (py-spy reaches a
forked task too late to see its first milliseconds).

The timeline puts the tasks' own start and end times on the run's: what came before the
first task (interpreter start, imports, creating the run, forking the server), what each task
took, and the gaps between them (a task's exit, the runtime noticing it, forking the next).
For ``pair`` it also times the same work as a plain script, the floor under the run.

cProfile adds a little to every Python call, so trust the shares more than the milliseconds
of call-heavy code; C calls that do the real work (pickle, hashing, I/O) are timed as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {"pair": ("artifact_pair.py", "artifact_pair_script.py"), "foreach": ("foreach.py", None)}

#: Runs the flow in this process with every task profiled; its arguments: the folder for the
#: profiles, the flow file, then the flow's command line.
PROFILED_RUN = '''
import cProfile, json, os, runpy, sys, time
started = time.time()
out, flow = sys.argv[1], sys.argv[2]
from flow_core.engine import task as task_module

unprofiled = task_module.TaskRunner.run

def profiled(self):
    began = time.time()
    profiler = cProfile.Profile()
    try:
        return profiler.runcall(unprofiled, self)
    finally:
        name = f"{self.args.step_name}.{os.getpid()}"
        profiler.dump_stats(os.path.join(out, name + ".prof"))
        with open(os.path.join(out, name + ".json"), "w") as fh:
            json.dump({"step": self.args.step_name, "began": began, "ended": time.time()}, fh)

task_module.TaskRunner.run = profiled
sys.argv = [flow, *sys.argv[3:]]
try:
    runpy.run_path(flow, run_name="__main__")
finally:
    with open(os.path.join(out, "run.json"), "w") as fh:
        json.dump({"started": started, "ended": time.time()}, fh)
'''


def run_profiled(workload: str, folder: Path, width: int) -> float:
    """Run the workload's flow with every task profiled; return when the command was launched."""
    flow_file, _ = WORKLOADS[workload]
    flow = folder / flow_file
    flow.write_text((HERE / "workloads" / flow_file).read_text().replace("FRAMEWORK", "flow_core"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")},
           "BENCH_WIDTH": str(width), "HOME": str(folder), "USER": "bench", "METAFLOW_USER": "bench"}
    began = time.time()
    subprocess.run([sys.executable, "-c", PROFILED_RUN, str(folder / "profiles"), str(flow), "--quiet", "run",
                    "--max-num-splits", "100000"], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    return began


def plain_script_seconds(workload: str, folder: Path) -> float | None:
    _, script = WORKLOADS[workload]
    if script is None:
        return None
    path = folder / script
    path.write_text((HERE / "workloads" / script).read_text())
    began = time.perf_counter()
    subprocess.run([sys.executable, str(path)], cwd=folder, check=True)
    return time.perf_counter() - began


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def timeline(profiles: Path, launched: float) -> list[dict]:
    """The tasks in the order they began, with the run's own start and end around them."""
    run = {**json.loads((profiles / "run.json").read_text()), "launched": launched}
    tasks = sorted((json.loads(p.read_text()) for p in profiles.glob("*.*.json")), key=lambda t: t["began"])
    print("Timeline (seconds from launching the command):")
    print(f"  {'interpreter up, profiling wrapper in':<46}{ms(run['started'] - run['launched'])}")
    if len(tasks) <= 12:
        previous = run["started"]
        for task in tasks:
            print(f"  {'until ' + task['step'] + ' begins':<46}{ms(task['began'] - previous)}")
            print(f"  {task['step'] + ' runs (TaskRunner.run)':<46}{ms(task['ended'] - task['began'])}")
            previous = task["ended"]
        print(f"  {'last task ended -> command returned':<46}{ms(run['ended'] - previous)}")
    else:
        busy = sum(t["ended"] - t["began"] for t in tasks)
        print(f"  {'until the first task begins':<46}{ms(tasks[0]['began'] - run['started'])}")
        print(f"  {f'{len(tasks)} tasks, inside TaskRunner.run, mean':<46}{ms(busy / len(tasks))}")
        print(f"  {'first task begins -> last task ends':<46}{ms(tasks[-1]['ended'] - tasks[0]['began'])}")
        print(f"  {'last task ended -> command returned':<46}{ms(run['ended'] - tasks[-1]['ended'])}")
    print(f"  {'whole command':<46}{ms(run['ended'] - run['launched'])}")
    return tasks


def step_profiles(profiles: Path, tasks: list[dict], top: int) -> None:
    """Per step, the functions with the most time per task: cumulative, then own."""
    steps = list(dict.fromkeys(t["step"] for t in tasks))
    for step in steps:
        files = sorted(str(p) for p in profiles.glob(f"{step}.*.prof"))
        stats = pstats.Stats(*files)
        count = len(files)
        total = sum(t["ended"] - t["began"] for t in tasks if t["step"] == step) / count
        print(f"\nStep {step}: {count} task(s), {total * 1000:.1f} ms each inside TaskRunner.run")
        rows = stats.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, callers)}
        for title, column in (("cumulative", 3), ("own", 2)):
            print(f"  by {title} time, per task:")
            for key, row in sorted(rows.items(), key=lambda item: item[1][column], reverse=True)[:top]:
                file, line, name = key
                where = f"{Path(file).name}:{line}" if line else "~"
                print(f"    {row[column] / count * 1000:8.2f} ms  {row[1] / count:7.0f} calls  {name} ({where})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--width", type=int, default=300, help="foreach: how many tasks")
    parser.add_argument("--top", type=int, default=15, help="functions listed per step and ordering")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="flow-run-profile-"))
    try:
        (folder / "profiles").mkdir()
        launched = run_profiled(options.workload, folder, options.width)
        tasks = timeline(folder / "profiles", launched)
        floor = plain_script_seconds(options.workload, folder)
        if floor is not None:
            print(f"  {'the same work as a plain script':<46}{ms(floor)}")
        step_profiles(folder / "profiles", tasks, options.top)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
