"""``python myflow.py step-functions create|trigger|list-runs|delete``, as Metaflow spells them.

The same deployments are reached through Flow's own ``flow deploy/trigger/undeploy
--scheduler step-functions``; these commands add Metaflow's options.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from flow_core.plugin_api import CliState, deploy_request, deployed_name, flow_options, given_parameters

if TYPE_CHECKING:
    from .scheduler import StepFunctionsScheduler


def _scheduler(state: CliState) -> "StepFunctionsScheduler":
    # Selected by name, so boto3 and the compiler load only when a command runs.
    return state.backends().scheduler("step-functions")  # type: ignore[return-value]


@click.group("step-functions", help="Deploy the flow to AWS Step Functions and run it there.")
def step_functions() -> None:
    pass


@step_functions.command(help="Deploy the flow as a state machine (or update it); its runs are production runs.")
@click.option("--authorize", default=None, metavar="TOKEN",
              help="The production token of the deployment someone else made, to update it.")
@click.option("--max-workers", type=click.IntRange(1), default=None,
              help="How many tasks of a foreach run at once (default 100).")
@click.option("--only-json", is_flag=True, help="Print the state machine's definition; create nothing.")
@click.option("--tag", "tags", multiple=True, help="Tag every run of the deployment.")
@click.option("--name", default=None,
              help="The state machine's name (default: the flow's, or @project's project.branch.Flow).")
@flow_options
@click.pass_obj
def create(state: CliState, authorize: str | None, max_workers: int | None, only_json: bool,
           tags: tuple[str, ...], name: str | None) -> None:
    scheduler = _scheduler(state)
    request = deploy_request(state, tags, runs_remotely=scheduler.runs_remotely, authorize=authorize,
                             max_workers=max_workers, name=name)
    if only_json:
        click.echo(json.dumps(scheduler.compile(request).definition, indent=2))
        return
    deployment = scheduler.deploy(request)
    console = state.console()
    console.info(f"Deployed {deployment.flow_name} to Step Functions as {deployment.details['name']}; its runs "
                 f"are in namespace {deployment.namespace}.")
    console.info(f"Production token: {deployment.production_token} (anyone else updating this deployment needs "
                 "it: --authorize TOKEN).")
    console.info(f"In a notebook: namespace(\"{deployment.namespace}\")")
    if deployment.schedule:
        zone = deployment.details.get("timezone") or "UTC"
        console.info(f"It runs on the schedule cron({deployment.schedule}), {zone}.")
    console.info(f"Start a run with: python {state.flow.file.rsplit('/', 1)[-1]} step-functions trigger")


@step_functions.command(help="Start a run of the deployed flow now. Parameters are options, as for `run`.")
@click.option("--name", default=None,
              help="The state machine's name (default: the flow's, or @project's project.branch.Flow).")
@flow_options
@click.pass_obj
def trigger(state: CliState, name: str | None, **kw: Any) -> None:
    ref = _scheduler(state).trigger(name or deployed_name(state), given_parameters(state, kw))
    state.console().info(f"Triggered {ref} on the step-functions scheduler.")


trigger.passes_flow_parameters = True  # type: ignore[attr-defined]


@step_functions.command("list-runs", help="List the deployed flow's runs on Step Functions, newest first.")
@click.option("--running", is_flag=True, help="Only the runs still running.")
@click.option("--succeeded", is_flag=True, help="Only the runs that succeeded.")
@click.option("--failed", is_flag=True, help="Only the runs that failed.")
@click.option("--name", default=None,
              help="The state machine's name (default: the flow's, or @project's project.branch.Flow).")
@flow_options
@click.pass_obj
def list_runs(state: CliState, running: bool, succeeded: bool, failed: bool, name: str | None) -> None:
    wanted = tuple(status for flag, status in ((running, "RUNNING"), (succeeded, "SUCCEEDED"), (failed, "FAILED"))
                   if flag)
    runs = _scheduler(state).list_runs(name or deployed_name(state), wanted)
    if not runs:
        state.console().info("No runs found.")
    for run in runs:
        started = run["started"].isoformat(timespec="seconds") if run["started"] else "?"
        click.echo(f"{state.flow.name}/{run['run_id']}  {run['status']}  started {started}")


@step_functions.command(help="Remove the state machine and its schedule. Past runs stay.")
@click.option("--name", default=None,
              help="The state machine's name (default: the flow's, or @project's project.branch.Flow).")
@flow_options
@click.pass_obj
def delete(state: CliState, name: str | None) -> None:
    target = name or deployed_name(state)
    _scheduler(state).delete(target)
    state.console().info(f"Removed the Step Functions deployment of {target} and its schedule.")
