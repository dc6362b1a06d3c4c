"""Reading a task's cards back: `get_cards`, as Metaflow's.

``get_cards(task)`` lists the cards of the task's latest attempt that stored any (a running
attempt's live cards included); the HTML itself is read only when asked for."""

from __future__ import annotations

import html as html_module
from typing import Iterator, Optional, Union

from flow_core.client.namespace import backends
from flow_core.client.objects import Task
from flow_core.datastore.card_store import StoredCard, filter_cards, list_cards, read_card
from flow_core.errors import FlowError


class Card:
    """One stored card: ``.html`` (also ``.get()``), ``.type``, ``.id``, ``.hash``, ``.path``;
    shown inline in a notebook."""

    def __init__(self, stored: StoredCard, origin_pathspec: Optional[str] = None):
        self._stored = stored
        self._html: Optional[str] = None
        self.type = stored.type
        self.hash = stored.hash
        self.attempt = stored.attempt
        self.pathspec = stored.pathspec
        self.from_resumed = origin_pathspec is not None
        self.origin_pathspec = origin_pathspec

    @property
    def id(self) -> Optional[str]:
        return self._stored.id

    @property
    def key(self) -> str:
        """The card's key in the datastore."""
        return self._stored.key

    @property
    def path(self) -> str:
        """Where the card is stored: an ``s3://`` address, or the file under the local root."""
        storage = backends().datastore.storage
        return storage.location(self.key) or f"{storage.describe().rstrip('/')}/{self.key}"

    def get(self) -> str:
        """The card's HTML, read from the datastore on first use."""
        if self._html is None:
            self._html = read_card(backends().datastore.storage, self._stored)
        return self._html

    @property
    def html(self) -> str:
        return self.get()

    def _repr_html_(self) -> str:
        # An iframe keeps the card's styles and scripts out of the notebook's page.
        return (f'<iframe srcdoc="{html_module.escape(self.get(), quote=True)}" '
                'style="width: 100%; height: 600px; border: 0" sandbox="allow-scripts"></iframe>')

    def __repr__(self) -> str:
        return f"<Card {self.type}{'/' + self.id if self.id else ''} of {self.pathspec} ({self.hash[:5]})>"


class CardContainer:
    """The cards `get_cards` found: a read-only list that shows them all in a notebook."""

    def __init__(self, cards: list[Card], origin_pathspec: Optional[str] = None):
        self._cards = cards
        self.from_resumed = origin_pathspec is not None
        self.origin_pathspec = origin_pathspec

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[Card]:
        return iter(self._cards)

    def __getitem__(self, index: int) -> Card:
        return self._cards[index]

    def _repr_html_(self) -> str:
        return "\n".join(f"<h3>{html_module.escape(card.type)} card</h3>{card._repr_html_()}" for card in self._cards)

    def __repr__(self) -> str:
        return f"<CardContainer of {len(self._cards)} card(s)>"


def get_cards(task: Union[str, Task], id: Optional[str] = None, type: Optional[str] = None,
              follow_resumed: bool = True) -> CardContainer:
    """The cards of a task (a `Task` or its pathspec ``Flow/run/step/task``), optionally only
    those of ``id`` or ``type``. A task a resumed run reused has its cards where it first ran:
    ``follow_resumed`` finds them there."""
    if isinstance(task, str):
        if len(task.strip("/").split("/")) != 4:
            raise FlowError(f"'{task}' is not a task pathspec (Flow/run/step/task)")
        task = Task(task.strip("/"), _namespace_check=False)
    elif not isinstance(task, Task):
        raise FlowError(f"get_cards takes a Task or a task pathspec, not {task.__class__.__name__}")
    origin = task.origin_pathspec if follow_resumed else None
    pathspec = origin or task.pathspec
    attempt = task._attempt if origin is None else None  # Task(…, attempt=N): that attempt's cards
    stored = filter_cards(list_cards(backends().datastore.storage, pathspec, attempt), type=type, id=id)
    return CardContainer([Card(card, origin) for card in stored], origin)
