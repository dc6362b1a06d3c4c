"""``tag add|remove|replace|list``: a run's user tags, as Metaflow's command line spells it."""

from __future__ import annotations

import click

from flow_core.cli.run_commands import checked_tags
from flow_core.cli.state import CliState, my_latest_run_id
from flow_core.client import Flow, Run, namespace
from flow_core.errors import NotFound

_RUN_ID = click.option("--run-id", default=None, help="The run (default: your latest run of this flow).")


def _run(state: CliState, run_id: str | None) -> Run:
    namespace(None)  # naming a run is explicit enough
    if run_id is None:
        run_id = my_latest_run_id(state.backends(), state.flow.name)
        if run_id is None:
            raise NotFound(f"you have no run of {state.flow.name} to tag; name one with --run-id")
    return Run(f"{state.flow.name}/{run_id}")


def _one_tag(ctx: click.Context, param: click.Parameter, value: str) -> str:
    return checked_tags(ctx, param, (value,))[0]


def _print_tags(run: Run) -> None:
    click.echo(f"{run.pathspec}: {', '.join(sorted(run.user_tags)) or '(no user tags)'}")


@click.group(help="Add, remove, replace or list a run's tags.")
def tag() -> None:
    pass


@tag.command("add", help="Add tags to a run.")
@_RUN_ID
@click.argument("tags", nargs=-1, required=True, callback=checked_tags)
@click.pass_obj
def add(state: CliState, run_id: str | None, tags: tuple[str, ...]) -> None:
    run = _run(state, run_id)
    run.add_tags(tags)
    _print_tags(run)


@tag.command("remove", help="Remove tags from a run.")
@_RUN_ID
@click.argument("tags", nargs=-1, required=True, callback=checked_tags)
@click.pass_obj
def remove(state: CliState, run_id: str | None, tags: tuple[str, ...]) -> None:
    run = _run(state, run_id)
    run.remove_tags(tags)
    _print_tags(run)


@tag.command("replace", help="Replace one tag of a run with another.")
@_RUN_ID
@click.argument("old", callback=_one_tag)
@click.argument("new", callback=_one_tag)
@click.pass_obj
def replace(state: CliState, run_id: str | None, old: str, new: str) -> None:
    run = _run(state, run_id)
    run.replace_tag(old, new)
    _print_tags(run)


@tag.command("list", help="List a run's user tags (default: your latest run).")
@_RUN_ID
@click.option("--all", "every_run", is_flag=True, help="Every run of the flow, newest first.")
@click.pass_obj
def list_tags(state: CliState, run_id: str | None, every_run: bool) -> None:
    if every_run:
        namespace(None)
        for run in Flow(state.flow.name):
            _print_tags(run)
        return
    _print_tags(_run(state, run_id))
