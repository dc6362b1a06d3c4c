"""Compiling a flow for AWS Step Functions on Flow beside Metaflow: `step-functions create --only-json`.

    uv run python benchmarks/sfn_compile.py              # three rounds
    uv run python benchmarks/sfn_compile.py --rounds 5   # medians of five

Two flows, written once with ``FRAMEWORK`` where the import goes: 100 linear steps, and a
foreach inside a foreach whose body branches in two. For each, on both frameworks, alternately,
in fresh folders on fresh S3 prefixes: the wall time of the whole
``python flow.py step-functions create --only-json`` process (median of the rounds), and from
the JSON it prints: the number of states (those inside Parallel branches and Map iterators
counted too), the largest per-task payload a Task state submits to Batch and the size of the
definition (compact JSON, as the 1 MiB Step Functions limit counts it).

The per-task payload is what each framework varies per submission. Flow puts the task command
in a job definition registered per step and submits only its short Batch ``Parameters``;
Metaflow submits the command and the environment in ``ContainerOverrides`` (AWS Batch refuses
overrides over 8 KiB: Metaflow issues 977, 1326, 1482). Both are measured as written in the
definition, JSONPath expressions unexpanded. The whole ``submitJob`` request of the largest
Task state is shown beside it.

Metaflow comes from PyPI into benchmarks/.venv-metaflow (run.py's helper). Its ``--only-json``
still uploads the code package to S3, asks Step Functions whether the state machine exists (for
the production token) and registers Batch job definitions: the script starts SeaweedFS (S3) and
moto in server mode (Step Functions, Batch, IAM) on loopback and points both frameworks at them
with the same environment. Flow makes no AWS request. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KiB = 1024
ACCOUNT = "123456789012"

LINEAR_STEPS = 100


def linear_source(steps: int = LINEAR_STEPS) -> str:
    """start, step_001 … step_098, end: ``steps`` steps in a line."""
    names = ["start", *(f"step_{i:03}" for i in range(1, steps - 1)), "end"]
    lines = ["from FRAMEWORK import FlowSpec, Parameter, step", "", "",
             "class LinearBench(FlowSpec):", '    alpha = Parameter("alpha", default=2)', ""]
    for name, following in zip(names, [*names[1:], None]):
        lines += ["    @step", f"    def {name}(self):"]
        lines += [f"        self.next(self.{following})" if following else "        pass", ""]
    lines += ["", 'if __name__ == "__main__":', "    LinearBench()", ""]
    return "\n".join(lines)


NESTED_FOREACH = '''\
from FRAMEWORK import FlowSpec, Parameter, step


class NestedForeachBench(FlowSpec):
    alpha = Parameter("alpha", default=2)

    @step
    def start(self):
        self.outer_items = [1, 2, 3]
        self.next(self.outer, foreach="outer_items")

    @step
    def outer(self):
        self.inner_items = [self.input * 10 + i for i in range(4)]
        self.next(self.inner, foreach="inner_items")

    @step
    def inner(self):
        self.value = self.input
        self.next(self.left, self.right)

    @step
    def left(self):
        self.part = self.value * self.alpha
        self.next(self.mix)

    @step
    def right(self):
        self.part = self.value + self.alpha
        self.next(self.mix)

    @step
    def mix(self, inputs):
        self.value = sum(i.part for i in inputs)
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.value = sum(i.value for i in inputs)
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    NestedForeachBench()
'''

FLOWS = [
    (f"linear, {LINEAR_STEPS} steps", "linear_bench.py", linear_source()),
    ("nested foreach + branch", "nested_foreach_bench.py", NESTED_FOREACH),
]


# -- reading a definition -----------------------------------------------------------------------


def compact_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def all_states(states: dict) -> list[dict]:
    """Every state, those inside Parallel branches and Map iterators (either spelling) too."""
    found = []
    for state in states.values():
        found.append(state)
        for branch in state.get("Branches", []):
            found += all_states(branch["States"])
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found += all_states(state[key]["States"])
    return found


def batch_tasks(states: dict) -> list[dict]:
    return [s for s in all_states(states) if s.get("Type") == "Task" and ":batch:submitJob" in s.get("Resource", "")]


def measures(definition: dict, framework: str) -> dict[str, int]:
    tasks = batch_tasks(definition["States"])
    payload_key = "Parameters" if framework == "Flow" else "ContainerOverrides"
    return {
        "states": len(all_states(definition["States"])),
        "batch_tasks": len(tasks),
        "payload": max(compact_size(t["Parameters"].get(payload_key, {})) for t in tasks),
        "submit": max(compact_size(t["Parameters"]) for t in tasks),
        "definition": compact_size(definition),
    }


# -- running one create ---------------------------------------------------------------------------


def aws_requests(moto_log: Path) -> int:
    """How many requests moto has answered so far (its log has a line for each)."""
    with open(moto_log, errors="replace") as log:
        return sum(" HTTP/1." in line for line in log)


def create_only_json(framework, name: str, source: str, services: dict[str, str],
                     moto_log: Path) -> tuple[float, dict, int]:
    """Seconds of the whole command, the definition it printed and the number of AWS API
    requests it made; raises with Metaflow's or Flow's own last words when the command fails."""
    from run import fresh_folder

    with fresh_folder() as folder:
        path = folder / name
        path.write_text(source.replace("FRAMEWORK", framework.module))
        env = {**framework.environment(folder), **services,
               "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://bench/{framework.module}-{time.time_ns()}"}
        command = [framework.python, str(path), *framework.run_prefix, "step-functions", "create", "--only-json"]
        requests_before = aws_requests(moto_log)
        started = time.perf_counter()
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        requests = aws_requests(moto_log) - requests_before
        if result.returncode != 0:
            raise CreateFailed(f"exit code {result.returncode}\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}")
        start = result.stdout.find("{")
        if start < 0:
            raise CreateFailed(f"no JSON on stdout:\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}")
        return seconds, json.loads(result.stdout[start:]), requests


class CreateFailed(RuntimeError):
    pass


def services_environment(s3_endpoint: str, moto) -> dict[str, str]:
    """What both frameworks get: S3 on SeaweedFS, every other AWS service on moto, and the
    settings Metaflow's Step Functions compiler asks for (Flow reads only the first four)."""
    return {
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_BATCH_JOB_QUEUE": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "METAFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        **moto.client_environment(),
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "METAFLOW_SFN_IAM_ROLE": f"arn:aws:iam::{ACCOUNT}:role/bench-sfn",
        "METAFLOW_ECS_S3_ACCESS_IAM_ROLE": f"arn:aws:iam::{ACCOUNT}:role/bench-batch-task",
        "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE": f"arn:aws:iam::{ACCOUNT}:role/bench-events",
        "METAFLOW_SFN_DYNAMO_DB_TABLE": "bench-sfn",
        # A deployed flow records its runs in a metadata service, so both are told of one (on a
        # port where nothing listens: neither contacts it while compiling). Metaflow's version
        # check would ask it; Flow makes no such check.
        "METAFLOW_DEFAULT_METADATA": "service",
        "METAFLOW_SERVICE_URL": "http://127.0.0.1:9/api",
        "METAFLOW_SERVICE_VERSION_CHECK": "0",
    }


def make_job_queue(moto) -> None:
    """Metaflow reads the job queue's compute environment (its platform: EC2 or Fargate) before
    registering job definitions, so an unmanaged one will not do: a managed EC2 environment at
    zero vCPUs in moto's default VPC, and the queue on it, with boto3 pointed at moto for this
    call only."""
    import boto3

    saved = dict(os.environ)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      **moto.client_environment())
    try:
        iam, ec2, batch = boto3.client("iam"), boto3.client("ec2"), boto3.client("batch")
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        service_role = iam.create_role(RoleName="bench-batch-service", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        profile = iam.create_instance_profile(InstanceProfileName="bench-ecs-instance")["InstanceProfile"]["Arn"]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:1]
        groups = [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]][:1]
        environment = batch.create_compute_environment(
            computeEnvironmentName="bench-ec2", type="MANAGED", state="ENABLED", serviceRole=service_role,
            computeResources={"type": "EC2", "minvCpus": 0, "desiredvCpus": 0, "maxvCpus": 16,
                              "instanceTypes": ["optimal"], "instanceRole": profile, "subnets": subnets,
                              "securityGroupIds": groups},
        )["computeEnvironmentArn"]
        batch.create_job_queue(jobQueueName="bench", state="ENABLED", priority=1,
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}])
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- the table ------------------------------------------------------------------------------------


def fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_bytes(size: int) -> str:
    return f"{size:,} B" if size < 10 * KiB else f"{size / KiB:.1f} KiB"


def ratio(metaflow: float, flow: float) -> str:
    return f"{metaflow / flow:.1f}x" if flow else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-r", "--rounds", type=int, default=3)
    parser.add_argument("-k", "--only", default="", help="the flows whose name contains this")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from run import compile_flow_bytecode, frameworks, version_of

    from flow_compute_batch.testing import MotoServer
    from flow_datastore_s3.testing import SeaweedS3

    both = frameworks()
    compile_flow_bytecode()
    versions = {f.name: version_of(f) for f in both}
    scratch = Path(tempfile.mkdtemp(prefix="flow-bench-sfn-"))
    s3 = SeaweedS3(scratch / "s3").start()
    moto = MotoServer(scratch / "moto.log").start()
    rows, failures = [], []
    try:
        s3.create_bucket("bench")
        make_job_queue(moto)
        services = services_environment(s3.endpoint_url, moto)
        for label, name, source in FLOWS:
            if args.only not in label:
                continue
            seconds: dict[str, list[float]] = {f.name: [] for f in both}
            shape: dict[str, dict[str, int]] = {}
            failed: dict[str, str] = {}
            for round_index in range(args.rounds):
                for framework in (both if round_index % 2 == 0 else both[::-1]):
                    if framework.name in failed:
                        continue
                    try:
                        elapsed, definition, requests = create_only_json(framework, name, source, services,
                                                                         moto.log_path)
                    except CreateFailed as error:
                        failed[framework.name] = str(error)
                        failures.append((label, framework.name, str(error)))
                        print(f"{label}: {framework.name} failed: {error}", flush=True)
                        continue
                    seconds[framework.name].append(elapsed)
                    shape[framework.name] = {**measures(definition, framework.name), "requests": requests}
            rows += table_rows(label, seconds, shape, failed)
            print("\n".join(rows[-6:]), flush=True)
    finally:
        moto.stop()
        s3.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nMeasured {time.strftime('%Y-%m-%d')} on {machine}; flow-core {versions['Flow']}, "
          f"Metaflow {versions['Metaflow']}; {args.rounds} rounds, alternating.\n")
    print("| flow: measure | Flow | Metaflow | Metaflow / Flow |\n|---|---:|---:|---:|")
    print("\n".join(rows))
    for label, framework, error in failures:
        print(f"\n{label}: {framework} failed:\n{error}")


def table_rows(label: str, seconds: dict[str, list[float]], shape: dict[str, dict[str, int]],
               failed: dict[str, str]) -> list[str]:
    def cell(name: str, value: str) -> str:
        return f"fails ({last_line(failed[name])})" if name in failed else value

    times = {n: statistics.median(seconds[n]) for n in ("Flow", "Metaflow") if seconds[n] and n not in failed}
    quotient = ratio(times["Metaflow"], times["Flow"]) if len(times) == 2 else "–"
    rows = [f"| {label}: `create --only-json` | {cell('Flow', fmt_seconds(times.get('Flow', 0)))} "
            f"| {cell('Metaflow', fmt_seconds(times.get('Metaflow', 0)))} | {quotient} |"]
    for key, title, show in [
        ("states", "states (Batch Task states)", None),
        ("payload", "largest per-task payload", fmt_bytes),
        ("submit", "largest Task state's whole `submitJob` parameters", fmt_bytes),
        ("definition", "definition, compact JSON", fmt_bytes),
        ("requests", "AWS API requests made", str),
    ]:
        values = {n: shape[n][key] for n in shape if n not in failed}
        text = {n: (f"{values[n]} ({shape[n]['batch_tasks']})" if key == "states" else show(values[n]))
                for n in values}
        cells = [cell(n, text.get(n, "")) for n in ("Flow", "Metaflow")]
        quotient = ratio(values["Metaflow"], values["Flow"]) if len(values) == 2 else "–"
        rows.append(f"| {label}: {title} | {cells[0]} | {cells[1]} | {quotient} |")
    return rows


def last_line(error: str) -> str:
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    return re.sub(r"\s+", " ", lines[-1])[:200] if lines else "no output"


if __name__ == "__main__":
    main()
