"""The Batch and CloudWatch Logs contract, against moto in server mode with Batch's
no-container mode: what Flow registers and submits, how it polls and reports, and how it
reads logs. (The containers themselves: test_runs_in_containers.py.)"""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from flow_compute_batch.api import BOOTSTRAP_SOURCE
from flow_compute_batch.compute import BatchCompute
from flow_compute_batch.jobs import LOG_GROUP, BatchJobRunner, failure_reason
from flow_core.plugin_api import Backends, Resources, Settings, TaskSpec
from flow_core.testing import last_error

HELLO = """
from flow_core import FlowSpec, step


class Hello(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


class Recorder:
    """Stands where the runtime's event queue does: what the compute backend reported."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.result: tuple[int, str | None] | None = None
        self.done = threading.Event()

    def output(self, spec: TaskSpec, stream: str, line: str) -> None:
        self.lines.append((stream, line))

    def finished(self, spec: TaskSpec, returncode: int, reason: str | None = None) -> None:
        self.result = (returncode, reason)
        self.done.set()

    def job_id(self) -> str:
        (line,) = [line for _, line in self.lines if line.startswith("Submitted as AWS Batch job ")]
        return line.rsplit(" ", 1)[1].rstrip(".")


def run_tasks(compute: BatchCompute, *specs: TaskSpec) -> list[Recorder]:
    recorders = [Recorder() for _ in specs]
    for spec, recorder in zip(specs, recorders):
        compute.launch(spec, recorder)
    for recorder in recorders:
        assert recorder.done.wait(60), recorder.lines
    return recorders


@pytest.fixture
def flow_file(write_flow):
    return write_flow("hello.py", HELLO)


@pytest.fixture
def compute(simple_env):
    backend = BatchCompute.from_settings(Settings(), Backends.configured())
    yield backend
    backend.close()


def task(flow_file, task_id: str = "3", **fields) -> TaskSpec:
    fields.setdefault("environment", {"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_USER": "tester"})
    return TaskSpec(flow_file=str(flow_file), flow_name="Hello", run_id="7", step_name="start", task_id=task_id,
                    input_paths=("7/_parameters/1",), compute="batch", **fields)


def definitions() -> list[dict]:
    found = boto3.client("batch").describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    return [d for d in found if d["jobDefinitionName"].startswith("flow-task-")]


def requirements(definition: dict) -> dict[str, str]:
    return {r["type"]: r["value"] for r in definition["containerProperties"]["resourceRequirements"]}


def test_job_definitions_are_registered_once_per_content_and_reused_by_later_runs(compute, flow_file, simple_env):
    big = Resources(cpu=2, options={"batch": {"memory": 8192, "shared_memory": 256, "image": "example/flow:1"}})
    results = run_tasks(compute, task(flow_file, "3"), task(flow_file, "4"), task(flow_file, "5", resources=big))
    assert [r.result for r in results] == [(0, None)] * 3
    found = definitions()
    assert sorted(requirements(d)["MEMORY"] for d in found) == ["4096", "8192"]
    large = next(d for d in found if requirements(d)["MEMORY"] == "8192")
    assert requirements(large) == {"VCPU": "2", "MEMORY": "8192"}
    assert large["containerProperties"]["image"] == "example/flow:1"
    assert large["containerProperties"]["linuxParameters"]["sharedMemorySize"] == 256

    later_run = BatchCompute.from_settings(Settings(), Backends.configured())
    try:
        run_tasks(later_run, task(flow_file, "9", resources=big))
    finally:
        later_run.close()
    assert len(definitions()) == 2


def test_a_job_carries_the_task_command_its_settings_queue_timeout_and_tags(compute, flow_file, simple_env, seaweed):
    batch = boto3.client("batch")
    environment = batch.describe_compute_environments()["computeEnvironments"][0]["computeEnvironmentArn"]
    batch.create_job_queue(jobQueueName="flow-gpu", state="ENABLED", priority=2,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}])
    spec = task(flow_file, split_index=2, resources=Resources(timeout_seconds=90.5, options={"batch": {"queue": "flow-gpu"}}),
                environment={"METAFLOW_DEFAULT_DATASTORE": "s3", "FLOW_METADATA_THROUGH_DATASTORE": "1"})
    (recorder,) = run_tasks(compute, spec)
    assert recorder.result == (0, None)
    job = batch.describe_jobs(jobs=[recorder.job_id()])["jobs"][0]
    assert job["jobQueue"].endswith("/flow-gpu")
    assert job["timeout"] == {"attemptDurationSeconds": 91}
    assert job["jobName"] == "Hello-7-start-3"
    assert batch.list_tags_for_resource(resourceArn=job["jobArn"])["tags"]["flow:run_id"] == "7"

    command = job["container"]["command"]
    assert command[:3] == ["python3", "-c", BOOTSTRAP_SOURCE]
    url, digest, needs = command[3:6]
    assert command[6] == "--" and command[7:] == spec.command(python="python3", flow_file="flow/hello.py")
    assert "--split-index" in command and "boto3>=1.28" in json.loads(needs)
    bucket, _, key = url.removeprefix("s3://").partition("/")
    assert key == f"flow/code-packages/{digest}.tar.gz"
    assert boto3.client("s3", endpoint_url=seaweed.endpoint_url).head_object(Bucket=bucket, Key=key)
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert env["METAFLOW_DEFAULT_DATASTORE"] == "s3" and env["FLOW_METADATA_THROUGH_DATASTORE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_a_job_batch_fails_fails_the_task_with_a_line_saying_so(failing_env, flow_file):
    compute = BatchCompute.from_settings(Settings(), Backends.configured())
    try:
        (recorder,) = run_tasks(compute, task(flow_file))
    finally:
        compute.close()
    assert recorder.result[0] != 0
    assert ("stderr", f"AWS Batch job {recorder.job_id()} failed: Batch gave no reason") in recorder.lines


def test_log_lines_come_back_once_each_in_order(simple_env):
    logs = boto3.client("logs")
    try:
        logs.create_log_group(logGroupName=LOG_GROUP)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="def/default/job-1")
    runner = BatchJobRunner("flow-tests")

    def put(*lines: str, at: int) -> None:
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName="def/default/job-1",
                            logEvents=[{"timestamp": at + i, "message": m} for i, m in enumerate(lines)])

    assert runner.log_events("def/default/no-such-job", None) == ([], None)
    now = int(time.time() * 1000)
    put("one", "two", "three", at=now)
    lines, token = runner.log_events("def/default/job-1", None)
    assert lines == ["one", "two", "three"]
    assert runner.log_events("def/default/job-1", token)[0] == []
    put("four", "five", at=now + 10)
    assert runner.log_events("def/default/job-1", token)[0] == ["four", "five"]


def test_failure_reason_gives_batchs_words_and_the_exit_code():
    job = {"status": "FAILED", "statusReason": "Essential container in task exited",
           "container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}}
    assert failure_reason(job) == ("Essential container in task exited; OutOfMemoryError: Container killed due "
                                   "to memory usage (exit code 137)")


def test_batch_with_the_local_datastore_is_refused_before_anything_runs(simple_env, flow_cli, flow_file):
    result = flow_cli("run", str(flow_file), "--compute", "batch", env={"METAFLOW_DEFAULT_DATASTORE": "local"})
    assert result.returncode == 1
    assert "Task is starting" not in result.stdout
    assert "cannot reach the local datastore" in last_error(result) and "--datastore s3" in last_error(result)


def test_batch_without_a_job_queue_says_which_setting_to_set(simple_env, flow_cli, flow_file):
    result = flow_cli("run", str(flow_file), "--compute", "batch", env={"METAFLOW_BATCH_JOB_QUEUE": ""})
    assert result.returncode == 1
    assert "Task is starting" not in result.stdout
    assert last_error(result) == ("Error: METAFLOW_BATCH_JOB_QUEUE is not set; set it to the AWS Batch job queue "
                                  "tasks run in")


def test_a_queue_batch_does_not_know_fails_the_task_in_one_sentence(simple_env, flow_cli, flow_file):
    result = flow_cli("run", str(flow_file), "--compute", "batch", env={"METAFLOW_BATCH_JOB_QUEUE": "no-such-queue"})
    assert result.returncode == 1
    assert "AWS refused to submit job Hello-" in last_error(result) and "no-such-queue" in last_error(result)
    assert "Traceback" not in result.stderr
