"""``card list|get|view|server``: a task's cards at the terminal, as Metaflow's ``card`` commands.

PATHSPEC is ``RUN/STEP/TASK``, ``RUN/STEP`` (the step's task) or ``STEP`` (in the latest run).
``view`` writes the card to a file and prints its path (it opens no browser); ``server`` serves
a run's cards on this machine (`flow_core.cli.card_server`)."""

from __future__ import annotations

import json
import os
import tempfile

import click

from flow_core.cli.state import CliState
from flow_core.client import Flow, Run, Task, namespace
from flow_core.client.cards import Card, get_cards
from flow_core.errors import FlowError, NotFound


def resolve_task(flow_name: str, pathspec: str) -> Task:
    parts = pathspec.strip("/").split("/")
    if parts and parts[0] == flow_name and len(parts) > 1:
        parts = parts[1:]
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise FlowError(f"'{pathspec}' is not STEP, RUN/STEP or RUN/STEP/TASK")
    if len(parts) == 1:
        run = Flow(flow_name).latest_run
        if run is None:
            raise NotFound(f"{flow_name} has no runs in namespace yet, so step '{parts[0]}' names no task")
    else:
        namespace(None)  # naming a run is explicit enough
        run = Run(f"{flow_name}/{parts[0]}")
    step = run[parts[-2] if len(parts) == 3 else parts[-1]]
    return step[parts[2]] if len(parts) == 3 else step.task


def _cards(state: CliState, pathspec: str, type: str | None, id: str | None, hash: str | None,
           follow_resumed: bool) -> tuple[Task, list[Card]]:
    task = resolve_task(state.flow.name, pathspec)
    found = [card for card in get_cards(task, id=id, type=type, follow_resumed=follow_resumed)
             if hash is None or card.hash.startswith(hash)]
    if not found:
        wanted = " ".join(f"{name} '{value}'" for name, value in (("type", type), ("id", id), ("hash", hash)) if value)
        raise NotFound(f"{task.pathspec} has no card" + (f" with {wanted}" if wanted else ""))
    return task, found


def _describe(card: Card) -> dict:
    return {"id": card.id, "type": card.type, "hash": card.hash, "attempt": card.attempt, "path": card.path}


def _one(task: Task, cards: list[Card], command: str) -> Card | None:
    """The card a `get`/`view` means; several found: list them and say how to pick one."""
    if len(cards) == 1:
        return cards[0]
    click.echo(f"{task.pathspec} has {len(cards)} cards; pick one with --type, --id or --hash:")
    for card in cards:
        click.echo(f"  {card.type:10} id={card.id or '-':12} hash={card.hash[:5]}  ({command} --hash {card.hash[:5]})")
    return None


def read_options(function):
    function = click.option("--hash", default=None, help="The card's hash (its first characters suffice).")(function)
    function = click.option("--id", "card_id", default=None, help="The card's id (@card(id=...)).")(function)
    function = click.option("--type", "card_type", default=None, help="The card's type (default, blank).")(function)
    return click.option("--follow-resumed/--no-follow-resumed", default=True, show_default=True,
                        help="For a task a resumed run reused, the cards of the task it was reused from.")(function)


@click.group(help="Read the cards @card stored: list, get or view them.")
def card() -> None:
    pass


@card.command("list", help="List a task's cards (PATHSPEC: RUN/STEP/TASK, RUN/STEP or STEP), or without "
                            "PATHSPEC those of every task of the latest run.")
@click.argument("pathspec", required=False)
@read_options
@click.option("--as-json", is_flag=True, help="Print the list as JSON.")
@click.pass_obj
def list_command(state: CliState, pathspec: str | None, card_type: str | None, card_id: str | None,
                 hash: str | None, follow_resumed: bool, as_json: bool) -> None:
    if pathspec is None:
        found = _latest_run_cards(state, card_type, card_id, hash, follow_resumed)
    else:
        found = [_cards(state, pathspec, card_type, card_id, hash, follow_resumed)]
    if as_json:
        listed = [{"pathspec": task.pathspec, "cards": [_describe(c) for c in cards]} for task, cards in found]
        click.echo(json.dumps(listed[0] if pathspec is not None else listed, indent=2))
        return
    for task, cards in found:
        click.echo(f"{len(cards)} card(s) of {task.pathspec}:")
        for one in cards:
            click.echo(f"  {one.type:10} id={one.id or '-':12} hash={one.hash}  {one.path}")


def _latest_run_cards(state: CliState, card_type: str | None, card_id: str | None, hash: str | None,
                      follow_resumed: bool) -> list[tuple[Task, list[Card]]]:
    run = Flow(state.flow.name).latest_run
    if run is None:
        raise NotFound(f"{state.flow.name} has no runs in this namespace")
    found = []
    for step in reversed(list(run)):  # in the order the steps ran
        for task in step:
            cards = [c for c in get_cards(task, id=card_id, type=card_type, follow_resumed=follow_resumed)
                     if hash is None or c.hash.startswith(hash)]
            if cards:
                found.append((task, cards))
    if not found:
        raise NotFound(f"no task of {run.pathspec} has a card")
    return found


@card.command(help="Print a card's HTML, or save it to FILE. PATHSPEC is RUN/STEP/TASK, RUN/STEP or STEP.")
@click.argument("pathspec")
@click.argument("file", required=False, type=click.Path(dir_okay=False, writable=True))
@read_options
@click.pass_obj
def get(state: CliState, pathspec: str, file: str | None, card_type: str | None, card_id: str | None,
        hash: str | None, follow_resumed: bool) -> None:
    task, cards = _cards(state, pathspec, card_type, card_id, hash, follow_resumed)
    chosen = _one(task, cards, "get")
    if chosen is None:
        return
    if file:
        with open(file, "w", encoding="utf-8") as handle:
            handle.write(chosen.html)
    else:
        click.echo(chosen.html, nl=False)


@card.command(help="Write a card to an HTML file and print its path, to open in a browser.")
@click.argument("pathspec")
@read_options
@click.pass_obj
def view(state: CliState, pathspec: str, card_type: str | None, card_id: str | None, hash: str | None,
         follow_resumed: bool) -> None:
    task, cards = _cards(state, pathspec, card_type, card_id, hash, follow_resumed)
    chosen = _one(task, cards, "view")
    if chosen is None:
        return
    folder = os.path.join(tempfile.gettempdir(), "flow-cards")
    os.makedirs(folder, exist_ok=True)
    name = "-".join([*task.pathspec.split("/"), chosen.type, *([chosen.id] if chosen.id else []), chosen.hash[:8]])
    path = os.path.join(folder, f"{name}.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(chosen.html)
    click.echo(path)


@card.command(help="Serve a run's cards over HTTP on this machine (read-only): the latest run, followed as new "
                   "runs start, or --run-id's. A running task's cards show their latest refresh.")
@click.option("--run-id", default=None, help="The run to show (default: the newest run in the namespace).")
@click.option("--port", default=8324, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but loopback lets other machines read the cards.")
@click.option("--namespace", "user_namespace", default=None,
              help="Tag the newest run must carry (default: user:<you>).")
@click.option("--max-cards", default=30, show_default=True, type=click.IntRange(1),
              help="Most cards the index lists.")
@click.pass_obj
def server(state: CliState, run_id: str | None, port: int, host: str, user_namespace: str | None,
           max_cards: int) -> None:
    backends = state.backends()
    flow_name = state.flow.name
    if run_id is not None:
        if "/" in run_id:
            raise FlowError(f"--run-id takes the run's id alone, not '{run_id}'")
        if backends.metadata.get_run(flow_name, run_id) is None:
            raise NotFound(f"{flow_name} has no run {run_id}")
    tag = user_namespace or f"user:{backends.settings.user}"

    def latest() -> str | None:
        runs = backends.metadata.list_runs(flow_name, tags=[tag], limit=1)
        return runs[0].run_id if runs else None

    from flow_core.cli.card_server import CardServer, ServedRun  # http.server: only `card server` needs it

    try:
        httpd = CardServer((host, port), backends.storage,
                           ServedRun(flow_name, run_id, latest, max_cards))
    except OSError as exc:
        raise FlowError(f"the card server cannot listen on {host}:{port} ({exc.strerror or exc}); "
                        "pick another port with --port") from None
    shown = f"run {run_id}" if run_id else f"the newest run tagged {tag}"
    click.echo(f"Serving the cards of {flow_name} ({shown}) at http://{host}:{httpd.server_address[1]}/ "
               "— Ctrl-C stops it", err=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
