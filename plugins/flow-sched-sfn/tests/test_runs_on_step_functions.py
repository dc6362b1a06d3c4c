"""End to end: a flow deployed with ``step-functions create`` runs as a state machine on moto,
each task an AWS Batch job in a real container of the tests' own Docker engine, the data on
SeaweedFS and the records in the metadata service on PostgreSQL; then it reads back through
the Client API like a local run of the same flow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import boto3
from flow_core.testing import run_id_of

from flow_sched_sfn.testing.moto_sfn import wait_for_execution

FLOW = """
    from flow_core import FlowSpec, Parameter, current, step


    class Shapes(FlowSpec):
        alpha = Parameter("alpha", default=1)

        @step
        def start(self):
            self.items = [1, 2, 3]
            self.next(self.left, self.right)

        @step
        def left(self):
            self.side = "left"
            self.next(self.meet)

        @step
        def right(self):
            self.side = "right"
            self.next(self.meet)

        @step
        def meet(self, inputs):
            self.sides = sorted(i.side for i in inputs)
            self.merge_artifacts(inputs, exclude=["side"])
            self.next(self.fan)

        @step
        def fan(self):
            self.next(self.body, foreach="items")

        @step
        def body(self):
            self.square = self.input * self.input * self.alpha
            self.next(self.gather)

        @step
        def gather(self, inputs):
            self.squares = [i.square for i in inputs]
            self.sides = inputs[0].sides
            self.next(self.end)

        @step
        def end(self):
            self.total = sum(self.squares)
            self.namespace_seen = current.namespace
            print("total", self.total)
"""

READ_RUN = """
import json, sys
from flow_core import Run, namespace
namespace(sys.argv[2] or None)
run = Run(sys.argv[1])
end = run["end"].task
print(json.dumps({"successful": run.successful, "total": end["total"].data, "squares": end["squares"].data,
                  "sides": end["sides"].data, "alpha": end["alpha"].data,
                  "steps": sorted(s.id for s in run), "body_tasks": sorted(t.id for t in run["body"]),
                  "tags": sorted(run.system_tags),
                  "execution": sorted({m.value for t in run["body"] for m in t.metadata
                                       if m.field == "aws-step-functions-execution"}),
                  "fields": sorted({m.field for m in run["body"].task.metadata})}))
"""


def read_run(flow_env, pathspec: str, namespace: str = "") -> dict:
    result = subprocess.run([sys.executable, "-c", READ_RUN, pathspec, namespace],
                            env={**os.environ, **flow_env}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def explain(sfn, execution: dict, env: dict) -> str:
    """Why an execution failed: its failure events, and each Batch job's end and last lines."""
    lines = [f"execution {execution['status']}: {execution.get('error')} {execution.get('cause')}"]
    for event in sfn.get_execution_history(executionArn=execution["executionArn"])["events"]:
        details = {k: v for k, v in event.items() if k.endswith("EventDetails") and "Failed" in event["type"]}
        if details:
            lines.append(f"{event['type']}: {json.dumps(details, default=str)[:2000]}")
    batch, logs = boto3.client("batch"), boto3.client("logs")
    for status in ("FAILED", "SUCCEEDED"):
        for job in batch.list_jobs(jobQueue=env["METAFLOW_BATCH_JOB_QUEUE"], jobStatus=status)["jobSummaryList"]:
            lines.append(f"job {job['jobName']} {status} {job.get('statusReason', '')}")
            (described,) = batch.describe_jobs(jobs=[job["jobId"]])["jobs"]
            stream = (described.get("container") or {}).get("logStreamName")
            if stream and status == "FAILED":
                events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]
                lines.extend("    " + e["message"] for e in events[-15:])
    return "\n".join(lines)


def test_a_deployed_flow_runs_on_step_functions_and_reads_back_like_a_local_run(sfn_env, flow_cli, flow_env,
                                                                               write_flow):
    path = str(write_flow("shapes.py", FLOW))
    created = flow_cli("step-functions", path, "create", timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr
    token = re.search(r"Production token: (\S+)", created.stderr + created.stdout).group(1)
    assert f'namespace("production:{token}")' in created.stderr + created.stdout

    triggered = flow_cli("step-functions", path, "trigger", "--alpha", "10")
    assert triggered.returncode == 0, triggered.stderr
    pathspec = re.search(r"Triggered (Shapes/sfn-\w+)", triggered.stderr + triggered.stdout).group(1)

    sfn = boto3.client("stepfunctions")
    (machine,) = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "Shapes"]
    (execution,) = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    assert pathspec.endswith(execution["name"])
    ended = wait_for_execution(sfn, execution["executionArn"], timeout=900)
    assert ended["status"] == "SUCCEEDED", explain(sfn, ended, sfn_env)

    on_sfn = read_run(flow_env, pathspec, f"production:{token}")
    local = flow_cli("run", path, "--alpha", "10",
                     env={"METAFLOW_DEFAULT_METADATA": "local", "METAFLOW_DEFAULT_DATASTORE": "local"})
    assert local.returncode == 0, local.stderr
    here = read_run({**flow_env, "METAFLOW_DEFAULT_METADATA": "local", "METAFLOW_DEFAULT_DATASTORE": "local"},
                    f"Shapes/{run_id_of(local.stdout)}")
    assert on_sfn["successful"] and on_sfn["total"] == here["total"] == 140
    for key in ("squares", "sides", "alpha", "steps"):
        assert on_sfn[key] == here[key], key
    assert on_sfn["body_tasks"] == ["sfn-0", "sfn-1", "sfn-2"]
    assert f"production:{token}" in on_sfn["tags"]  # the run is in the deployment's namespace
    assert "runtime:step-functions" in on_sfn["tags"]
    assert on_sfn["execution"] == [execution["executionArn"]], on_sfn["fields"]  # it leads back to its execution


FLAKY = """
    from flow_core import FlowSpec, Parameter, current, retry, step


    class Flaky(FlowSpec):
        fail_always = Parameter("fail_always", default=False)

        @step
        def start(self):
            self.next(self.work)

        @retry(times=1, minutes_between_retries=0)
        @step
        def work(self):
            if current.retry_count == 0:
                raise RuntimeError("the first attempt fails")
            if self.fail_always:
                raise ValueError("no good on Step Functions")
            self.attempt = current.retry_count
            self.next(self.end)

        @step
        def end(self):
            pass
"""

READ_WORK = """
import json, sys
from flow_core import Run, namespace
namespace(None)
run = Run(sys.argv[1])
work = run["work"].task
print(json.dumps({"successful": run.successful, "task_id": work.id,
                  "attempts": sorted({m.value for m in work.metadata if m.field == "attempt"}),
                  "exception": str(work.exception) if work.exception else None}))
"""


def _run_to_end(flow_cli, path: str, *params: str) -> tuple[str, dict]:
    triggered = flow_cli("step-functions", path, "trigger", *params)
    assert triggered.returncode == 0, triggered.stderr
    pathspec = re.search(r"Triggered (\S+/sfn-\w+)", triggered.stderr + triggered.stdout).group(1)
    sfn = boto3.client("stepfunctions")
    flow = pathspec.split("/")[0]
    arn = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"].split(".")[-1] == flow][0]
    execution = [e for e in sfn.list_executions(stateMachineArn=arn["stateMachineArn"])["executions"]
                 if pathspec.endswith(e["name"])][0]
    return pathspec, wait_for_execution(sfn, execution["executionArn"], timeout=900)


def test_retry_keeps_the_task_id_and_a_failing_step_fails_the_execution_with_its_exception(
        sfn_env, flow_cli, flow_env, write_flow):
    path = str(write_flow("flaky.py", FLAKY))
    created = flow_cli("step-functions", path, "create", timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr

    pathspec, ended = _run_to_end(flow_cli, path)
    assert ended["status"] == "SUCCEEDED", explain(boto3.client("stepfunctions"), ended, sfn_env)
    work = json.loads(subprocess.run([sys.executable, "-c", READ_WORK, pathspec], env={**os.environ, **flow_env},
                                     capture_output=True, text=True, check=True).stdout)
    # The state's Retry ran the task again under the same id, as its next attempt.
    assert work["successful"] and work["task_id"] == "sfn" and work["attempts"] == ["0", "1"]

    pathspec, ended = _run_to_end(flow_cli, path, "--fail_always", "true")
    assert ended["status"] == "FAILED"
    work = json.loads(subprocess.run([sys.executable, "-c", READ_WORK, pathspec], env={**os.environ, **flow_env},
                                     capture_output=True, text=True, check=True).stdout)
    assert not work["successful"]
    assert "ValueError" in work["exception"] and "no good on Step Functions" in work["exception"]


SCHEDULED = """
    from flow_core import FlowSpec, schedule, step


    @schedule(cron="0 10 * * ? *")
    class Nightly(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_schedule_makes_a_rule_a_second_user_needs_the_token_and_delete_removes_both(
        sfn_env, flow_cli, write_flow):
    path = str(write_flow("nightly.py", SCHEDULED))
    created = flow_cli("step-functions", path, "create", timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr
    token = re.search(r"Production token: (\S+)", created.stderr + created.stdout).group(1)

    sfn, events = boto3.client("stepfunctions"), boto3.client("events")
    (machine,) = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "Nightly"]
    rule = events.describe_rule(Name="Nightly")
    assert rule["ScheduleExpression"] == "cron(0 10 * * ? *)" and rule["State"] == "ENABLED"
    (target,) = events.list_targets_by_rule(Rule="Nightly")["Targets"]
    assert target["Arn"] == machine["stateMachineArn"] and target["RoleArn"] == sfn_env[
        "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE"]
    assert json.loads(target["Input"]) == {"parameters": {}}

    someone = {"METAFLOW_USER": "someone-else"}
    refused = flow_cli("step-functions", path, "create", env=someone, timeout=300)
    assert refused.returncode == 1
    assert "Nightly is deployed to Step Functions by tester; to deploy it too, pass their production token " \
           "with --authorize TOKEN" in refused.stderr
    allowed = flow_cli("step-functions", path, "create", "--authorize", token, env=someone, timeout=300)
    assert allowed.returncode == 0, allowed.stderr
    assert f"Production token: {token}" in allowed.stderr + allowed.stdout  # the same deployment, kept

    # In a time zone, the schedule moves to EventBridge Scheduler (rules know only UTC).
    zoned = write_flow("nightly.py", SCHEDULED.replace('@schedule(cron="0 10 * * ? *")',
                                                       '@schedule(cron="0 10 * * ? *", timezone="Europe/Amsterdam")'))
    again = flow_cli("step-functions", str(zoned), "create", timeout=300)
    assert again.returncode == 0, again.stderr
    assert "cron(0 10 * * ? *), Europe/Amsterdam" in again.stderr + again.stdout
    scheduler = boto3.client("scheduler")
    schedule = scheduler.get_schedule(Name="Nightly")
    assert schedule["ScheduleExpression"] == "cron(0 10 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Amsterdam"
    assert schedule["Target"]["Arn"] == machine["stateMachineArn"]
    assert not events.list_rules(NamePrefix="Nightly")["Rules"]  # the UTC rule is gone

    deleted = flow_cli("step-functions", path, "delete")
    assert deleted.returncode == 0, deleted.stderr
    assert not [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "Nightly"]
    assert not events.list_rules(NamePrefix="Nightly")["Rules"]
    assert not scheduler.list_schedules(NamePrefix="Nightly")["Schedules"]


NESTED = """
    from flow_core import FlowSpec, step


    class Nested(FlowSpec):
        @step
        def start(self):
            self.outer = [1, 2, 3]
            self.next(self.each_outer, foreach="outer")

        @step
        def each_outer(self):
            self.x = self.input
            self.inner = [10, 20]
            self.next(self.each_inner, foreach="inner")

        @step
        def each_inner(self):
            self.product = self.x * self.input
            self.next(self.join_inner)

        @step
        def join_inner(self, inputs):
            self.products = [i.product for i in inputs]
            self.next(self.join_outer)

        @step
        def join_outer(self, inputs):
            self.table = [i.products for i in inputs]
            self.next(self.end)

        @step
        def end(self):
            print("table", self.table)
"""

READ_NESTED = """
import json, sys
from flow_core import Run, namespace
namespace(None)
run = Run(sys.argv[1])
print(json.dumps({"table": run["end"].task["table"].data,
                  "inner_tasks": sorted(t.id for t in run["each_inner"])}))
"""


def test_a_nested_foreach_wider_than_the_inline_limit_runs_as_a_distributed_map(sfn_env, flow_cli, flow_env,
                                                                                 write_flow, monkeypatch):
    # Two splits at most inline: the outer foreach (three) becomes a Distributed Map, the inner
    # one (two) an inline Map inside each of its child executions.
    limit = {"METAFLOW_SFN_INLINE_MAP_MAX": "2"}
    path = str(write_flow("nested.py", NESTED))
    created = flow_cli("step-functions", path, "create", env=limit, timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr

    pathspec, ended = _run_to_end(flow_cli, path)
    assert ended["status"] == "SUCCEEDED", explain(boto3.client("stepfunctions"), ended, sfn_env)
    history = boto3.client("stepfunctions").get_execution_history(executionArn=ended["executionArn"])["events"]
    assert any(e["type"] == "MapRunStarted" or "MapRun" in e["type"] for e in history), \
        sorted({e["type"] for e in history})
    read = json.loads(subprocess.run([sys.executable, "-c", READ_NESTED, pathspec], env={**os.environ, **flow_env},
                                     capture_output=True, text=True, check=True).stdout)
    assert read["table"] == [[10, 20], [20, 40], [30, 60]]
    assert read["inner_tasks"] == [f"sfn-{o}-{i}" for o in range(3) for i in range(2)]


HELLO = """
    from flow_core import FlowSpec, Parameter, step


    class Hello(FlowSpec):
        name = Parameter("name", default="world")

        @step
        def start(self):
            self.greeting = f"hello {self.name}"
            self.next(self.end)

        @step
        def end(self):
            print(self.greeting)
"""


def test_the_deployer_api_deploys_and_triggers_on_step_functions(sfn_env, flow_env, write_flow, monkeypatch):
    from flow_core import Deployer

    path = str(write_flow("hello.py", HELLO))
    deployed = Deployer(path, show_output=False, env=flow_env).step_functions().create()
    assert deployed.flow_name == "Hello" and deployed.production_token
    triggered = deployed.trigger(name="step functions")
    assert triggered.pathspec.startswith("Hello/sfn-")

    sfn = boto3.client("stepfunctions")
    (machine,) = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "Hello"]
    (execution,) = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    ended = wait_for_execution(sfn, execution["executionArn"], timeout=600)
    assert ended["status"] == "SUCCEEDED", explain(sfn, ended, sfn_env)
    run = triggered.wait_for_run(check_interval=0.5, timeout=60)
    assert run.successful and run["end"].task["greeting"].data == "hello step functions"
    assert f"production:{deployed.production_token}" in run.system_tags


PROJECT = """
    from flow_core import Config, FlowSpec, current, project, step


    @project(name="demo")
    class Branches(FlowSpec):
        settings = Config("settings", default_value={"rows": 3})

        @step
        def start(self):
            self.branch = current.branch_name
            self.rows = self.settings.rows
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_a_project_branch_deploys_as_its_own_state_machine_with_the_deployed_configs(sfn_env, flow_cli, flow_env,
                                                                                     write_flow):
    path = str(write_flow("branches.py", PROJECT))
    created = flow_cli("step-functions", path, "create", "--production", "--config-value", "settings",
                       '{"rows": 7}', timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr
    assert "as demo.prod.Branches" in created.stderr + created.stdout

    pathspec, ended = _run_to_end(flow_cli, path, "--production")
    assert pathspec.startswith("Branches/sfn-")
    assert ended["status"] == "SUCCEEDED", explain(boto3.client("stepfunctions"), ended, sfn_env)
    read = subprocess.run([sys.executable, "-c", """
import json, sys
from flow_core import Run, namespace
namespace(None)
run = Run(sys.argv[1])
print(json.dumps({"tags": sorted(run.system_tags), "branch": run["start"].task["branch"].data,
                  "rows": run["start"].task["rows"].data}))
""", pathspec], env={**os.environ, **flow_env}, capture_output=True, text=True, check=True)
    found = json.loads(read.stdout)
    assert {"project:demo", "project_branch:prod"} <= set(found["tags"])
    assert found["branch"] == "prod" and found["rows"] == 7


PYPI = """
    from flow_core import FlowSpec, pypi, step


    class Pinned(FlowSpec):
        @pypi(packages={"humanize": "4.9.0"})
        @step
        def start(self):
            import humanize
            self.version = humanize.__version__
            self.next(self.end)

        @step
        def end(self):
            import importlib.util
            self.end_has_humanize = importlib.util.find_spec("humanize") is not None
"""


def test_pypi_steps_deploy_with_their_environments_built_from_the_datastore(sfn_env, flow_cli, flow_env,
                                                                             write_flow, tmp_path):
    path = str(write_flow("pinned.py", PYPI))
    cache = {"METAFLOW_ENVIRONMENT_CACHE": str(tmp_path / "environments")}
    created = flow_cli("--environment=pypi", "step-functions", path, "create", env=cache, timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr
    assert "Environment pypi:" in created.stdout + created.stderr  # resolved at deploy time

    pathspec, ended = _run_to_end(flow_cli, path)
    assert ended["status"] == "SUCCEEDED", explain(boto3.client("stepfunctions"), ended, sfn_env)
    read = subprocess.run([sys.executable, "-c", """
import json, sys
from flow_core import Run, namespace
namespace(None)
run = Run(sys.argv[1])
start = run["start"].task
print(json.dumps({"version": start["version"].data, "end": run["end"].task["end_has_humanize"].data,
                  "environment": start.metadata_dict.get("environment")}))
""", pathspec], env={**os.environ, **flow_env}, capture_output=True, text=True, check=True)
    found = json.loads(read.stdout)
    # The image has no humanize: start's environment came from the datastore; end has its own.
    assert found == {"version": "4.9.0", "end": False, "environment": found["environment"]}
    assert found["environment"].startswith("pypi:")
