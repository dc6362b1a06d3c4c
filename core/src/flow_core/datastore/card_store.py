"""Where cards live in the datastore: one HTML blob per card of a task attempt.

A card is stored next to its task's index, under a key that names it::

    flows/<flow>/<run>/<step>/<task>/cards/<attempt>/<index>-<type>[-<id>]-<hash>.html

Unlike artifacts, a card is not content-addressed: a running task overwrites its card in
place on every ``current.card.refresh()`` (storage writes are atomic per object, so a reader
sees the old card or the new one), and readers can watch it before the attempt commits. The
``hash`` names the card, not its content: stable across refreshes, so a reader can follow it.
Every storage backend moves these blobs as any other, so cards on S3 work as local ones.
"""

from __future__ import annotations

from typing import Iterable

import attrs
import blake3

from flow_core.backends.storage import StorageBackend
from flow_core.datastore.task_store import INDEX_PREFIX, task_prefix
from flow_core.errors import BlobNotFound, NotFound
from flow_core.model.cards.card_slot import CARD_NAME, CardSlot

CARDS_FOLDER = "cards"
CARD_SUFFIX = ".html"
#: How many characters of a card's hash name it in ``card get --hash`` (Metaflow's five).
SHORT_HASH = 5


@attrs.frozen
class StoredCard:
    """One stored card of a task attempt; `key` is its storage key."""

    pathspec: str
    attempt: int
    index: int
    type: str
    id: str | None
    hash: str

    @property
    def key(self) -> str:
        return card_key(self.pathspec, self.attempt, self.index, self.type, self.id, self.hash)


def cards_prefix(pathspec: str, attempt: int | None = None) -> str:
    """The folder of a task's cards (of one attempt, when given)."""
    flow, run, step, task = pathspec.split("/")
    prefix = f"{task_prefix(flow, run, step, task)}{CARDS_FOLDER}/"
    return prefix if attempt is None else f"{prefix}{attempt}/"


def card_hash(pathspec: str, attempt: int, index: int) -> str:
    return blake3.blake3(f"{pathspec}/{attempt}/{index}".encode()).hexdigest()[:16]


def card_key(pathspec: str, attempt: int, index: int, card_type: str, card_id: str | None, hash: str) -> str:
    kind = card_type if CARD_NAME.match(card_type) else "unknown"
    name = f"{index}-{kind}" + (f"-{card_id}" if card_id else "") + f"-{hash}{CARD_SUFFIX}"
    return cards_prefix(pathspec, attempt) + name


def parse_card_key(pathspec: str, key: str) -> StoredCard | None:
    """The card a key names, or None for a key that is not a card of this task."""
    prefix = cards_prefix(pathspec)
    if not key.startswith(prefix) or not key.endswith(CARD_SUFFIX):
        return None
    attempt, _, name = key[len(prefix):-len(CARD_SUFFIX)].partition("/")
    parts = name.split("-")
    if not attempt.isdigit() or len(parts) not in (3, 4) or not parts[0].isdigit():
        return None
    card_id = parts[2] if len(parts) == 4 else None
    return StoredCard(pathspec, int(attempt), int(parts[0]), parts[1], card_id, parts[-1])


class TaskCardWriter:
    """Writes the cards of one running attempt (the engine hands it to @card)."""

    def __init__(self, storage: StorageBackend, pathspec: str, attempt: int):
        self.storage = storage
        self.pathspec = pathspec
        self.attempt = attempt

    def card(self, slot: CardSlot) -> StoredCard:
        return StoredCard(self.pathspec, self.attempt, slot.index, slot.type, slot.id,
                          card_hash(self.pathspec, self.attempt, slot.index))

    def write(self, slot: CardSlot, html: str) -> None:
        self.storage.put(self.card(slot).key, html.encode("utf-8"))


def list_cards(storage: StorageBackend, pathspec: str, attempt: int | None = None) -> list[StoredCard]:
    """The cards of one attempt of a task, in the order of the step's @card decorators: of
    ``attempt``, or else of the latest attempt that stored any (a running one included)."""
    found = [card for card in (parse_card_key(pathspec, key) for key in storage.list(cards_prefix(pathspec, attempt)))
             if card is not None]
    if not found:
        return []
    chosen = attempt if attempt is not None else max(card.attempt for card in found)
    return sorted((card for card in found if card.attempt == chosen), key=lambda card: card.index)


def cards_of_run(storage: StorageBackend, flow_name: str, run_id: str,
                 step_name: str | None = None) -> dict[str, list[StoredCard]]:
    """``{task pathspec: its cards}`` for every task of a run (or of one step) that has any,
    from one listing: what a page showing a thousand tasks needs, without a call per task.
    Each task's cards are those of its latest attempt that stored any."""
    prefix = f"{INDEX_PREFIX}/{flow_name}/{run_id}/" + (f"{step_name}/" if step_name else "")
    found: dict[str, list[StoredCard]] = {}
    for key in storage.list(prefix):
        parts = key[len(INDEX_PREFIX) + 1:].split("/")
        if len(parts) < 6 or parts[4] != CARDS_FOLDER:
            continue
        pathspec = "/".join(parts[:4])
        card = parse_card_key(pathspec, key)
        if card is not None:
            found.setdefault(pathspec, []).append(card)
    for pathspec, cards in found.items():
        latest = max(card.attempt for card in cards)
        found[pathspec] = sorted((c for c in cards if c.attempt == latest), key=lambda card: card.index)
    return found


def filter_cards(cards: Iterable[StoredCard], type: str | None = None, id: str | None = None,
                 hash: str | None = None) -> list[StoredCard]:
    """The cards matching every criterion given; ``hash`` may be a prefix of the hash."""
    return [card for card in cards
            if (type is None or card.type == type) and (id is None or card.id == id)
            and (hash is None or card.hash.startswith(hash))]


def read_card(storage: StorageBackend, card: StoredCard) -> str:
    try:
        return storage.get(card.key).decode("utf-8", "replace")
    except BlobNotFound:
        raise NotFound(f"the card {card.key} is no longer in the datastore") from None
