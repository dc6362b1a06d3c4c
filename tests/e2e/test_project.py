"""@project branches, and the flow decorators a production scheduler reads (@schedule,
@trigger, @trigger_on_finish), accepted on a laptop as Metaflow accepts them."""

from __future__ import annotations

import pytest
from flow_core.testing import last_error, run_id_of

PROJECT = """
    from flow_core import FlowSpec, current, project, step

    @project(name="fraud")
    class ScoreFlow(FlowSpec):
        @step
        def start(self):
            print("seen:", current.project_name, current.branch_name, current.is_production,
                  current.project_flow_name)
            self.next(self.end)

        @step
        def end(self):
            print("end on", current.branch_name)

    if __name__ == "__main__":
        ScoreFlow()
"""


def _seen(stdout: str) -> str:
    return next(line.split("seen: ", 1)[1] for line in stdout.splitlines() if "seen: " in line)


def _project_tags(run_id: str) -> list[str]:
    from flow_core import Run, namespace

    namespace(None)
    return sorted(t for t in Run(f"ScoreFlow/{run_id}").system_tags if t.startswith("project"))


@pytest.mark.parametrize("args, branch, production", [
    ((), "user.tester", False),
    (("--branch", "feature_x"), "test.feature_x", False),
    (("--production",), "prod", True),
    (("--production", "--branch", "v2"), "prod.v2", True),
])
def test_branch_reaches_current_and_the_run_tags(write_flow, python_flow, flow_env, args, branch, production):
    # As Metaflow users type them: top-level options, before the command.
    result = python_flow(write_flow("score.py", PROJECT), *args, "run")
    assert result.returncode == 0, result.stderr
    assert _seen(result.stdout) == f"fraud {branch} {production} fraud.{branch}.ScoreFlow"
    assert f"end on {branch}" in result.stdout
    assert _project_tags(run_id_of(result.stdout)) == ["project:fraud", f"project_branch:{branch}"]


def test_branch_options_after_the_command(write_flow, flow_cli, python_flow):
    path = write_flow("score.py", PROJECT)
    result = flow_cli("run", str(path), "--branch", "exp")
    assert result.returncode == 0, result.stderr
    assert _seen(result.stdout) == "fraud test.exp False fraud.test.exp.ScoreFlow"
    result = python_flow(path, "run", "--production")
    assert result.returncode == 0, result.stderr
    assert _seen(result.stdout) == "fraud prod True fraud.prod.ScoreFlow"


def test_bad_names_are_refused_before_anything_runs(write_flow, python_flow):
    result = python_flow(write_flow("score.py", PROJECT), "--branch", "Not-Valid", "run")
    assert result.returncode != 0
    assert "lowercase alphanumeric characters and underscores" in last_error(result)
    bad = write_flow("bad.py", PROJECT.replace('name="fraud"', 'name="Fraud Team"'))
    result = python_flow(bad, "run")
    assert result.returncode != 0
    assert "@project name 'Fraud Team' must contain only lowercase" in last_error(result)
    assert "Workflow starting" not in result.stdout


def test_branch_needs_a_project(write_flow, python_flow):
    plain = write_flow("plain.py", PROJECT.replace('@project(name="fraud")', ""))
    result = python_flow(plain, "--branch", "x", "run")
    assert result.returncode != 0
    assert "need a @project decorator" in result.stderr


def test_no_project_means_no_project_values(write_flow, python_flow):
    plain = write_flow("plain.py", PROJECT.replace('@project(name="fraud")', ""))
    result = python_flow(plain, "run")
    assert result.returncode == 0, result.stderr
    assert _seen(result.stdout) == "None None False None"


SCHEDULED = """
    from flow_core import FlowSpec, schedule, step, trigger, trigger_on_finish

    @schedule(cron="0 3 * * ? *", timezone="Europe/Paris")
    @trigger(event="data_ready")
    @trigger_on_finish(flows=["Upstream", {"name": "Other"}])
    class Nightly(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            print("ran locally")

    if __name__ == "__main__":
        Nightly()
"""


def test_schedule_and_triggers_are_accepted_locally(write_flow, python_flow):
    result = python_flow(write_flow("nightly.py", SCHEDULED), "run")
    assert result.returncode == 0, result.stderr
    assert "ran locally" in result.stdout


@pytest.mark.parametrize("decorator, message", [
    ('@trigger(event="a", events=["b"])', "@trigger: give either event or events, not both"),
    ("@trigger", "@trigger needs event= or events="),
    ('@trigger(event={"parameters": {}})', "@trigger: every event given as a dict needs a 'name'"),
    ("@schedule(hourly=True, cron=5)", "@schedule: cron must be a string"),
    ("@schedule(every=3)", "@schedule has no attribute every"),
])
def test_flow_decorator_mistakes_are_reported(write_flow, flow_cli, decorator, message):
    replaced = SCHEDULED.splitlines()[3 if decorator.startswith("@schedule") else 4]
    source = SCHEDULED.replace(replaced.strip(), decorator)
    result = flow_cli("run", str(write_flow("nightly.py", source)))
    assert result.returncode != 0
    assert message in last_error(result), result.stderr
    assert "Traceback" not in result.stderr


def test_a_flow_decorator_applies_once(write_flow, flow_cli):
    source = SCHEDULED.replace('@trigger(event="data_ready")', '@trigger_on_finish(flow="A")')
    result = flow_cli("run", str(write_flow("nightly.py", source)))
    assert result.returncode != 0
    assert "@trigger_on_finish can be applied to a flow only once" in last_error(result)


def test_branches_are_namespaces_in_the_client(write_flow, python_flow):
    from flow_core import Flow, namespace

    path = write_flow("score.py", PROJECT)
    ids = {}
    for branch in ("a", "b"):
        result = python_flow(path, "--branch", branch, "run")
        assert result.returncode == 0, result.stderr
        ids[branch] = run_id_of(result.stdout)
    namespace("project_branch:test.b")
    assert [run.id for run in Flow("ScoreFlow")] == [ids["b"]]
    namespace("project:fraud")
    assert sorted(run.id for run in Flow("ScoreFlow")) == sorted(ids.values())
    namespace(None)


def test_a_deployment_records_the_schedule(write_flow, flow_cli):
    path = str(write_flow("nightly.py", SCHEDULED.replace('cron="0 3 * * ? *", timezone="Europe/Paris"',
                                                           "hourly=True")))
    deployed = flow_cli("deploy", path)
    assert deployed.returncode == 0, deployed.stderr
    listed = flow_cli("deployments")
    assert "Nightly" in listed.stdout and "on 0 * * * ? *" in listed.stdout
    assert flow_cli("undeploy", path).returncode == 0
