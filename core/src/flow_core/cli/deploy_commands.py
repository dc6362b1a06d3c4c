"""Handing a flow to a scheduler for production runs: ``deploy``, ``trigger``, ``undeploy``,
and ``flow deployments`` to see what is deployed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import click

from flow_core.backends.compute import TaskSpec
from flow_core.backends.environment import EnvironmentRequest
from flow_core.backends.scheduler import DeployRequest
from flow_core.backends.selection import Backends
from flow_core.cli.flow_setup import prepare_flow
from flow_core.cli.state import CliState, flow_options
from flow_core.engine.step_specs import (
    build_environment_request,
    decorate_steps,
    first_task_specs,
    prepare_interpreters,
    with_interpreter,
)
from flow_core.model.config import CONFIG_VALUES_VARIABLE, Config, config_values
from flow_core.model.decorators import flow_decorators
from flow_core.model.parameters import flow_parameters
from flow_core.model.project import PROJECT_VARIABLE

_scheduler_option = click.option("--scheduler", default=None,
                                 help="Scheduler backend (METAFLOW_DEFAULT_SCHEDULER).")


@click.command(help="Deploy the flow to a scheduler for production runs.")
@_scheduler_option
@click.option("--tag", "tags", multiple=True, help="Tag every run of the deployment.")
@flow_options
@click.pass_obj
def deploy(state: CliState, scheduler: str | None, tags: tuple[str, ...]) -> None:
    flow = state.flow
    backend = state.backends().scheduler(scheduler)
    request = deploy_request(state, tags, runs_remotely=backend.runs_remotely)
    deployment = backend.deploy(request)
    state.console().info(
        f"Deployed {deployment.flow_name} to the {backend.name} scheduler; its runs are in namespace "
        f"{deployment.namespace}. Start one with: flow trigger {Path(flow.file).name}"
    )


def deploy_request(state: CliState, tags: tuple[str, ...] = (), *, runs_remotely: bool = False,
                   **options: Any) -> DeployRequest:
    """What a scheduler needs to deploy the command's flow, its decorators checked first and
    its steps' environments (``--environment=pypi``) prepared: for other machines when the
    scheduler's tasks all run there (``runs_remotely``). ``options`` are the scheduler's own
    command-line options, for a plugin's command."""
    flow = state.flow
    project = prepare_flow(state)
    graph = flow.graph()
    backends = state.backends()
    environment_name = backends.settings.backend_name("environment")
    decorators = decorate_steps(flow.cls, graph, tuple(state.decospecs), backends.step_decorators, environment_name)
    steps = first_task_specs(graph, decorators, flow.file, flow.name, backends.settings.backend_name("compute"),
                             tuple(state.decospecs))
    if environment_name != "local":
        remote = set(steps) if runs_remotely else _remote_steps(backends, steps)
        request = build_environment_request(flow.cls, graph, decorators, backends, remote,
                                            report=state.console().info)
        for name, prepared in prepare_interpreters(backends, request).items():
            steps[name] = with_interpreter(steps[name], prepared)
    cron, timezone = _schedule(flow.cls)
    init_options: list[str] = ["--production"] if state.production else []
    if state.branch:
        init_options += ["--branch", state.branch]
    for name, value in config_values(flow.cls).items():
        init_options += ["--config-value", name, json.dumps(value, default=str)]
    environment = {name: state.overrides[name]
                   for name in (PROJECT_VARIABLE, CONFIG_VALUES_VARIABLE, "METAFLOW_DEFAULT_ENVIRONMENT")
                   if state.overrides.get(name)}
    return DeployRequest(flow.file, flow.name, graph, tuple(tags), schedule=cron, schedule_timezone=timezone,
                         steps=steps, options=options,
                         deployed_name=project.project_flow_name if project else flow.name,
                         init_options=tuple(init_options), environment=environment)


def _schedule(flow_cls: type) -> tuple[str | None, str | None]:
    """The cron expression of the flow's @schedule and its time zone, for the scheduler."""
    for decorator in flow_decorators(flow_cls):
        if decorator.name == "schedule":
            return getattr(decorator, "cron_expression", None), decorator.attributes.get("timezone")
    return None, None


def deployed_name(state: CliState) -> str:
    """The name the command's flow is deployed under: ``@project``'s ``project.branch.Flow``
    for the branch the options select, else the flow's name."""
    project = prepare_flow(state)
    return project.project_flow_name if project else state.flow.name


@click.command(help="Start a run of the deployed flow now. Parameters are options, as for `run`.")
@_scheduler_option
@flow_options
@click.pass_obj
def trigger(state: CliState, scheduler: str | None, **kw: Any) -> None:
    name = deployed_name(state)
    backend = state.backends().scheduler(scheduler)
    ref = backend.trigger(name, given_parameters(state, kw))
    state.console().info(f"Triggered {ref} on the {backend.name} scheduler.")


def given_parameters(state: CliState, kw: dict[str, Any]) -> dict[str, str]:
    """The flow's parameters a command's options gave, by parameter name, as text; what the
    user left out, the run's own defaults fill in. For a command that passes them on to a
    run (``trigger``, or a plugin's command with ``passes_flow_parameters``)."""
    given = {}
    for attribute, parameter in flow_parameters(state.flow.cls).items():
        if isinstance(parameter, Config):
            continue
        value = kw.get(f"param_{attribute}")
        if value is not None:
            given[parameter.name] = value if isinstance(value, str) else json.dumps(value)
    return given


@click.command(help="Remove the flow's deployment. Its past runs stay.")
@_scheduler_option
@flow_options
@click.pass_obj
def undeploy(state: CliState, scheduler: str | None) -> None:
    name = deployed_name(state)
    backend = state.backends().scheduler(scheduler)
    backend.delete(name)
    state.console().info(f"Removed the deployment of {name} from the {backend.name} scheduler.")


@click.command(help="List the flows deployed to a scheduler.")
@_scheduler_option
@click.pass_obj
def deployments(state: CliState, scheduler: str | None) -> None:
    backend = state.backends().scheduler(scheduler)
    found = backend.list_deployments()
    if not found:
        state.console().info(f"Nothing is deployed to the {backend.name} scheduler.")
    for deployment in found:
        schedule = f", on {deployment.schedule}" if deployment.schedule else ""
        click.echo(f"{deployment.flow_name}  {deployment.namespace}  {deployment.flow_file}{schedule}")


def environment_request(state: CliState, report: Callable[[str], None] = print) -> EnvironmentRequest:
    """What the configured environment needs to prepare the command's flow, as ``run`` asks
    it (for ``environment resolve``, or a scheduler deploying the flow)."""
    flow = state.flow
    prepare_flow(state)
    graph = flow.graph()
    backends = state.backends()
    decorators = decorate_steps(flow.cls, graph, tuple(state.decospecs), backends.step_decorators,
                                backends.settings.backend_name("environment"))
    specs = first_task_specs(graph, decorators, flow.file, flow.name, backends.settings.backend_name("compute"),
                             tuple(state.decospecs))
    return build_environment_request(flow.cls, graph, decorators, backends, _remote_steps(backends, specs),
                                     report=report)


def _remote_steps(backends: Backends, specs: dict[str, TaskSpec]) -> set[str]:
    return {name for name, spec in specs.items() if backends.compute(spec.compute).remote}
