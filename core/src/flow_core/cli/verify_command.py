"""``verify``: re-hash what a run stored and say what is damaged."""

from __future__ import annotations

import click

from flow_core.cli.state import CliState, my_latest_run_id
from flow_core.datastore import run_check
from flow_core.datastore.run_check import LEFTOVER_AGE, RunCheck
from flow_core.datastore.task_store import FlowDataStore
from flow_core.errors import NotFound


@click.command(help="Check a run's stored objects. Every object is re-hashed and damaged ones reported (default: your latest run).")
@click.argument("run_ids", nargs=-1, metavar="[RUN_ID]...")
@click.option("--all", "every_run", is_flag=True, help="Every run of the flow in the datastore.")
@click.option("--remove-damaged", is_flag=True,
              help="Delete damaged objects, so that `resume` runs the tasks that wrote them again.")
@click.pass_obj
def verify(state: CliState, run_ids: tuple[str, ...], every_run: bool, remove_damaged: bool) -> None:
    flow_name = state.flow.name
    backends = state.backends()
    datastore = FlowDataStore(backends.storage)
    console = state.console()
    selected = list(run_ids) or (_all_runs(datastore, flow_name) if every_run else [_latest_run(state)])
    checks = []
    for run_id in selected:
        check = run_check.check_run(datastore, flow_name, run_id)
        checks.append(check)
        _report(console, check)
    leftovers = backends.storage.remove_leftovers(LEFTOVER_AGE)
    if leftovers:
        console.info(f"Removed {len(leftovers)} temporary file(s) left by interrupted writes.")
    damaged_runs = [c for c in checks if c.damaged]
    if not damaged_runs:
        return
    if remove_damaged:
        removed = sorted({key for c in damaged_runs for key in run_check.remove_damaged(datastore, c)})
        console.info(f"Removed {len(removed)} damaged object(s); `resume --origin-run-id RUN` now runs "
                     "the tasks that wrote them again.")
    else:
        ids = " ".join(c.run_id for c in damaged_runs)
        console.info(f"`verify {ids} --remove-damaged` removes them, then `resume --origin-run-id RUN` "
                     "writes them again.")
    raise SystemExit(1)


def _all_runs(datastore: FlowDataStore, flow_name: str) -> list[str]:
    ids = run_check.run_ids(datastore, flow_name)
    if not ids:
        raise NotFound(f"the datastore holds no run of {flow_name}")
    return ids


def _latest_run(state: CliState) -> str:
    run_id = my_latest_run_id(state.backends(), state.flow.name)
    if run_id is None:
        raise NotFound(f"you have no run of {state.flow.name} to verify; name one, or use --all")
    return run_id


def _report(console, check: RunCheck) -> None:
    where = f"{check.flow_name}/{check.run_id}"
    counts = f"{check.objects} object(s) of {check.indexes} task attempt(s)"
    if not check.damaged:
        console.result(f"{where}: {counts}, all intact.")
        return
    console.error(f"{where}: {len(check.damaged)} damaged among {counts}:")
    for damage in check.damaged:
        console.error(f"  {damage.key}: {damage.why}")
        for broken in damage.breaks:
            console.error(f"    breaks {broken}")
