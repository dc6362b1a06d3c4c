"""Production runs on the local scheduler: deploy, trigger with parameters, list, undeploy."""

from __future__ import annotations

import time

FLOW = """
    from flow_core import FlowSpec, Parameter, current, step

    class Nightly(FlowSpec):
        size = Parameter("size", default=2)
        label = Parameter("label", default="plain")

        @step
        def start(self):
            self.namespace_seen = current.namespace
            self.production = current.is_production
            self.next(self.end)

        @step
        def end(self):
            self.result = self.size * 10
"""


def wait_finished(records, flow_name: str, run_id: str, timeout: float = 60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = records.run(flow_name, run_id)
        if run is not None and run.status != "running":
            return run
        time.sleep(0.2)
    raise AssertionError(f"{flow_name}/{run_id} did not finish within {timeout:.0f}s")


def test_a_deployed_flow_runs_in_its_production_namespace_and_can_be_removed(write_flow, flow_cli, records):
    flow_file = str(write_flow("nightly.py", FLOW))
    deployed = flow_cli("deploy", flow_file)
    assert deployed.returncode == 0, deployed.stderr
    namespace = deployed.stdout.split("in namespace ", 1)[1].split(".", 1)[0]
    assert namespace.startswith("production:nightly-")

    listed = flow_cli("deployments")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(f"Nightly  {namespace}  {flow_file}")

    triggered = flow_cli("trigger", flow_file, "--size", "7")
    assert triggered.returncode == 0, triggered.stderr
    run_id = triggered.stdout.split("Triggered Nightly/", 1)[1].split(" ", 1)[0]
    run = wait_finished(records, "Nightly", run_id)
    assert run.status == "succeeded"
    assert namespace in run.system_tags
    assert records.artifact("Nightly", run_id, "end", "result") == 70
    assert records.artifact("Nightly", run_id, "start", "label") == "plain"
    assert records.artifact("Nightly", run_id, "start", "namespace_seen") == namespace
    assert records.artifact("Nightly", run_id, "start", "production") is True

    redeployed = flow_cli("deploy", flow_file)
    assert f"in namespace {namespace}." in redeployed.stdout  # the token is kept

    removed = flow_cli("undeploy", flow_file)
    assert removed.returncode == 0, removed.stderr
    assert "Nothing is deployed" in flow_cli("deployments").stdout
    again = flow_cli("trigger", flow_file)
    assert again.returncode == 1
    assert again.stderr.strip().endswith("is not deployed to the local scheduler; run `flow deploy FILE` first")


PROJECT_FLOW = """
    from flow_core import Config, FlowSpec, current, project, step

    @project(name="demo")
    class Branches(FlowSpec):
        settings = Config("settings", default_value={"rows": 3})

        @step
        def start(self):
            self.branch = current.branch_name
            self.project_flow_name = current.project_flow_name
            self.rows = self.settings.rows
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_a_project_branch_is_its_own_deployment_and_its_runs_keep_the_branch_and_configs(write_flow, flow_cli,
                                                                                        records):
    flow_file = str(write_flow("branches.py", PROJECT_FLOW))
    production = flow_cli("deploy", flow_file, "--production", "--config-value", "settings", '{"rows": 7}')
    assert production.returncode == 0, production.stderr
    assert "Deployed Branches" in production.stdout
    mine = flow_cli("deploy", flow_file)
    assert mine.returncode == 0, mine.stderr
    listed = flow_cli("deployments").stdout
    assert listed.count("Branches  production:") == 2  # one per branch, each its own token

    triggered = flow_cli("trigger", flow_file, "--production")
    assert triggered.returncode == 0, triggered.stderr
    run_id = triggered.stdout.split("Triggered Branches/", 1)[1].split(" ", 1)[0]
    run = wait_finished(records, "Branches", run_id)
    assert run.status == "succeeded"
    assert {"project:demo", "project_branch:prod"} <= set(run.system_tags)
    assert records.artifact("Branches", run_id, "start", "branch") == "prod"
    assert records.artifact("Branches", run_id, "start", "project_flow_name") == "demo.prod.Branches"
    assert records.artifact("Branches", run_id, "start", "rows") == 7  # the config the deploy fixed

    removed = flow_cli("undeploy", flow_file, "--production")
    assert removed.returncode == 0, removed.stderr
    assert "Removed the deployment of demo.prod.Branches" in removed.stdout
    assert flow_cli("deployments").stdout.count("Branches  production:") == 1  # the user branch's stays
