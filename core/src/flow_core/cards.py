"""Cards, as ``metaflow.cards``: the components a step adds to its @card, and `get_cards`
to read a task's cards back.

    from flow_core import card, current
    from flow_core.cards import Markdown, Table, Image, VegaChart, ProgressBar, Artifact, get_cards
    from flow_core.cards import ValueBox, PythonCode, EventsTimeline, JSONViewer, YAMLViewer
    from flow_core.cards import MetaflowCard     # to write a card type of your own

A public face like ``flow_core/__init__.py``: it gathers names from the model (the
components and card types) and the client (`get_cards`, imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flow_core.model.cards.card_class import CardTask, MetaflowCard
from flow_core.model.cards.card_types import BlankCard, DefaultCard, ErrorCard
from flow_core.model.cards.code_viewers import JSONViewer, PythonCode, YAMLViewer
from flow_core.model.cards.components import (
    Artifact,
    CardComponent,
    Error,
    Image,
    Markdown,
    MetaflowCardComponent,
    PageComponent,
    ProgressBar,
    Table,
    VegaChart,
)
from flow_core.model.cards.live_components import EventsTimeline, ValueBox

if TYPE_CHECKING:
    from flow_core.client.cards import Card, CardContainer, get_cards

__all__ = ["Artifact", "BlankCard", "Card", "CardComponent", "CardContainer", "CardTask", "DefaultCard", "Error",
           "ErrorCard", "EventsTimeline", "Image", "JSONViewer", "Markdown", "MetaflowCard", "MetaflowCardComponent",
           "PageComponent", "ProgressBar", "PythonCode", "Table", "ValueBox", "VegaChart", "YAMLViewer", "get_cards"]

_CLIENT_NAMES = {"Card", "CardContainer", "get_cards"}


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from flow_core.client import cards as client_cards

        value = getattr(client_cards, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'flow_core.cards' has no attribute '{name}'")
