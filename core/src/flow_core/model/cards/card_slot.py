"""`CardSlot`: one @card of a task, and `CardWriter`: where its HTML goes.

The model names what a card is and asks for somewhere to put it; the datastore provides that
place (`flow_core.datastore.card_store.TaskCardWriter`), handed to the decorator by the engine."""

from __future__ import annotations

import re
from typing import Protocol

import attrs

#: Metaflow's rule for card ids (and Flow's for types): they name stored files.
CARD_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@attrs.frozen
class CardSlot:
    """A card of the task: its position among the step's @card decorators, its type and id."""

    index: int
    type: str
    id: str | None = None


class CardWriter(Protocol):
    def write(self, slot: CardSlot, html: str) -> None:
        """Store (or replace) the card's HTML for the running attempt."""
