"""``step-functions create --only-json`` and the checks made before anything is created, none of
which may reach AWS: no AWS endpoint is configured here, so a call would fail the test."""

from __future__ import annotations

import json
import re

import pytest
from flow_core.testing import last_error

from flow_sched_sfn.scheduler import validated_cron

FOREACH_FLOW = """
    from flow_core import FlowSpec, Parameter, batch, resources, retry, schedule, step, timeout


    @schedule(daily=True)
    class Nightly(FlowSpec):
        alpha = Parameter("alpha", default=2)

        @step
        def start(self):
            self.items = [1, 2, 3]
            self.next(self.square, foreach="items")

        @retry(times=2, minutes_between_retries=3)
        @timeout(minutes=10)
        @resources(cpu=2, memory=2048)
        @step
        def square(self):
            self.value = self.input * self.input * self.alpha
            self.next(self.gather)

        @step
        def gather(self, inputs):
            self.total = sum(i.value for i in inputs)
            self.next(self.end)

        @step
        def end(self):
            print("total", self.total)
"""

S3_ONLY = {"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": "s3://flow-bucket/flow",
           "METAFLOW_BATCH_JOB_QUEUE": "flow-queue", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "none", "AWS_SECRET_ACCESS_KEY": "none",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "METAFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9"}


def _tasks(states: dict) -> dict[str, dict]:
    """Every Task state that submits a Batch job, by name, nested states included."""
    found = {}
    for name, state in states.items():
        if state.get("Resource", "").startswith("arn:aws:states:::batch:"):
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(_tasks(branch["States"]))
        if "ItemProcessor" in state:
            found.update(_tasks(state["ItemProcessor"]["States"]))
    return found


def test_only_json_prints_the_machine_with_the_steps_retries_time_limits_and_job_definitions(
        write_flow, flow_cli, asl_validator):
    path = write_flow("nightly.py", FOREACH_FLOW)
    result = flow_cli("step-functions", str(path), "create", "--only-json", env=S3_ONLY)
    assert result.returncode == 0, result.stderr
    machine = json.loads(result.stdout)
    asl_validator.check(machine)

    tasks = _tasks(machine["States"])
    assert {name.split(".")[0] for name in tasks} == {"start", "square", "gather", "end"}
    square = tasks["square"]
    assert square["Retry"][0]["MaxAttempts"] == 2 and square["Retry"][0]["IntervalSeconds"] == 180
    assert square["Parameters"]["Timeout"] == {"AttemptDurationSeconds": 600}
    for name, state in tasks.items():
        assert re.fullmatch(r"flow-step-[0-9a-f]{32}", state["Parameters"]["JobDefinition"]), name
        assert len(json.dumps(state["Parameters"])) < 2048  # ids only: no code, no environment


def test_each_state_fills_exactly_the_placeholders_of_its_steps_job_definition(write_flow, monkeypatch):
    from flow_core.model.loader import load_flow_class
    from flow_core.plugin_api import CliState, FlowTarget, deploy_request

    from flow_sched_sfn.scheduler import StepFunctionsScheduler

    for key, value in S3_ONLY.items():
        monkeypatch.setenv(key, value)
    path = write_flow("nightly.py", FOREACH_FLOW)
    state = CliState(flow=FlowTarget(load_flow_class(str(path), "Nightly"), str(path)))
    compiled = StepFunctionsScheduler(state.backends()).compile(deploy_request(state))
    for name, task in _tasks(compiled.definition["States"]).items():
        step = name.split(".")[0]
        definition_name, properties = compiled.job_definitions[step]
        assert task["Parameters"]["JobDefinition"] == definition_name
        # A placeholder is a whole argument: Batch fills in nothing smaller.
        placeholders = {word[len("Ref::"):] for word in properties["command"] if word.startswith("Ref::")}
        assert not [word for word in properties["command"] if "Ref::" in word and not word.startswith("Ref::")]
        filled = {key.removesuffix(".$") for key in task["Parameters"]["Parameters"]}
        assert filled == placeholders, name
    # The foreach's body is told its index; start also creates the run with its parameters.
    assert "split_index" in {k.removesuffix(".$") for k in _tasks(compiled.definition["States"])["square"]
                             ["Parameters"]["Parameters"]}
    start_command = compiled.job_definitions["start"][1]["command"]
    assert start_command[start_command.index("--") + 1:][:4] == ["python3", "-m", "flow_core", "init"]


def test_only_json_needs_the_s3_datastore_and_says_so(write_flow, flow_cli):
    path = write_flow("nightly.py", FOREACH_FLOW)
    result = flow_cli("step-functions", str(path), "create", "--only-json",
                      env={**S3_ONLY, "METAFLOW_DEFAULT_DATASTORE": "local"})
    assert result.returncode == 1
    assert last_error(result) == ("Error: Step Functions runs keep their data on S3; set "
                                  "METAFLOW_DEFAULT_DATASTORE=s3 and METAFLOW_DATASTORE_SYSROOT_S3")


def test_create_needs_a_metadata_service_every_container_reaches(write_flow, flow_cli):
    path = write_flow("nightly.py", FOREACH_FLOW)
    result = flow_cli("step-functions", str(path), "create", env=S3_ONLY)
    assert result.returncode == 1
    assert "metadata service every container reaches; set METAFLOW_DEFAULT_METADATA=service" in last_error(result)


@pytest.mark.parametrize("expression, problem", [
    ("0 10 * * *", "has 5 fields"),
    ("0 10 * * MON *", "must have ? in exactly one of day-of-month and day-of-week"),
    ("0 10 ? * ? *", "must have ? in exactly one of day-of-month and day-of-week"),
    ("0 10 * * ? * ;", "has 7 fields"),
])
def test_a_bad_cron_is_refused_with_the_expression(expression, problem):
    from flow_core.plugin_api import FlowError

    with pytest.raises(FlowError) as error:
        validated_cron(expression)
    assert f"@schedule(cron={expression!r}) {problem}" in str(error.value)


def test_good_crons_pass():
    assert validated_cron("0 10 * * ? *") == "0 10 * * ? *"
    assert validated_cron("0/15 * ? * MON-FRI *") == "0/15 * ? * MON-FRI *"


def test_trigger_refuses_parameters_too_large_for_a_run_before_asking_aws(write_flow, flow_cli):
    path = write_flow("notes.py", """
        from flow_core import FlowSpec, Parameter, step

        class Notes(FlowSpec):
            text = Parameter("text", default="")

            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    result = flow_cli("step-functions", str(path), "trigger", "--text", "x" * 5000, env=S3_ONLY)
    assert result.returncode == 1
    assert "more than the 4,096 a Step Functions run passes to its first task" in last_error(result)


def test_a_schedule_in_an_unknown_time_zone_is_refused_with_its_name():
    from flow_core.plugin_api import FlowError

    from flow_sched_sfn.scheduler import validated_timezone

    assert validated_timezone("Europe/Amsterdam") == "Europe/Amsterdam"
    with pytest.raises(FlowError, match=r"@schedule\(timezone='Mars/Olympus'\) is not a time zone name"):
        validated_timezone("Mars/Olympus")


@pytest.mark.parametrize("missing, sentence", [
    ("METAFLOW_BATCH_JOB_QUEUE", "METAFLOW_BATCH_JOB_QUEUE is not set; set it to the AWS Batch job queue tasks run in"),
    ("METAFLOW_SFN_IAM_ROLE", "METAFLOW_SFN_IAM_ROLE is not set; set it to the IAM role the state machine runs as"),
    ("METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE", "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE is not set; set it to the IAM role "
                                            "EventBridge starts the flow's @schedule runs with"),
])
def test_each_missing_setting_is_named_before_anything_is_created(write_flow, flow_cli, missing, sentence):
    path = write_flow("nightly.py", FOREACH_FLOW)  # scheduled daily, so it needs the events role too
    env = {**S3_ONLY, "METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": "http://127.0.0.1:9",
           "METAFLOW_SFN_IAM_ROLE": "arn:aws:iam::123456789012:role/sfn",
           "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE": "arn:aws:iam::123456789012:role/events"}
    env[missing] = ""
    result = flow_cli("step-functions", str(path), "create", env=env)
    assert result.returncode == 1
    assert last_error(result) == f"Error: {sentence}"
