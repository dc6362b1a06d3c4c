"""End to end: real containers started by moto's Batch on a Docker engine of the tests' own,
fetching their code package from SeaweedFS, with local metadata on the laptop's side."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
from flow_core.testing import run_id_of

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

#: Every task's artifacts (name -> value) and where it ran, through the Client API.
READ_RUN = """
import json, sys
from flow_core import Flow, namespace
namespace(None)
run = Flow(sys.argv[1])[sys.argv[2]]
tasks = {}
for step in run:
    for task in step:
        key = f"{step.id}/{task.index if task.index is not None else ''}"
        tasks[key] = {
            "data": {a.id: repr(a.data) for a in task if not a.id.startswith("_")},
            "python": task.metadata_dict.get("python-version"),
            "stdout": task.stdout,
        }
print(json.dumps({"successful": run.successful, "tasks": tasks}))
"""


def read_run(flow_env, flow_name: str, run_id: str) -> dict:
    result = subprocess.run([sys.executable, "-c", READ_RUN, flow_name, run_id], env={**os.environ, **flow_env},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def container_python(docker_engine, image: str) -> str:
    return docker_engine.docker("run", "--rm", "--network", "host", image, "python3", "-c",
                                "import platform; print(platform.python_version())", text=True).stdout.strip()


def test_fanout_on_batch_matches_a_local_run_and_ran_only_in_containers(batch_env, flow_cli, flow_env,
                                                                         docker_engine, task_image):
    on_batch = flow_cli("run", str(EXAMPLES / "fanout.py"), "--compute", "batch", timeout=600)
    assert on_batch.returncode == 0, on_batch.stdout + on_batch.stderr
    # The job's own output, streamed back from CloudWatch Logs into the task's lines.
    assert re.search(r"\[\d+/count/\d+\] sentence 1: 2 words", on_batch.stdout), on_batch.stdout
    local = flow_cli("run", str(EXAMPLES / "fanout.py"), env={"METAFLOW_DEFAULT_COMPUTE": "local"})
    assert local.returncode == 0, local.stderr

    remote_id, local_id = run_id_of(on_batch.stdout), run_id_of(local.stdout)
    remote_run, local_run = read_run(flow_env, "FanOutFlow", remote_id), read_run(flow_env, "FanOutFlow", local_id)
    assert remote_run["successful"] and local_run["successful"]
    # The same artifacts, but for the run id in the note the flow writes.
    assert json.dumps({k: t["data"] for k, t in remote_run["tasks"].items()}).replace(f"run {remote_id}", "run N") \
        == json.dumps({k: t["data"] for k, t in local_run["tasks"].items()}).replace(f"run {local_id}", "run N")
    assert remote_run["tasks"]["end/"]["data"]["total"] == "9"
    assert remote_run["tasks"]["count/1"]["stdout"] == "sentence 1: 2 words\n"

    # Each task ran in the image (whose Python is Debian's, not this one), one Batch job each.
    image_python = container_python(docker_engine, task_image)
    assert image_python and image_python != local_run["tasks"]["end/"]["python"]
    assert {t["python"] for t in remote_run["tasks"].values()} == {image_python}
    jobs = boto3.client("batch").list_jobs(jobQueue=batch_env["METAFLOW_BATCH_JOB_QUEUE"], jobStatus="SUCCEEDED")
    assert len(jobs["jobSummaryList"]) == len(remote_run["tasks"])
    # The image holds no Flow code: the tasks had only what the code package brought.
    probe = docker_engine.docker("run", "--rm", "--network", "host", task_image, "python3", "-c", "import flow_core",
                                 check=False, text=True)
    assert probe.returncode != 0 and "No module named 'flow_core'" in probe.stderr


HYBRID_FLOW = """
import os

from flow_core import FlowSpec, batch, step


class Hybrid(FlowSpec):
    @step
    def start(self):
        self.numbers = list(range(10))
        self.next(self.square)

    @batch(cpu=1, memory=512)
    @step
    def square(self):
        self.squares = [n * n for n in self.numbers]
        self.in_batch_job = "AWS_BATCH_JOB_ID" in os.environ
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.squares)
        print("total", self.total)
"""


def test_a_hybrid_run_sends_only_the_batch_step_and_matches_an_all_local_run(batch_env, flow_cli, flow_env,
                                                                          write_flow, moto_containers):
    moto_containers.hold_job_states(1)
    try:
        hybrid = flow_cli("run", str(write_flow("hybrid.py", HYBRID_FLOW)), timeout=600)
    finally:
        moto_containers.hold_job_states(None)
    assert hybrid.returncode == 0, hybrid.stdout + hybrid.stderr
    lines = hybrid.stdout.splitlines()
    # Batch's states, in order, as lines of the one task that went there, and no other.
    states = [re.search(r"status (\w+)", line).group(1) for line in lines if "(status " in line]
    assert all("/square/" in line for line in lines if "(status " in line)
    assert [s for s in states if s != "PENDING"] == ["SUBMITTED", "RUNNABLE", "STARTING", "RUNNING"], states

    all_local = flow_cli("run", str(write_flow("all_local.py", HYBRID_FLOW.replace("@batch(cpu=1, memory=512)", ""))))
    assert all_local.returncode == 0, all_local.stderr
    mixed = read_run(flow_env, "Hybrid", run_id_of(hybrid.stdout))["tasks"]
    local = read_run(flow_env, "Hybrid", run_id_of(all_local.stdout))["tasks"]
    assert [mixed[k]["data"].pop("in_batch_job") for k in ("square/", "end/")] == ["True", "True"]
    assert [local[k]["data"].pop("in_batch_job") for k in ("square/", "end/")] == ["False", "False"]
    assert mixed["end/"]["data"]["total"] == "285"
    assert {k: t["data"] for k, t in mixed.items()} == {k: t["data"] for k, t in local.items()}
    assert mixed["square/"]["python"] != local["square/"]["python"] == mixed["start/"]["python"]


FAILING_FLOW = """
from flow_core import FlowSpec, batch, step


class Fails(FlowSpec):
    @step
    def start(self):
        self.next(self.boom)

    @batch
    @step
    def boom(self):
        raise ValueError("no good on Batch")
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_failing_batch_task_reports_its_exception_and_the_failed_job(batch_env, flow_cli, write_flow):
    result = flow_cli("run", str(write_flow("fails.py", FAILING_FLOW)), timeout=600)
    assert result.returncode != 0
    assert "ValueError: no good on Batch" in result.stdout  # the traceback, from CloudWatch Logs
    assert re.search(r"\[\d+/boom/\d+\] AWS Batch job [\w-]+ failed: ", result.stderr), result.stderr
    assert "raised ValueError: no good on Batch" in result.stderr.strip().splitlines()[-1]


SLEEPY_FLOW = """
import time

from flow_core import FlowSpec, step


class Sleepy(FlowSpec):
    @step
    def start(self):
        print("going to sleep", flush=True)
        time.sleep(120)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_ctrl_c_terminates_the_runs_batch_jobs(batch_env, flow_env, write_flow, docker_engine):
    process = subprocess.Popen([sys.executable, "-m", "flow_core", "run", str(write_flow("sleepy.py", SLEEPY_FLOW)),
                                "--compute", "batch"], env={**os.environ, **flow_env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    seen = []
    for line in process.stdout:  # moto sends a job's logs only when it ends: wait for RUNNING
        seen.append(line)
        if "(status RUNNING)" in line:
            break
    else:
        raise AssertionError("".join(seen) + process.stderr.read())
    deadline = time.monotonic() + 30
    while not docker_engine.docker("ps", "-q", text=True).stdout.strip():  # its container is up
        assert time.monotonic() < deadline, "the job's container never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "was interrupted" in err and "resume" in err
    jobs = boto3.client("batch").list_jobs(jobQueue=batch_env["METAFLOW_BATCH_JOB_QUEUE"], jobStatus="FAILED")
    (job,) = jobs["jobSummaryList"]
    assert job["statusReason"] == "stopped by Flow: the run failed or was interrupted"
    assert docker_engine.docker("ps", "-q", text=True).stdout.strip() == ""  # the container is gone
