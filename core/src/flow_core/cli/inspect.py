"""Reading a flow and its runs back at the terminal: ``show``, ``check``, and ``logs`` and
``dump`` through the Client API."""

from __future__ import annotations

import inspect as inspect_module
import pickle
import sys
from typing import Iterator

import click

from flow_core.cli.flow_setup import prepare_flow
from flow_core.cli.state import CliState
from flow_core.client import Run, Task, namespace
from flow_core.client.task_values import artifact_values
from flow_core.errors import FlowError


def selected_tasks(flow_name: str, pathspec: str) -> list[Task]:
    """Tasks under RUN, RUN/STEP or RUN/STEP/TASK (a leading ``Flow/`` is accepted too), in
    every namespace: naming a run is explicit enough."""
    parts = pathspec.strip("/").split("/")
    if parts and parts[0] == flow_name:
        parts = parts[1:]
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise FlowError(f"'{pathspec}' is not RUN, RUN/STEP or RUN/STEP/TASK")
    namespace(None)
    run = Run(f"{flow_name}/{parts[0]}")
    if len(parts) == 1:
        steps = list(reversed(list(run)))  # in the order they ran
    else:
        steps = [run[parts[1]]]
    if len(parts) == 3:
        return [steps[0][parts[2]]]
    return [task for step in steps for task in step]


def _headed(tasks: list[Task]) -> Iterator[Task]:
    for task in tasks:
        if len(tasks) > 1:
            click.secho(f"[{task.pathspec.split('/', 1)[1]}]", bold=True)
        yield task


def print_logs(flow_name: str, pathspec: str, stream: str) -> None:
    """Print the stored ``stream`` of each selected task, under a heading when there are several."""
    for task in _headed(selected_tasks(flow_name, pathspec)):
        text = task.stdout if stream == "stdout" else task.stderr
        sys.stdout.write(text)
        sys.stdout.flush()


def dump_to_file(flow_name: str, pathspec: str, include: tuple[str, ...], path: str,
                 private: bool = False) -> None:
    """Pickle ``{task pathspec: {name: value}}`` of the selected tasks into ``path``, as
    Metaflow's ``dump --file`` does, for a script to read back whole."""
    values = {task.pathspec: artifact_values(task, include, private) for task in selected_tasks(flow_name, pathspec)}
    with open(path, "wb") as handle:
        pickle.dump(values, handle, protocol=pickle.HIGHEST_PROTOCOL)
    click.echo(f"Artifacts of {len(values)} task(s) written to {path}.")


def dump_artifacts(flow_name: str, pathspec: str, include: tuple[str, ...], max_value_size: int,
                   private: bool = False) -> None:
    """Print each selected task's artifacts as ``name: value``, shortening long values."""
    for task in _headed(selected_tasks(flow_name, pathspec)):
        artifacts = artifact_values(task, include, private)
        if not artifacts:
            click.echo("(no artifacts)" if task.successful else f"(the task failed: {task.exception})")
        for name, value in artifacts.items():
            text = repr(value)
            if max_value_size and len(text) > max_value_size:
                text = text[:max_value_size] + f"... ({len(text) - max_value_size} more characters)"
            click.echo(f"{name}: {text}")


@click.command(help="Print what a run's tasks printed. PATHSPEC is RUN, RUN/STEP or RUN/STEP/TASK.")
@click.argument("pathspec")
@click.option("--stderr", "stream", flag_value="stderr", help="Print standard error instead.")
@click.option("--stdout", "stream", flag_value="stdout", default=True, help="Print standard output (default).")
@click.pass_obj
def logs(state: CliState, pathspec: str, stream: str) -> None:
    print_logs(state.flow.name, pathspec, stream)


@click.command(help="Print a run's artifacts. PATHSPEC is RUN/STEP or RUN/STEP/TASK.")
@click.argument("pathspec")
@click.option("--private/--no-private", default=False,
              help="Show private artifacts too (names starting with '_', as Metaflow keeps its own).")
@click.option("--include", default="", help="Only these artifacts (comma-separated names).")
@click.option("--max-value-size", default=1000, show_default=True,
              help="Shorten values longer than this many characters (0: never).")
@click.option("--file", "path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Pickle the artifacts into this file ({task: {name: value}}) instead of printing them.")
@click.pass_obj
def dump(state: CliState, pathspec: str, private: bool, include: str, max_value_size: int,
         path: str | None) -> None:
    names = tuple(n for n in include.split(",") if n)
    if path:
        dump_to_file(state.flow.name, pathspec, names, path, private)
    else:
        dump_artifacts(state.flow.name, pathspec, names, max_value_size, private)


@click.command(help="Print the flow's steps and how they connect.")
@click.pass_obj
def show(state: CliState) -> None:
    doc = inspect_module.cleandoc(state.flow.cls.__doc__ or "")
    if doc:
        click.echo(doc + "\n")
    click.echo(state.flow.graph().describe(), nl=False)


@click.command("output-dot", help="Print the flow's graph in Graphviz's dot language.")
@click.pass_obj
def output_dot(state: CliState) -> None:
    graph = state.flow.graph()
    click.echo(f"digraph {graph.name} {{")
    for node in graph:
        click.echo(f'    "{node.name}" [shape=box];')
        for child in node.out_funcs:
            click.echo(f'    "{node.name}" -> "{child}";')
    click.echo("}")


@click.command(help="Print the version of Flow and of each installed plugin.")
@click.pass_obj
def version(state: CliState) -> None:
    for info in state.backends().registry.plugins():
        click.echo(f"{info.name} {info.version}")


@click.command("help", help="Print the help of every command.")
@click.pass_context
def help_command(ctx: click.Context) -> None:
    group = ctx.parent.command if ctx.parent is not None else None
    if not isinstance(group, click.Group):
        return
    for name in group.list_commands(ctx.parent):
        command = group.get_command(ctx.parent, name)
        if command is None or name == "help":
            continue
        with click.Context(command, info_name=name, parent=ctx.parent) as sub_ctx:
            click.echo(command.get_help(sub_ctx) + "\n")


@click.command(help="Validate the flow's graph without running anything.")
@click.pass_obj
def check(state: CliState) -> None:
    graph = state.flow.graph()
    prepare_flow(state)
    state.console().info(f"{graph.name}: {len(graph.nodes)} steps, the graph looks good.")
