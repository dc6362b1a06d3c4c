"""The ASL constructs Flow's Step Functions compiler emits, run on moto (`MotoSfnServer`) with
Batch in no-container mode (in real containers for the retry test, the one case that needs a
job still running when its state starts waiting) and the state machines' S3 reads on SeaweedFS.

Each test fails on stock moto (the patch it needs is in its docstring); to see it, leave the
patch out: ``FLOW_SFN_MOTO_WITHOUT=batch-parameters,sync-retry,s3-datastore pytest ...``.
"""

from __future__ import annotations

import itertools
import json
import os

import boto3
import pytest
from flow_compute_batch.testing import TaskImage, create_job_queue
from flow_datastore_s3.testing import SeaweedS3

from flow_sched_sfn.testing.moto_sfn import MotoSfnServer, wait_for_execution

#: The key pair every client here uses; SeaweedFS takes any pair, moto ignores it.
CREDENTIALS = ("flow-tests", "flow-tests-secret")
ROLE = "arn:aws:iam::123456789012:role/flow-sfn-tests"
JOB_DEFINITION = "flow-sfn-step"
FLAKY_JOB_DEFINITION = "flow-sfn-flaky"
SUBMIT_SYNC = "arn:aws:states:::batch:submitJob.sync"
_names = itertools.count(1)


def _without() -> tuple[str, ...]:
    """The patches FLOW_SFN_MOTO_WITHOUT leaves out (none unless set)."""
    return tuple(name for name in os.environ.get("FLOW_SFN_MOTO_WITHOUT", "").split(",") if name)


@pytest.fixture(scope="module")
def moto_sfn_no_containers(tmp_path_factory, seaweed):
    with MotoSfnServer(tmp_path_factory.mktemp("sfn-logs") / "moto-sfn.log", seaweed.endpoint_url,
                       s3_credentials=CREDENTIALS, without=_without()) as server:
        yield server


@pytest.fixture(scope="module")
def sfn_image(docker_engine) -> str:
    """Minimal Debian (flow-compute-batch's cached root file system) as an image: a shell is all
    these jobs need."""
    rootfs = TaskImage(docker_engine, [], {}).debian_rootfs()
    docker_engine.docker("import", str(rootfs), "flow-sfn-shell:test")
    return "flow-sfn-shell:test"


@pytest.fixture(scope="module")
def moto_sfn_containers(tmp_path_factory, seaweed, docker_engine):
    """The same, Batch running each job in a container of the test engine."""
    with MotoSfnServer(tmp_path_factory.mktemp("sfn-logs") / "moto-sfn-containers.log", seaweed.endpoint_url,
                       s3_credentials=CREDENTIALS, without=_without(), docker_host=docker_engine.host) as server:
        yield server


class Aws:
    """This test's clients, job queue, job definition and bucket."""

    def __init__(self, seaweed: SeaweedS3):
        self.sfn = boto3.client("stepfunctions")
        self.batch = boto3.client("batch")
        self.s3 = seaweed.client()
        self.queue = create_job_queue()
        self.batch.register_job_definition(
            jobDefinitionName=JOB_DEFINITION, type="container",
            containerProperties={"image": "flow-task", "command": ["flow", "step", "--run-id", "Ref::run_id",
                                                                    "--task-id", "Ref::task_id"],
                                 "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                          {"type": "MEMORY", "value": "512"}]})
        self.bucket = seaweed.create_bucket(f"flow-sfn-{os.getpid()}-{next(_names)}")

    def put_json(self, key: str, value: object) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(value).encode())

    def run(self, states: dict, start_at: str, execution_input: dict | None = None,
            timeout: float = 60.0) -> tuple[dict, str]:
        """Create a state machine, run it once to its end; its description and execution name."""
        number = next(_names)
        machine = self.sfn.create_state_machine(
            name=f"flow-sfn-test-{number}", roleArn=ROLE,
            definition=json.dumps({"StartAt": start_at, "States": states}))["stateMachineArn"]
        name = f"run{number}"
        execution = self.sfn.start_execution(stateMachineArn=machine, name=name,
                                             input=json.dumps(execution_input or {}))["executionArn"]
        described = wait_for_execution(self.sfn, execution, timeout)
        if described["status"] != "SUCCEEDED":
            failed = [event for event in self.sfn.get_execution_history(executionArn=execution)["events"]
                      if event["type"].endswith(("Failed", "TimedOut"))]
            print(json.dumps(failed, indent=1, default=str))
        return described, name

    def jobs(self) -> dict[str, dict]:
        """Every job submitted to the queue, by name (describe_jobs, so with parameters)."""
        ids = [job["jobId"] for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED",
                                           "FAILED")
               for job in self.batch.list_jobs(jobQueue=self.queue, jobStatus=status)["jobSummaryList"]]
        described = self.batch.describe_jobs(jobs=ids)["jobs"] if ids else []
        return {job["jobName"]: job for job in described}


def _configure(moto: MotoSfnServer, seaweed: SeaweedS3, monkeypatch) -> Aws:
    """boto3 pointed at ``moto`` (reset) with the test key pair; nothing reaches real AWS."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for key, value in {"AWS_ACCESS_KEY_ID": CREDENTIALS[0], "AWS_SECRET_ACCESS_KEY": CREDENTIALS[1],
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
                       "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", **moto.client_environment()}.items():
        monkeypatch.setenv(key, value)
    moto.reset()
    return Aws(seaweed)


@pytest.fixture
def aws(moto_sfn_no_containers, seaweed, monkeypatch) -> Aws:
    return _configure(moto_sfn_no_containers, seaweed, monkeypatch)


@pytest.fixture
def container_aws(moto_sfn_containers, sfn_image, seaweed, monkeypatch) -> Aws:
    """As `aws`, on a moto running each job in a container, with a job definition whose job
    fails on its state's first attempt and succeeds on the next."""
    aws = _configure(moto_sfn_containers, seaweed, monkeypatch)
    aws.batch.register_job_definition(
        jobDefinitionName=FLAKY_JOB_DEFINITION, type="container",
        containerProperties={"image": sfn_image, "command": ["sh", "-c", "test Ref::retry_count -ge 1"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "512"}]})
    return aws


# --- State-building helpers, shaped as the README's "How a flow becomes a state machine" ------------

def run_context(next_state: str, **extra: str) -> dict:
    """The first state: the execution's input becomes the run context (plus ``extra`` keys)."""
    return {"Type": "Pass", "Next": next_state,
            "Parameters": {"run_id.$": "States.Format('sfn-{}', $$.Execution.Name)", "stack": "",
                           "parameters.$": "$.parameters", **extra}}


def step(aws: Aws, name: str, parent: str, *, input_paths: str | None = None, next_state: str | None = None,
         **extra) -> dict:
    """A step's Task state: one Batch job, its ids in short Batch Parameters. Its input is
    ``parent``'s task of the same stack, unless ``input_paths`` gives the expression."""
    parameters = {
        "run_id.$": "$.run_id",
        "task_id.$": "States.Format('sfn{}', $.stack)",
        "input_paths.$": input_paths or f"States.Format('{{}}/{parent}/sfn{{}}', $.run_id, $.stack)",
        "retry_count.$": "States.Format('{}', $$.State.RetryCount)",
    }
    state = {"Type": "Task", "Resource": SUBMIT_SYNC, "ResultPath": None,
             "Parameters": {"JobName.$": f"States.Format('{{}}-{name}{{}}', $.run_id, $.stack)",
                            "JobQueue": aws.queue, "JobDefinition": JOB_DEFINITION, "Parameters": parameters},
             **extra}
    state.update({"Next": next_state} if next_state else {"End": True})
    return state


def foreach_body(aws: Aws) -> dict:
    """A foreach's body: one step, each iteration its own stack."""
    return {"StartAt": "body", "States": {"body": step(aws, "body", "start")}}


FOREACH_ITEM_SELECTOR = {"run_id.$": "$.run_id", "stack.$": "States.Format('{}-{}', $.stack, $$.Map.Item.Value)",
                         "parameters": {}}


# --- The tests -------------------------------------------------------------------------------------

def test_submit_job_sync_sends_api_member_names(aws):
    """(i) batch:submitJob.sync with JobName/Parameters from States.Format, $$.Execution.Name and
    $$.State.RetryCount, and nested members (ContainerOverrides.Environment, Timeout). Stock
    moto: States.Runtime, cause 'JobName' (patch batch-parameters)."""
    start = step(aws, "start", "_parameters")
    start["Parameters"]["Parameters"]["parameters.$"] = "States.JsonToString($.parameters)"
    start["Parameters"].update(ContainerOverrides={"Environment": [{"Name": "FLOW_SFN", "Value": "1"}]},
                               Timeout={"AttemptDurationSeconds": 3600})
    described, name = aws.run({"init": run_context("start"), "start": start}, "init",
                              {"parameters": {"alpha": "5"}})
    assert described["status"] == "SUCCEEDED"
    run_id = f"sfn-{name}"
    assert json.loads(described["output"]) == {"run_id": run_id, "stack": "", "parameters": {"alpha": "5"}}
    jobs = aws.jobs()
    assert list(jobs) == [f"{run_id}-start"]
    job = jobs[f"{run_id}-start"]
    assert job["status"] == "SUCCEEDED"
    assert job["parameters"] == {"run_id": run_id, "task_id": "sfn", "input_paths": f"{run_id}/_parameters/sfn",
                                 "retry_count": "0", "parameters": '{"alpha":"5"}'}
    assert job["timeout"] == {"attemptDurationSeconds": 3600}
    environment = {variable["name"]: variable["value"] for variable in job["container"]["environment"]}
    assert environment["FLOW_SFN"] == "1"
    assert environment["MANAGED_BY_AWS"] == "STARTED_BY_STEP_FUNCTIONS"


def test_submit_job_sync_output_is_pascal_case(aws):
    """The .sync result is DescribeJobs' job in PascalCase, as on AWS (ResultSelector picks
    from it). Stock moto: States.Runtime 'JobName' (patch batch-parameters)."""
    start = step(aws, "start", "_parameters")
    start.update(ResultSelector={"name.$": "$.JobName", "status.$": "$.Status", "params.$": "$.Parameters"},
                 ResultPath="$.job")
    described, name = aws.run({"init": run_context("start"), "start": start}, "init", {"parameters": {}})
    assert described["status"] == "SUCCEEDED"
    job = json.loads(described["output"])["job"]
    assert job["name"] == f"sfn-{name}-start"
    assert job["status"] == "SUCCEEDED"
    assert job["params"]["task_id"] == "sfn"


def test_retried_sync_attempt_waits_for_its_own_job(container_aws):
    """A Retry of a .sync Task, its jobs in real containers: the job fails when the attempt's
    $$.State.RetryCount is 0 (``test 0 -ge 1``) and succeeds on the retry. Stock moto: the
    retried attempt ends with States.Timeout as soon as it starts waiting, while its job runs
    and succeeds (patch sync-retry). Batch's no-container mode cannot show it: its jobs have
    ended before the first wait."""
    aws = container_aws
    start = step(aws, "start", "_parameters", Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2,
                                                      "IntervalSeconds": 1, "BackoffRate": 1}])
    start["Parameters"]["JobDefinition"] = FLAKY_JOB_DEFINITION
    described, name = aws.run({"init": run_context("start"), "start": start}, "init", {"parameters": {}},
                              timeout=180)
    assert described["status"] == "SUCCEEDED"
    jobs = aws.batch.describe_jobs(jobs=[job["jobId"] for status in ("FAILED", "SUCCEEDED") for job in
                                         aws.batch.list_jobs(jobQueue=aws.queue, jobStatus=status)["jobSummaryList"]])
    assert sorted((job["jobName"], job["parameters"]["retry_count"], job["status"]) for job in jobs["jobs"]) == [
        (f"sfn-{name}-start", "0", "FAILED"), (f"sfn-{name}-start", "1", "SUCCEEDED")]


def test_get_object_from_the_datastore(aws):
    """(ii) aws-sdk:s3:getObject reads the foreach's count object from SeaweedFS, and
    States.StringToJson($.Body) in a ResultSelector parses it. Stock moto reads its own S3:
    S3.NoSuchBucketException (patch s3-datastore)."""
    aws.put_json("flow/sfn-foreach/counts/start/sfn.json", {"count": 3})
    splits = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
              "Parameters": {"Bucket": aws.bucket, "Key": "flow/sfn-foreach/counts/start/sfn.json"},
              "ResultSelector": {"splits.$": "States.StringToJson($.Body)"}, "ResultPath": "$.foreach", "End": True}
    described, _ = aws.run({"init": run_context("start.splits"), "start.splits": splits}, "init", {"parameters": {}})
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["foreach"] == {"splits": {"count": 3}}


def test_inline_map_over_array_range(aws):
    """(iii) A Pass state builds States.ArrayRange(0, count - 1, 1); an inline Map runs one
    submitJob.sync per item, its ItemSelector giving each iteration its stack from
    $$.Map.Item.Value with States.Format. Stock moto: 'JobName' (patch batch-parameters)."""
    states = {
        "init": run_context("start.items", **{"foreach.$": "$.foreach"}),
        "start.items": {"Type": "Pass", "Next": "start.foreach", "ResultPath": "$.items",
                        "Parameters": {"range.$": "States.ArrayRange(0, States.MathAdd($.foreach.count, -1), 1)"}},
        "start.foreach": {"Type": "Map", "ItemsPath": "$.items.range", "ItemSelector": FOREACH_ITEM_SELECTOR,
                          "MaxConcurrency": 2, "ResultPath": None, "Next": "join",
                          "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **foreach_body(aws)}},
        "join": step(aws, "join", "body", input_paths="States.Format('{}/body/sfn{}-*', $.run_id, $.stack)"),
    }
    described, name = aws.run(states, "init", {"parameters": {}, "foreach": {"count": 3}})
    assert described["status"] == "SUCCEEDED"
    run_id = f"sfn-{name}"
    jobs = aws.jobs()
    assert sorted(jobs) == sorted([f"{run_id}-body-0", f"{run_id}-body-1", f"{run_id}-body-2", f"{run_id}-join"])
    assert {jobs[f"{run_id}-body-{i}"]["parameters"]["task_id"] for i in range(3)} == {"sfn-0", "sfn-1", "sfn-2"}
    assert jobs[f"{run_id}-body-1"]["parameters"]["input_paths"] == f"{run_id}/start/sfn-1"
    assert jobs[f"{run_id}-join"]["parameters"]["task_id"] == "sfn"
    assert jobs[f"{run_id}-join"]["parameters"]["input_paths"] == f"{run_id}/body/sfn-*"


def test_distributed_map_reads_items_from_the_datastore(aws):
    """(iv) A Distributed Map whose ItemReader reads the foreach's items object (a JSON array)
    from SeaweedFS, one child execution per item running a submitJob.sync. Stock moto reads its
    own S3 and fails (patch s3-datastore), and its jobs fail on 'JobName' (patch batch-parameters)."""
    states = {
        "init": run_context("start.foreach"),
        "start.foreach": {
            "Type": "Map", "MaxConcurrency": 2, "ResultPath": None, "End": True,
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                           "Parameters": {"Bucket": aws.bucket,
                                          "Key.$": "States.Format('flow/sfn-foreach/{}/start/sfn{}.items.json', "
                                                   "$.run_id, $.stack)"}},
            "ItemSelector": FOREACH_ITEM_SELECTOR,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                              **foreach_body(aws)},
        },
    }
    name = f"run{next(_names)}"
    # The items object's key holds the run id, which holds the execution's name: start it by name.
    aws.put_json(f"flow/sfn-foreach/sfn-{name}/start/sfn.items.json", [0, 1, 2, 3])
    machine = aws.sfn.create_state_machine(name=f"flow-sfn-test-{name}", roleArn=ROLE,
                                           definition=json.dumps({"StartAt": "init", "States": states}))
    execution = aws.sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name,
                                        input=json.dumps({"parameters": {}}))["executionArn"]
    described = wait_for_execution(aws.sfn, execution)
    assert described["status"] == "SUCCEEDED", described
    run_id = f"sfn-{name}"
    jobs = aws.jobs()
    assert sorted(jobs) == [f"{run_id}-body-{i}" for i in range(4)]
    assert {job["parameters"]["task_id"] for job in jobs.values()} == {f"sfn-{i}" for i in range(4)}


def test_parallel_branches_then_join(aws):
    """(v) A Parallel state with two branches, each a submitJob.sync, then the join.
    Stock moto: 'JobName' (patch batch-parameters)."""
    states = {
        "init": run_context("start.branches"),
        "start.branches": {"Type": "Parallel", "ResultPath": None, "Next": "join",
                           "Branches": [{"StartAt": "a", "States": {"a": step(aws, "a", "start")}},
                                        {"StartAt": "b", "States": {"b": step(aws, "b", "start")}}]},
        "join": step(aws, "join", "a", input_paths="States.Format('{}/a/sfn{},{}/b/sfn{}', $.run_id, $.stack, "
                                                   "$.run_id, $.stack)"),
    }
    described, name = aws.run(states, "init", {"parameters": {}})
    assert described["status"] == "SUCCEEDED"
    run_id = f"sfn-{name}"
    jobs = aws.jobs()
    assert sorted(jobs) == [f"{run_id}-a", f"{run_id}-b", f"{run_id}-join"]
    assert jobs[f"{run_id}-join"]["parameters"]["input_paths"] == f"{run_id}/a/sfn,{run_id}/b/sfn"
    assert json.loads(described["output"])["run_id"] == run_id


@pytest.mark.parametrize(("count", "chosen"), [(3, "narrow"), (5000, "wide")])
def test_choice_on_a_number(aws, count, chosen):
    """(vi) A Choice state on a number (the foreach's width), each way a submitJob.sync.
    Stock moto: 'JobName' (patch batch-parameters)."""
    states = {
        "init": run_context("start.width", **{"foreach.$": "$.foreach"}),
        "start.width": {"Type": "Choice", "Default": "narrow",
                        "Choices": [{"Variable": "$.foreach.count", "NumericGreaterThan": 1000, "Next": "wide"}]},
        "narrow": step(aws, "narrow", "start"),
        "wide": step(aws, "wide", "start"),
    }
    described, name = aws.run(states, "init", {"parameters": {}, "foreach": {"count": count}})
    assert described["status"] == "SUCCEEDED"
    assert list(aws.jobs()) == [f"sfn-{name}-{chosen}"]
