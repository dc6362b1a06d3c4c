"""The commands of one flow: what ``python myflow.py …`` and ``flow … myflow.py`` run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..graph import FlowGraph
from ..parameters import add_parameter_options
from .state import CliState, apply_global_options, global_options, run_cleanly

#: The verbs ``flow VERB FILE`` forwards to a flow's own command group.
FLOW_VERBS = ("run", "resume", "show", "check", "logs", "dump", "step", "deploy", "trigger")


def make_flow_cli(flow_cls: type, flow_file: str) -> click.Group:
    flow_file = os.path.abspath(flow_file)

    def graph() -> FlowGraph:
        return FlowGraph(flow_cls, flow_file)

    @click.group(name=flow_cls.__name__, help=(flow_cls.__doc__ or "").strip() or None)
    @global_options
    @click.pass_context
    def flow_group(ctx, **options):
        apply_global_options(ctx, **options)

    def run_options(function):
        for option in reversed([
            click.option("--compute", default=None, help="Compute backend for every step (METAFLOW_DEFAULT_COMPUTE)."),
            click.option("--max-workers", type=click.IntRange(min=1), default=None,
                         help="How many tasks run at once (default: the number of cores)."),
            click.option("--max-num-splits", type=click.IntRange(min=1), default=100, show_default=True,
                         help="Fail a foreach that would start more tasks than this."),
            click.option("--tag", "tags", multiple=True, help="Tag the run (repeatable)."),
            click.option("--with", "decospecs", multiple=True, metavar="DECORATOR[:k=v,...]",
                         help="Attach a step decorator to every step, e.g. --with retry:times=2."),
            click.option("--run-id-file", type=click.Path(dir_okay=False), default=None,
                         help="Write the run id to this file as soon as it is known."),
        ]):
            function = option(function)
        return function

    def options_of(kw) -> "RunOptions":
        from ..runtime import RunOptions

        return RunOptions(compute=kw["compute"], max_workers=kw["max_workers"], max_num_splits=kw["max_num_splits"],
                          tags=tuple(kw["tags"]), decospecs=tuple(kw["decospecs"]),
                          production_token=kw.get("production_token"), run_id_file=kw["run_id_file"])

    @flow_group.command(help="Run the flow on this machine (or on --compute).")
    @run_options
    @click.option("--production-token", default=None, hidden=True)
    @click.pass_obj
    def run(state: CliState, **kw):
        from ..parameters import ParameterContext, flow_parameters
        from ..runtime import Runtime

        settings = state.settings()
        flow_graph = graph()
        values = {}
        for attribute, parameter in flow_parameters(flow_cls).items():
            context = ParameterContext(flow_cls.__name__, settings.user, parameter.name)
            values[attribute] = parameter.resolve(kw.pop(f"param_{attribute}", None), context)
        Runtime(flow_cls, flow_graph, flow_file, settings, state.registry(), state.console(),
                options_of(kw), parameters=values).execute()

    add_parameter_options(run, flow_cls)

    @flow_group.command(help="Run the flow again, reusing the successful tasks of an earlier run.")
    @click.argument("step_name", required=False, metavar="[STEP]")
    @click.option("--origin-run-id", default=None, help="The run to resume (default: your latest run of this flow).")
    @run_options
    @click.pass_obj
    def resume(state: CliState, step_name, origin_run_id, **kw):
        from ..datastore.task_store import FlowDataStore
        from ..resume import ResumePlan
        from ..runtime import Runtime

        settings = state.settings()
        registry = state.registry()
        flow_graph = graph()
        metadata = registry.create_backend("metadata", settings.backend_name("metadata"), settings)
        storage = registry.create_backend("datastore", settings.backend_name("datastore"), settings)
        mine = metadata.list_runs(flow_cls.__name__, tags=[f"user:{settings.user}"], limit=1)
        plan = ResumePlan.build(flow_graph, FlowDataStore(storage), metadata, origin_run_id, step_name, mine)
        Runtime(flow_cls, flow_graph, flow_file, settings, registry, state.console(), options_of(kw),
                resume=plan).execute()

    @flow_group.command(help="Print the output of a run's tasks: RUN, RUN/STEP or RUN/STEP/TASK.")
    @click.argument("pathspec")
    @click.option("--stderr", "stream", flag_value="stderr", help="Print standard error instead.")
    @click.option("--stdout", "stream", flag_value="stdout", default=True, help="Print standard output (default).")
    def logs(pathspec, stream):
        from .inspect import print_logs

        print_logs(flow_cls.__name__, pathspec, stream)

    @flow_group.command(help="Print the artifacts of a run's tasks: RUN/STEP or RUN/STEP/TASK.")
    @click.argument("pathspec")
    @click.option("--include", default="", help="Only these artifacts (comma-separated names).")
    @click.option("--max-value-size", default=1000, show_default=True,
                  help="Shorten values longer than this many characters (0: never).")
    def dump(pathspec, include, max_value_size):
        from .inspect import dump_artifacts

        dump_artifacts(flow_cls.__name__, pathspec, tuple(n for n in include.split(",") if n), max_value_size)

    @flow_group.command(help="Print the flow's steps and how they connect.")
    def show():
        click.echo(graph().describe(), nl=False)

    @flow_group.command(help="Validate the flow's graph without running anything.")
    @click.pass_obj
    def check(state: CliState):
        g = graph()
        state.console().info(f"{g.name}: {len(g.nodes)} steps, the graph looks good.")

    @flow_group.command(hidden=True, help="Run one task (the command every compute backend runs).")
    @click.argument("step_name")
    @click.option("--flow", "flow_name", default=None)
    @click.option("--run-id", required=True)
    @click.option("--task-id", required=True)
    @click.option("--input-paths", default="")
    @click.option("--split-index", type=int, default=None)
    @click.option("--retry-count", type=int, default=0)
    @click.option("--max-user-code-retries", type=int, default=0)
    @click.option("--tag", "tags", multiple=True)
    @click.option("--with", "decospecs", multiple=True)
    @click.pass_obj
    def step(state: CliState, step_name, flow_name, run_id, task_id, input_paths, split_index,
             retry_count, max_user_code_retries, tags, decospecs):
        from ..task import TaskArguments, run_task

        args = TaskArguments(
            flow_file=flow_file, step_name=step_name, flow_name=flow_name or flow_cls.__name__,
            run_id=run_id, task_id=task_id,
            input_paths=tuple(p for p in input_paths.split(",") if p),
            split_index=split_index, retry_count=retry_count,
            max_user_code_retries=max_user_code_retries, tags=tuple(tags), decospecs=tuple(decospecs),
        )
        return run_task(args, state.settings(), state.registry())

    @flow_group.command(help="Deploy the flow to a scheduler for production runs.")
    @click.option("--scheduler", default=None, help="Scheduler backend (METAFLOW_DEFAULT_SCHEDULER).")
    @click.option("--tag", "tags", multiple=True, help="Tag every run of the deployment.")
    @click.pass_obj
    def deploy(state: CliState, scheduler, tags):
        from ..scheduler.base import DeployRequest

        settings = state.settings()
        name = scheduler or settings.backend_name("scheduler")
        backend = state.registry().create_backend("scheduler", name, settings)
        deployment = backend.deploy(DeployRequest(flow_file, flow_cls.__name__, graph(), tuple(tags)))
        state.console().info(
            f"Deployed {deployment.flow_name} to the {name} scheduler; its runs are in namespace "
            f"{deployment.namespace}. Start one with: flow trigger {Path(flow_file).name}"
        )

    @flow_group.command(help="Start a run of the deployed flow now.")
    @click.option("--scheduler", default=None, help="Scheduler backend (METAFLOW_DEFAULT_SCHEDULER).")
    @click.pass_obj
    def trigger(state: CliState, scheduler):
        settings = state.settings()
        name = scheduler or settings.backend_name("scheduler")
        backend = state.registry().create_backend("scheduler", name, settings)
        ref = backend.trigger(flow_cls.__name__)
        state.console().info(f"Triggered {ref} on the {name} scheduler.")

    return flow_group


def main_for_flow(flow_cls: type, flow_file: str) -> None:
    """``python myflow.py …``: run the flow's commands with the process's arguments."""
    run_cleanly(make_flow_cli(flow_cls, flow_file), sys.argv[1:], prog_name=os.path.basename(flow_file))
