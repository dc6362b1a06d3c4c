"""``card server``: a run's cards over HTTP on this machine, as Metaflow's card viewer.

A read-only stdlib HTTP server, bound to 127.0.0.1 unless told otherwise. Every request reads
the datastore afresh, so a running task's live card shows its latest refresh (the card reloads
itself while it is running), and without ``--run-id`` the page follows the newest run.

    GET /                                  the run's tasks and their cards (reloads itself)
    GET /cards.json                        the same as JSON
    GET /card/RUN/STEP/TASK/HASH           one card's HTML
"""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Callable, Optional
from urllib.parse import quote, unquote, urlsplit

import attrs

from flow_core.backends.storage import StorageBackend
from flow_core.datastore.card_store import StoredCard, cards_of_run, read_card
from flow_core.errors import FlowError
from flow_core.model.cards.markup import escape

#: Seconds between reloads of the index page, so new tasks and cards appear.
INDEX_RELOAD_SECONDS = 5


@attrs.frozen
class ServedRun:
    """Which run the server shows: a fixed one, or the newest one ``latest`` finds on each request."""

    flow_name: str
    run_id: Optional[str] = None
    latest: Callable[[], Optional[str]] = attrs.field(default=lambda: None, eq=False)
    max_cards: int = 30

    def current_run(self) -> Optional[str]:
        return self.run_id or self.latest()


def card_url(card: StoredCard) -> str:
    _flow, run_id, step, task = card.pathspec.split("/")
    return "/card/" + "/".join(quote(part, safe="") for part in (run_id, step, task, card.hash))


def _describe(card: StoredCard) -> dict:
    return {"pathspec": card.pathspec, "type": card.type, "id": card.id, "hash": card.hash,
            "attempt": card.attempt, "url": card_url(card)}


class CardServer(HTTPServer):
    """One request at a time (each answered and closed, HTTP/1.0): the metadata and storage
    backends are then only ever used from one thread."""

    def __init__(self, address: tuple[str, int], storage: StorageBackend, run: ServedRun):
        self.storage = storage
        self.run = run
        super().__init__(address, CardRequestHandler)

    def run_cards(self, run_id: str) -> list[StoredCard]:
        """The run's cards in step-then-task order, at most ``max_cards`` of them."""
        found = cards_of_run(self.storage, self.run.flow_name, run_id)
        ordered = [card for pathspec in sorted(found) for card in found[pathspec]]
        return ordered[: self.run.max_cards]


class CardRequestHandler(BaseHTTPRequestHandler):
    server: CardServer
    server_version = "FlowCardServer"

    def log_message(self, format: str, *args: object) -> None:  # requests are not worth a line each
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", self._index())
            elif path == "/cards.json":
                self._send(HTTPStatus.OK, "application/json", self._listing())
            elif path.startswith("/card/"):
                self._card([unquote(part) for part in path[len("/card/"):].split("/")])
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", f"nothing at {path}\n")
        except FlowError as exc:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", f"{exc}\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "the card server is read-only\n",
                   {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _send(self, status: HTTPStatus, content_type: str, body: str, headers: Optional[dict] = None) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")  # a live card changes under the same address
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _listing(self) -> str:
        run_id = self.server.run.current_run()
        cards = self.server.run_cards(run_id) if run_id else []
        return json.dumps({"flow": self.server.run.flow_name, "run_id": run_id,
                           "cards": [_describe(card) for card in cards]}, indent=2)

    def _index(self) -> str:
        flow_name = self.server.run.flow_name
        run_id = self.server.run.current_run()
        if run_id is None:
            body = f"<p>{escape(flow_name)} has no run yet; this page shows the next one when it starts.</p>"
        else:
            rows = "".join(
                f'<tr><td>{escape(card.pathspec)}</td><td>{escape(card.type)}</td><td>{escape(card.id or "")}</td>'
                f'<td><a href="{escape(card_url(card))}">{escape(card.hash[:8])}</a></td></tr>'
                for card in self.server.run_cards(run_id))
            body = (f"<h1>Cards of {escape(flow_name)}/{escape(run_id)}</h1>"
                    + (f"<table><thead><tr><th>task</th><th>type</th><th>id</th><th>card</th></tr></thead>"
                       f"<tbody>{rows}</tbody></table>" if rows else "<p>No task of this run has a card yet.</p>"))
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f'<meta http-equiv="refresh" content="{INDEX_RELOAD_SECONDS}"><title>Cards of {escape(flow_name)}</title>'
                "<style>body { font-family: sans-serif; margin: 24px; } td, th { padding: 4px 12px; text-align: left; }"
                "</style></head><body>" + body + "</body></html>\n")

    def _card(self, parts: list[str]) -> None:
        if len(parts) != 4:
            raise FlowError("a card's address is /card/RUN/STEP/TASK/HASH")
        run_id, step, task, hash = parts
        pathspec = f"{self.server.run.flow_name}/{run_id}/{step}/{task}"
        cards = cards_of_run(self.server.storage, self.server.run.flow_name, run_id, step).get(pathspec, [])
        chosen = [card for card in cards if card.hash.startswith(hash)] if hash else []
        if len(chosen) != 1:
            raise FlowError(f"{pathspec} has no card with hash {hash}")
        self._send(HTTPStatus.OK, "text/html; charset=utf-8", read_card(self.server.storage, chosen[0]))
