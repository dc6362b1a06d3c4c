"""Where one local task's time goes, from fork to commit: cost per task and a profile.

    uv run python benchmarks/task_profile.py                 # cost per task, then a py-spy profile
    uv run python benchmarks/task_profile.py --no-profile    # only the cost per task
    uv run python benchmarks/task_profile.py --width 500 --top 40
    uv run python benchmarks/task_profile.py --floor --faults --no-profile

The cost per task is the slope between a foreach of 10 and one of ``--width`` trivial tasks
(benchmarks/workloads/foreach.py), so the run's start and end drop out: wall time, CPU time
(user and system, the runtime's and every task's, from ``getrusage``) and minor page faults
per task. On a fork-per-task design the page faults matter: each one is a page the task
copies from the warm fork server it was forked from, and on a virtual machine each costs
microseconds of system time.

The profile samples the same run with py-spy (from PyPI, fetched by ``uvx``) and keeps only
the samples taken inside forked tasks other than the join, as the share of their busy
samples each function appears in (inclusive) and the functions the samples ended in (self).
py-spy reaches a short-lived task late, so its first milliseconds are under-sampled: the
profile says where a task's Python time goes, and the cost per task what it all costs.

``--floor`` measures what no task can go below: the warm fork server, built on the same flow,
forking children that exit at once. ``--faults`` records every page fault of a run with
Linux ``perf`` and names the function each of the tasks' faults happened in: which code
copies the server's pages.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch import scratch_folder

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "workloads" / "foreach.py"
#: Where a sampled stack ends when its thread was waiting, not working.
IDLE_FRAMES = ("epoll_wait", "select (", "poll (", "_queue_SimpleQueue_get", "acquire_lock", "cond_timedwait",
               "cond_wait", "sem_clockwait", "futex", "wait (threading.py", "waitpid")
TASK_FRAME = "_child (flow_core/engine/fork_server.py"


def run_foreach(width: int, folder: Path, wrap: list[str] = ()) -> dict[str, float]:
    """Run the foreach workload once; return its wall time and its processes' resource use."""
    flow = folder / "foreach_flow.py"
    flow.write_text(WORKLOAD.read_text().replace("FRAMEWORK", "flow_core"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")},
           "BENCH_WIDTH": str(width), "HOME": str(folder), "USER": "bench", "METAFLOW_USER": "bench"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*wrap, sys.executable, "-m", "flow_core", "--quiet", "run", str(flow),
                    "--max-num-splits", "100000"], cwd=folder, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime,
            "faults": after.ru_minflt - before.ru_minflt}


def fork_floor(forks: int, folder: Path) -> dict[str, float]:
    """Per fork: the CPU of a warm fork server forking a child that exits at once, both sides."""
    flow = folder / "foreach_flow.py"
    flow.write_text(WORKLOAD.read_text().replace("FRAMEWORK", "flow_core"))
    script = f"""
import gc, os, resource, socket, sys
from flow_core.engine.fork_server import ForkServer
ForkServer(socket.socketpair()[0], {str(flow)!r}, "ForeachBench")
gc.freeze(); gc.disable()  # as the server does before it forks
before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
for _ in range({forks}):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
server, child = ([(b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime), b.ru_minflt - a.ru_minflt]
                 for a, b in zip(before, after))
print(server[0], server[1], child[0], child[1])
"""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}, "HOME": str(folder)}
    out = subprocess.run([sys.executable, "-c", script], cwd=folder, env=env, check=True, capture_output=True,
                         text=True).stdout.split()
    server_cpu, server_faults, child_cpu, child_faults = (float(x) / forks for x in out)
    return {"server_cpu": server_cpu, "server_faults": server_faults, "child_cpu": child_cpu,
            "child_faults": child_faults}


def fault_sites(width: int, folder: Path) -> tuple[int, float, collections.Counter]:
    """Record every minor page fault of one run with ``perf``; return (tasks, faults per task,
    faults by the function they happened in), over the tasks that look like the foreach's:
    the runtime, the fork server and the join fault far more and are left out."""
    data = folder / "faults.data"
    run_foreach(width, folder, ["perf", "record", "--quiet", "-e", "minor-faults", "-c", "1", "-o", str(data), "--"])
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "pid,ip,sym"], check=True,
                            capture_output=True, text=True).stdout
    by_pid: dict[str, list[str]] = collections.defaultdict(list)
    for line in script.splitlines():
        pid, _ip, *symbol = line.split(maxsplit=2)
        by_pid[pid].append(symbol[0].strip() if symbol else "?")
    typical = statistics.median(len(symbols) for symbols in by_pid.values())
    tasks = [symbols for symbols in by_pid.values() if len(symbols) <= 3 * typical]
    sites = collections.Counter(symbol for symbols in tasks for symbol in symbols)
    return len(tasks), sum(sites.values()) / len(tasks), sites


def per_task_cost(width: int, rounds: int) -> dict[str, float]:
    """Median over rounds of (run of ``width`` tasks - run of 10 tasks) / (width - 10)."""
    slopes: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(rounds):
        measured = {}
        for count in (10, width):
            with scratch_folder(prefix="flow-task-profile-") as folder:
                measured[count] = run_foreach(count, folder)
        for key in measured[width]:
            slopes[key].append((measured[width][key] - measured[10][key]) / (width - 10))
    return {key: statistics.median(values) for key, values in slopes.items()}


def profile(width: int, rate: int) -> str:
    folder = Path(tempfile.mkdtemp(prefix="flow-task-profile-"))
    try:
        raw = folder / "profile.txt"
        run_foreach(width, folder, ["uvx", "py-spy", "record", "--subprocesses", "--rate", str(rate),
                                    "--format", "raw", "--output", str(raw), "--"])
        return raw.read_text()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def task_samples(raw: str, skip: str) -> tuple[int, int, collections.Counter, collections.Counter]:
    """(tasks, busy samples inside them, inclusive counts, self counts by function), leaving
    out every task with a sample naming ``skip`` (the join, whose reading of every input
    would otherwise outweigh the per-task path)."""
    by_task: dict[str, list[tuple[list[str], int]]] = collections.defaultdict(list)
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        start = next((i for i, frame in enumerate(frames) if TASK_FRAME in frame), None)
        if start is None:
            continue
        process = [frame for frame in frames[:start] if frame.startswith("process ")][-1]
        by_task[process].append((frames[start:], int(count)))
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    busy = tasks = 0
    for samples in by_task.values():
        if skip and any(skip in frame for frames, _ in samples for frame in frames):
            continue
        tasks += 1
        for frames, n in samples:
            if any(idle in frames[-1] for idle in IDLE_FRAMES):
                continue
            busy += n
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    return tasks, busy, inclusive, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=300, help="tasks in the measured foreach")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the cost measurement")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--floor", action="store_true", help="also measure a bare fork of the warm server")
    parser.add_argument("--faults", action="store_true", help="also name where tasks fault (Linux perf)")
    parser.add_argument("--skip", default="join (foreach_flow.py",
                        help="leave out the tasks with a sample naming this ('' keeps every task)")
    options = parser.parse_args()

    cost = per_task_cost(options.width, options.rounds)
    print(f"per task ({options.width} vs 10 tasks, median of {options.rounds}; load {os.getloadavg()[0]:.1f}): "
          f"wall {cost['wall'] * 1e3:.2f} ms, CPU {(cost['user'] + cost['sys']) * 1e3:.2f} ms "
          f"(user {cost['user'] * 1e3:.2f}, system {cost['sys'] * 1e3:.2f}), {cost['faults']:.0f} page faults")
    if options.floor:
        with tempfile.TemporaryDirectory(prefix="flow-task-profile-") as folder:
            floor = fork_floor(500, Path(folder))
        print(f"\nfloor, a bare fork of the warm server: CPU {(floor['server_cpu'] + floor['child_cpu']) * 1e3:.2f} ms "
              f"(server {floor['server_cpu'] * 1e3:.2f}, child {floor['child_cpu'] * 1e3:.2f}), "
              f"{floor['server_faults'] + floor['child_faults']:.0f} page faults "
              f"(server {floor['server_faults']:.0f}, child {floor['child_faults']:.0f})")
    if options.faults:
        if shutil.which("perf") is None:
            raise SystemExit("--faults needs Linux perf on the PATH (Debian: apt install linux-perf)")
        with tempfile.TemporaryDirectory(prefix="flow-task-profile-") as folder:
            tasks, per_task, sites = fault_sites(options.width, Path(folder))
        total = sum(sites.values())
        print(f"\n{per_task:.0f} page faults per task over {tasks} tasks, by the function they happened in:")
        for symbol, n in sites.most_common(options.top):
            print(f"  {100 * n / total:5.1f}%  {n / tasks:6.1f}  {symbol}")
    if options.no_profile:
        return
    tasks, busy, inclusive, own = task_samples(profile(options.width, options.rate), options.skip)
    if not busy:
        raise SystemExit("py-spy recorded no samples inside tasks (is ptrace allowed here?)")
    print(f"\n{busy} busy samples inside {tasks} sampled tasks. Inclusive share:")
    for frame, n in inclusive.most_common(options.top):
        print(f"  {100 * n / busy:5.1f}%  {frame}")
    print("\nSelf share:")
    for frame, n in own.most_common(options.top // 2):
        print(f"  {100 * n / busy:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
