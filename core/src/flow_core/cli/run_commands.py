"""The commands that make runs: ``run``, ``resume``, and the two an orchestrator uses with no
runtime alive, ``init`` (the run and its parameters) and ``step`` (one task)."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from flow_core.backends.selection import Backends
from flow_core.cli.flow_setup import config_attributes, prepare_flow
from flow_core.cli.state import CliState, flow_options, my_latest_run_id
from flow_core.client.namespace import TASK_NAMESPACE_VARIABLE
from flow_core.datastore.task_store import FlowDataStore
from flow_core.engine.resume import ResumePlan
from flow_core.engine.run_start import (
    DEFAULT_PARAMETERS_TASK,
    PARAMETERS_STEP,
    create_run,
    run_fields,
    store_parameters,
)
from flow_core.engine.runtime import DEFAULT_MAX_NUM_SPLITS, RunOptions, Runtime
from flow_core.engine.task import TaskArguments, run_task
from flow_core.model.names import TAG_RULE, tag_problem, text_problem
from flow_core.model.config import Config, config_values, flow_configs
from flow_core.model.parameters import ParameterContext, class_constants, flow_parameters
from flow_core.model.project import PROJECT_VARIABLE

pass_state = click.pass_obj


def checked_tags(ctx: click.Context, param: click.Parameter, tags: tuple[str, ...]) -> tuple[str, ...]:
    """``--tag`` values every backend can store (a click callback): said at once, before a
    run record exists, instead of failing inside a backend."""
    for tag in tags:
        problem = tag_problem(tag)
        if problem:
            raise click.BadParameter(f"{problem}, so it cannot be a tag; {TAG_RULE}", ctx, param)
    return tags


def checked_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A run id, task id, step name or path given on the command line must be UTF-8 text:
    bytes that are not arrive as lone surrogates, which no backend can store or look up."""
    problem = text_problem(value) if value is not None else None
    if problem:
        raise click.BadParameter(f"{problem}; give names in UTF-8 (is the terminal set to another encoding?)",
                                 ctx, param)
    return value


_namespace_option = click.option(
    "--namespace", "user_namespace", default=None, callback=checked_text, metavar="TAG",
    help="The Client API's namespace inside the run's steps, instead of the run's own (user:<you>); "
         "--namespace= (empty) is the global namespace. The run's tags do not change.")


def _run_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--compute", default=None, help="Compute backend for every step (METAFLOW_DEFAULT_COMPUTE)."),
        click.option("--max-workers", type=click.IntRange(min=1), default=None,
                     help="How many tasks run at once (default: the number of cores, plus one)."),
        click.option("--max-num-splits", type=click.IntRange(min=1), default=DEFAULT_MAX_NUM_SPLITS,
                     show_default=True, help="Fail a foreach that would start more tasks than this."),
        click.option("--tag", "tags", multiple=True, callback=checked_tags, help="Tag the run (repeatable)."),
        click.option("--with", "decospecs", multiple=True, metavar="DECORATOR[:k=v,...]",
                     help="Attach a step decorator to every step, e.g. --with retry:times=2."),
        click.option("--run-id-file", type=click.Path(dir_okay=False), default=None,
                     help="Write the run id to this file as soon as it is known."),
        _namespace_option,
    ]):
        function = option(function)
    return function


def _task_namespace(state: CliState, user_namespace: str | None) -> None:
    """Hand ``--namespace`` to the run's tasks through their environment. Set even when not
    given: a run started from a step of another must not inherit that run's choice."""
    chosen = "" if user_namespace is None else json.dumps(user_namespace or None)
    state.overrides[TASK_NAMESPACE_VARIABLE] = chosen


def _options_of(state: CliState, kw: dict[str, Any]) -> RunOptions:
    return RunOptions(compute=kw["compute"], max_workers=kw["max_workers"], max_num_splits=kw["max_num_splits"],
                      tags=tuple(kw["tags"]), decospecs=(*state.decospecs, *kw["decospecs"]),
                      production_token=kw.get("production_token"), run_id_file=kw["run_id_file"])


def parameter_values(state: CliState, kw: dict[str, Any]) -> dict[str, Any]:
    """The flow's parameters from a command's ``param_*`` options (defaults filled in, types
    checked), taking them out of ``kw``."""
    flow = state.flow
    configs = config_values(flow.cls)
    # Class-level constants are artifacts of every task, as in Metaflow.
    values = {**class_constants(flow.cls), **config_attributes(flow.cls, configs)}
    # A default function reads `current.project_name` and friends, as in Metaflow.
    with _environment({PROJECT_VARIABLE: state.overrides.get(PROJECT_VARIABLE) or ""}):
        for attribute, parameter in flow_parameters(flow.cls).items():
            if isinstance(parameter, Config):
                continue
            context = ParameterContext(flow.name, state.settings().user, parameter.name, configs)
            values[attribute] = parameter.resolve(kw.pop(f"param_{attribute}", None), context, configs)
    return values


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@click.command(help="Run the flow on this machine (or on --compute).")
@_run_options
@flow_options
@click.option("--production-token", default=None, hidden=True, callback=checked_text)
@pass_state
def run(state: CliState, **kw: Any) -> None:
    _task_namespace(state, kw.pop("user_namespace"))
    flow = state.flow
    graph = flow.graph()
    prepare_flow(state)
    values = parameter_values(state, kw)
    Runtime(flow.cls, graph, flow.file, state.backends(), state.console(), _options_of(state, kw),
            parameters=values).execute()


@click.command(help="Resume a run. Its successful tasks are reused, the rest run again.")
@click.argument("step_name", required=False, metavar="[STEP]", callback=checked_text)
@click.option("--origin-run-id", default=None, callback=checked_text,
              help="The run to resume (default: your latest run of this flow).")
@_run_options
@flow_options
@pass_state
def resume(state: CliState, step_name: str | None, origin_run_id: str | None, **kw: Any) -> None:
    _task_namespace(state, kw.pop("user_namespace"))
    flow = state.flow
    prepare_flow(state, origin_configs(state, origin_run_id) if flow_configs(flow.cls) else None)
    graph = flow.graph()
    backends = state.backends()
    metadata = backends.metadata
    mine = metadata.list_runs(flow.name, tags=[f"user:{backends.settings.user}"], limit=1)
    plan = ResumePlan.build(graph, FlowDataStore(backends.storage), metadata, origin_run_id, step_name, mine)
    Runtime(flow.cls, graph, flow.file, backends, state.console(), _options_of(state, kw), resume=plan).execute()


@click.command(help="Create a run without running it. An orchestrator's first step: the run and its parameters.")
@click.option("--run-id", default=None, callback=checked_text,
              help="The run's id: a name of the orchestrator's (not a number). Asking again with the same "
                   "name changes nothing. Default: a new number.")
@click.option("--task-id", default=DEFAULT_PARAMETERS_TASK, show_default=True, callback=checked_text,
              help="The id of the run's _parameters task.")
@click.option("--tag", "tags", multiple=True, callback=checked_tags, help="Tag the run (repeatable).")
@click.option("--production-token", default=None, callback=checked_text,
              help="Make it a production run of this deployment.")
@click.option("--origin-run-id", default=None, hidden=True, callback=checked_text)
@click.option("--run-id-file", type=click.Path(dir_okay=False), default=None,
              help="Write the run id to this file.")
@click.option("--parameters-json", default=None, callback=checked_text, metavar="JSON",
              help='Parameters as one JSON object of names to values, {"alpha": "5"}, as an orchestrator '
                   "passes them; each value is read as on the command line, and an option typed on the "
                   "command line wins.")
@click.option("--runtime", default="local", callback=checked_text, metavar="NAME",
              help="What runs the run's tasks, for its runtime: system tag (step-functions, ...).")
@flow_options
@pass_state
def init(state: CliState, run_id: str | None, task_id: str, tags: tuple[str, ...], production_token: str | None,
         origin_run_id: str | None, run_id_file: str | None, parameters_json: str | None, runtime: str,
         **kw: Any) -> None:
    flow = state.flow
    prepare_flow(state)
    graph = flow.graph()
    if parameters_json:
        _parameters_from_json(state, parameters_json, kw)
    values = parameter_values(state, kw)
    backends = state.backends()
    record = create_run(backends.metadata, flow.name, backends.settings.user, tags, production_token,
                        origin_run_id, run_id=run_id, runtime=runtime)
    path = store_parameters(backends.metadata, FlowDataStore(backends.storage), flow.name, record.run_id, values,
                            task_id, fields=run_fields(graph))
    if run_id_file:
        Path(run_id_file).write_text(record.run_id)
    state.console().result(f"{flow.name}/{path}")


def _parameters_from_json(state: CliState, text: str, kw: dict[str, Any]) -> None:
    """Fill ``kw``'s ``param_*`` options from ``--parameters-json``, converted by each option
    as if typed on the command line."""
    try:
        given = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"is not JSON ({exc})", param_hint="--parameters-json") from None
    if not isinstance(given, dict):
        raise click.BadParameter("must be a JSON object of parameter names to values",
                                 param_hint="--parameters-json")
    ctx = click.get_current_context()
    options = {param.name: param for param in ctx.command.params}
    by_name = {parameter.name: attribute for attribute, parameter in flow_parameters(state.flow.cls).items()
               if not isinstance(parameter, Config)}
    for name, value in given.items():
        if name not in by_name:
            raise click.BadParameter(f"names {name!r}, which is not a parameter of {state.flow.name} "
                                     f"(it has {', '.join(sorted(by_name)) or 'none'})", param_hint="--parameters-json")
        key = f"param_{by_name[name]}"
        if ctx.get_parameter_source(key) != click.core.ParameterSource.COMMANDLINE:
            raw = value if isinstance(value, str) else json.dumps(value)
            kw[key] = options[key].process_value(ctx, raw)


def origin_configs(state: CliState, origin_run_id: str | None) -> dict[str, Any] | None:
    """The configs a resumed run started with, by config name (None when it stored none):
    a resumed run keeps its origin's configs, as in Metaflow."""
    flow = state.flow
    backends = Backends.configured(state.overrides)
    try:
        metadata = backends.metadata
        if origin_run_id is None:
            origin_run_id = my_latest_run_id(backends, flow.name)
            if origin_run_id is None:
                return None
        tasks = [t for t in metadata.list_tasks(flow.name, origin_run_id, PARAMETERS_STEP) if t.attempt >= 0]
        if not tasks:
            return None
        store = FlowDataStore(backends.storage).open_task(flow.name, origin_run_id, PARAMETERS_STEP,
                                                          tasks[0].task_id, tasks[0].attempt)
        found = {}
        for attribute, config in flow_configs(flow.cls).items():
            try:
                found[config.name] = store.load(attribute)
            except Exception:  # a config the origin run did not have: its default applies
                return None
        return found
    finally:
        backends.close()


@click.command(help="Run one task. What every compute backend and orchestrator runs.")
@click.argument("step_name", callback=checked_text)
@click.option("--flow", "flow_name", default=None, hidden=True, callback=checked_text)
@click.option("--run-id", required=True, callback=checked_text)
@click.option("--task-id", required=True, callback=checked_text,
              help="The task's id: one the runtime allocated, or a name of the orchestrator's.")
@click.option("--input-paths", default="", callback=checked_text,
              help="Parent tasks, comma-separated RUN/STEP/TASK; RUN/STEP/* is every successful task of STEP.")
@click.option("--split-index", type=int, default=None)
@click.option("--retry-count", type=int, default=0)
@click.option("--max-user-code-retries", type=int, default=0)
@click.option("--tag", "tags", multiple=True, callback=checked_tags)
@click.option("--with", "decospecs", multiple=True)
@_namespace_option
@pass_state
def step(state: CliState, step_name: str, flow_name: str | None, run_id: str, task_id: str, input_paths: str,
         split_index: int | None, retry_count: int, max_user_code_retries: int, tags: tuple[str, ...],
         decospecs: tuple[str, ...], user_namespace: str | None) -> int:
    flow = state.flow
    if user_namespace is not None:  # as Metaflow's step --namespace, for an orchestrator
        os.environ[TASK_NAMESPACE_VARIABLE] = json.dumps(user_namespace or None)
    args = TaskArguments(
        flow_file=flow.file, step_name=step_name, flow_name=flow_name or flow.name,
        run_id=run_id, task_id=task_id,
        input_paths=tuple(p for p in input_paths.split(",") if p),
        split_index=split_index, retry_count=retry_count,
        max_user_code_retries=max_user_code_retries, tags=tuple(tags), decospecs=tuple(decospecs),
    )
    return run_task(args, state.backends())
