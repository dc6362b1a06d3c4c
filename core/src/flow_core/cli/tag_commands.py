"""``tag add|remove|replace|list``: a run's user tags, as Metaflow's command line spells it."""

from __future__ import annotations

import click

from flow_core.cli.run_commands import checked_tags
from flow_core.cli.state import CliState, my_latest_run_id
from flow_core.engine.console import QUIET
from flow_core.client import Flow, Run, namespace
from flow_core.errors import FlowError, NotFound

_RUN_ID = click.option("--run-id", default=None, help="The run (default: your latest run of this flow).")


def _run(state: CliState, run_id: str | None) -> Run:
    namespace(None)  # naming a run is explicit enough
    if run_id is None:
        run_id = my_latest_run_id(state.backends(), state.flow.name)
        if run_id is None:
            raise NotFound(f"you have no run of {state.flow.name} to tag; name one with --run-id")
    return Run(f"{state.flow.name}/{run_id}")


def _one_tag(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return value if value is None else checked_tags(ctx, param, (value,))[0]


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


@tag.command("replace", help="Replace tags of a run: OLD NEW, or --remove OLD … --add NEW … "
             "(removals first, as Metaflow's).")
@_RUN_ID
@click.option("--add", "to_add", multiple=True, callback=checked_tags, help="A tag to add (repeatable).")
@click.option("--remove", "to_remove", multiple=True, callback=checked_tags, help="A tag to remove (repeatable).")
@click.argument("old", required=False, callback=_one_tag)
@click.argument("new", required=False, callback=_one_tag)
@click.pass_obj
def replace(state: CliState, run_id: str | None, to_add: tuple[str, ...], to_remove: tuple[str, ...],
            old: str | None, new: str | None) -> None:
    if (old is None) != (new is None):
        raise FlowError("give both the tag to replace and its replacement, or use --remove and --add")
    removed, added = (*to_remove, *([old] if old else [])), (*to_add, *([new] if new else []))
    if not removed or not added:
        raise FlowError("name at least one tag to remove and one to add; `tag add` or `tag remove` does one alone")
    run = _run(state, run_id)
    run.replace_tags(removed, added)
    _print_tags(run)


@tag.command("list", help="List a run's user tags (default: your latest run).")
@_RUN_ID
@click.option("--all", "every_run", is_flag=True, help="Every run of the flow, newest first.")
@click.option("--hide-system-tags", is_flag=True, help="With --flat: leave out the system tags.")
@click.option("--flat", is_flag=True, hidden=True,
              help="Every tag (system tags too, unless --hide-system-tags), one per line on standard error "
                   "after a heading line, as Metaflow's tooling reads them.")
@click.argument("arg_run_id", required=False, default=None)
@click.pass_obj
def list_tags(state: CliState, run_id: str | None, every_run: bool, hide_system_tags: bool, flat: bool,
              arg_run_id: str | None) -> None:
    if run_id is not None and arg_run_id is not None and run_id != arg_run_id:
        raise FlowError("name the run with --run-id or as an argument, not both")
    run_id = run_id or arg_run_id
    if every_run:
        namespace(None)
        runs = list(Flow(state.flow.name))
    else:
        runs = [_run(state, run_id)]
    if not flat:
        for run in runs:
            _print_tags(run)
        return
    tags: set[str] = set()
    for run in runs:
        tags |= run.user_tags if hide_system_tags else run.tags
    if state.verbosity != QUIET:  # Metaflow's --quiet silences this listing too
        click.echo(f"Tags of {', '.join(run.pathspec for run in runs)}:", err=True)
        for name in sorted(tags):
            click.echo(name, err=True)
