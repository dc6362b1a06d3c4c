"""``current.card``: what a step's code adds to its cards, with Metaflow's rules.

``current.card.append(c)`` goes to the step's one editable card (of a type that allows user
components: ``default``, ``blank``): the only one, else the one marked ``customize=True``, else
the only one without an ``id``; ``current.card["id"]`` reaches
a card by id. When a call cannot tell which card is meant, it warns once and changes nothing:
a card never fails the task.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, Callable, Iterable, Iterator

from flow_core.model.cards.card_slot import CardSlot
from flow_core.model.cards.components import Error, MetaflowCardComponent, render_component


def card_warning(message: str) -> None:
    """One line on the task's standard error, as Metaflow's ``[@card WARNING]``."""
    print(f"[@card WARNING] {message}", file=sys.stderr)


class CardComponents:
    """The components of one card, in order: list-like (``append``, ``extend``, iteration)
    and by component id (``components["loss"]``)."""

    def __init__(self, components: Iterable[Any] = ()):
        self._items: dict[str, Any] = {}
        self._counter = 0
        for component in components:
            self.append(component)

    def append(self, component: Any, id: str | None = None) -> None:
        if id is None:
            id = getattr(component, "component_id", None) or f"component-{self._counter}"
        self._counter += 1
        if isinstance(component, MetaflowCardComponent):
            component.component_id = id
        self._items[id] = component

    def extend(self, components: Iterable[Any]) -> None:
        for component in components:
            self.append(component)

    def clear(self) -> None:
        self._items.clear()

    def keys(self) -> list[str]:
        return list(self._items)

    def __getitem__(self, id: str) -> Any:
        return self._items[id]

    def __setitem__(self, id: str, component: Any) -> None:
        if id in self._items:
            raise KeyError(f"card component '{id}' exists already; assign the whole card's list to replace it")
        self.append(component, id=id)

    def __delitem__(self, id: str) -> None:
        del self._items[id]

    def __contains__(self, id: object) -> bool:
        return id in self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items.values()))

    def items(self) -> list[tuple[str, Any]]:
        return list(self._items.items())

    def __len__(self) -> int:
        return len(self._items)


class CardManager:
    """One card of the running task: its components, and ``refresh(data)`` to store it as it is
    now while the task runs. Refreshes come at most once per ``refresh_interval`` seconds; one
    that comes sooner is not lost but stored when the interval is over, so a live card always
    catches up with the latest ``update()`` of its components."""

    def __init__(self, slot: CardSlot, render_live: Callable[[CardSlot], None], refresh_interval: float = 5,
                 customize: bool = False, editable: bool = True):
        self.slot = slot
        self.customize = customize
        #: Whether ``current.card.append`` may choose it (its type's ALLOW_USER_COMPONENTS).
        self.editable = editable
        self._render_live = render_live
        self._refresh_interval = float(refresh_interval)
        self._last_refresh: float | None = None
        self._render_seq = 0
        self._latest_user_data: Any = None
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._pending: threading.Timer | None = None
        self._closed = False
        self.components = CardComponents()

    def append(self, component: Any, id: str | None = None) -> None:
        self.components.append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        self.components.extend(components)

    def clear(self) -> None:
        self.components.clear()

    def refresh(self, data: Any = None, force: bool = False) -> None:
        """Store the card as it is now, so it can be watched while the task runs; ``data`` (JSON)
        goes to the card type's ``render_runtime`` as ``data["user"]``. A call sooner than
        ``refresh_interval`` after the last one is stored when the interval is over, unless
        ``force``."""
        if data is not None:
            try:
                json.dumps(data)
            except (TypeError, ValueError):
                card_warning("the data given to `current.card.refresh` is not JSON serializable; it is ignored")
                data = None
        self._latest_user_data = data
        with self._lock:
            if self._closed:
                return
            now = time.monotonic()
            wait = 0.0 if self._last_refresh is None else self._last_refresh + self._refresh_interval - now
            if wait > 0 and not force:
                if self._pending is None:
                    self._pending = threading.Timer(wait, self._refresh_now)
                    self._pending.daemon = True
                    self._pending.start()
                return
            self._cancel_pending()
            self._last_refresh = now
        self._store()

    def _refresh_now(self) -> None:
        with self._lock:
            self._pending = None
            if self._closed:
                return
            self._last_refresh = time.monotonic()
        self._store()

    def _store(self) -> None:
        with self._render_lock:
            self._render_seq += 1
            self._render_live(self.slot)

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def close(self) -> None:
        """The task is over: no live card is stored after this (the final card follows)."""
        with self._lock:
            self._closed = True
            self._cancel_pending()
        with self._render_lock:  # a live card being stored now finishes before the final one
            pass

    def latest_data(self, final: bool, mode: str) -> dict[str, Any]:
        """What a card type's ``render_runtime`` (and, as ``runtime_data``, its final ``render``)
        receives, as in Metaflow: the user's data, the HTML of the updatable components by id,
        the render sequence and the mode."""
        updatable = {id: render_component(component) for id, component in self.components.items()
                     if getattr(component, "REALTIME_UPDATABLE", False)}
        return {"user": self._latest_user_data if self._latest_user_data is not None else {},
                "components": updatable, "render_seq": "final" if final else self._render_seq, "mode": mode}

    def __iter__(self) -> Iterator[Any]:
        return iter(self.components)

    def __len__(self) -> int:
        return len(self.components)


class CardComponentCollector:
    """``current.card`` in a step with one or more @card decorators."""

    def __init__(self) -> None:
        self._cards: list[CardManager] = []
        self._warned: set[str] = set()

    def _add_card(self, manager: CardManager) -> None:
        self._cards.append(manager)

    @property
    def cards(self) -> list[CardManager]:
        return list(self._cards)

    def _by_id(self) -> dict[str, CardManager]:
        counts: dict[str, int] = {}
        for card in self._cards:
            if card.slot.id is not None:
                counts[card.slot.id] = counts.get(card.slot.id, 0) + 1
        return {card.slot.id: card for card in self._cards if card.slot.id is not None and counts[card.slot.id] == 1}

    def _default_card(self) -> CardManager | None:
        editable = [c for c in self._cards if c.editable]
        if len(editable) == 1:
            return editable[0]
        customized = [c for c in editable if c.customize]
        if len(customized) == 1:
            return customized[0]
        without_id = [c for c in editable if c.slot.id is None]
        if len(without_id) == 1:
            return without_id[0]
        return None

    def _warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        card_warning(message)
        for card in self._cards:
            card.append(Error(RuntimeError(message), "@card warning"))

    def _editable(self, call: str) -> CardManager | None:
        card = self._default_card()
        if card is None:
            self._warn_once(call, f"`current.card.{call}` cannot tell which of the step's {len(self._cards)} cards "
                                  "is meant: give each @card an id and use current.card[ID], or mark one "
                                  "customize=True. Nothing was changed.")
        return card

    def __getitem__(self, id: str) -> Any:
        card = self._by_id().get(id)
        if card is None:
            self._warn_once(f"id:{id}", f"`current.card['{id}']` is not a card of this step: set "
                                        f"@card(id='{id}') (ids are unique per step). Nothing was changed.")
            return []
        return card

    def __setitem__(self, id: str, components: list[Any]) -> None:
        card = self._by_id().get(id)
        if card is None or not isinstance(components, list):
            self._warn_once(f"set:{id}", f"`current.card['{id}'] = ...` takes a list of components, for a card "
                                         f"with @card(id='{id}'). Nothing was changed.")
            return
        card.components = CardComponents(components)

    def __contains__(self, id: object) -> bool:
        return id in self._by_id()

    def append(self, component: Any, id: str | None = None) -> None:
        card = self._editable("append")
        if card is not None:
            card.append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        card = self._editable("extend")
        if card is not None:
            card.extend(components)

    def clear(self) -> None:
        card = self._default_card()
        if card is not None:
            card.clear()

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        card = self._default_card()
        if card is not None:
            card.refresh(*args, **kwargs)

    @property
    def components(self) -> CardComponents | None:
        card = self._editable("components")
        return card.components if card is not None else None

    def get(self, type: str | None = None) -> list[CardManager]:
        """The step's cards of ``type``."""
        return [card for card in self._cards if card.slot.type == type]
