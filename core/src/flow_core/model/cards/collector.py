"""``current.card``: what a step's code adds to its cards, with Metaflow's rules.

``current.card.append(c)`` goes to the step's one editable card: the only card, else the only
one without an ``id``, else the one marked ``customize=True``; ``current.card["id"]`` reaches
a card by id. When a call cannot tell which card is meant, it warns once and changes nothing:
a card never fails the task.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Iterator

from flow_core.model.cards.card_slot import CardSlot
from flow_core.model.cards.components import Error, MetaflowCardComponent


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

    def __len__(self) -> int:
        return len(self._items)


class CardManager:
    """One card of the running task: its components, and ``refresh()`` to store it as it is
    now while the task runs (at most once per ``refresh_interval`` seconds)."""

    def __init__(self, slot: CardSlot, render_live: Callable[[CardSlot], None], refresh_interval: float = 5,
                 customize: bool = False):
        self.slot = slot
        self.customize = customize
        self._render_live = render_live
        self._refresh_interval = float(refresh_interval)
        self._last_refresh: float | None = None
        self.components = CardComponents()

    def append(self, component: Any, id: str | None = None) -> None:
        self.components.append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        self.components.extend(components)

    def clear(self) -> None:
        self.components.clear()

    def refresh(self, data: Any = None, force: bool = False) -> None:
        """Store the card as it is now, so it can be watched while the task runs. Calls closer
        together than the card's ``refresh_interval`` are skipped (the final card always
        shows the end state), unless ``force``."""
        now = time.monotonic()
        if not force and self._last_refresh is not None and now - self._last_refresh < self._refresh_interval:
            return
        self._last_refresh = now
        self._render_live(self.slot)

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
        if len(self._cards) == 1:
            return self._cards[0]
        customized = [c for c in self._cards if c.customize]
        if len(customized) == 1:
            return customized[0]
        without_id = [c for c in self._cards if c.slot.id is None]
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
