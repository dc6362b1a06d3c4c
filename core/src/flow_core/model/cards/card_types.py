"""The card types Flow has, as Metaflow names them: ``default`` (the task's parameters,
artifacts and the flow's graph, after what the step appended) and ``blank`` (only what the
step appended); and the error card that stands in for a card that failed to render."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import attrs

from flow_core.errors import FlowError
from flow_core.model.cards.components import Html, Markdown, Section, Table
from flow_core.model.cards.graph_picture import graph_svg
from flow_core.model.cards.markup import error_block, escape
from flow_core.model.cards.page import FINAL, render_page

CARD_TYPES = ("default", "blank")


class UnknownCardType(FlowError):
    """A @card asked for a type Flow does not have."""


@attrs.frozen
class ValueFacts:
    """One parameter or artifact as a card shows it."""

    name: str
    type: str
    repr: str


@attrs.frozen
class TaskFacts:
    """What a card may say about its task, gathered by the @card decorator."""

    pathspec: str
    attempt: int = 0
    parameters: Sequence[ValueFacts] = ()
    #: None while the task runs: its artifacts are known once it has stored them.
    artifacts: Sequence[ValueFacts] | None = None
    graph: Any = attrs.field(default=None, eq=False)
    user: str | None = None

    @property
    def step_name(self) -> str:
        return self.pathspec.split("/")[2]


def render_card(card_type: str, options: Mapping[str, Any], components: Sequence[Any], task: TaskFacts,
                card_id: str | None = None, status: str = FINAL) -> str:
    """The card's HTML; raises `UnknownCardType` for a type Flow lacks."""
    facts = {"type": card_type, "id": card_id, "pathspec": task.pathspec, "attempt": task.attempt}
    if card_type == "blank":
        return render_page(str(options.get("title") or task.pathspec), components, status=status, facts=facts)
    if card_type == "default":
        return render_page(task.pathspec, [*components, *default_sections(task)], status=status,
                           subtitle=f"attempt {task.attempt}" + (f" · {task.user}" if task.user else ""),
                           facts=facts)
    raise UnknownCardType(f"there is no card type '{card_type}'; Flow's card types are {', '.join(CARD_TYPES)}")


def render_error_card(card_type: str, task: TaskFacts, why: str, card_id: str | None = None) -> str:
    """What a card that failed to render is stored as: the reason, in the card itself."""
    facts = {"type": card_type, "id": card_id, "pathspec": task.pathspec, "attempt": task.attempt, "error": True}
    block = Html(error_block(f"The {card_type} card failed to render", why))
    return render_page(task.pathspec, [Section("Card render failed with error", [block])], facts=facts)


def _values_table(values: Sequence[ValueFacts]) -> Table:
    return Table([[Html(f"<code>{escape(v.name)}</code>"), Html(f'<span class="flow-type">{escape(v.type)}</span>'),
                   Html(f"<code>{escape(v.repr)}</code>")] for v in values], headers=["name", "type", "value"])


def default_sections(task: TaskFacts) -> list[Any]:
    """The default card's own parts: parameters, artifacts, the graph."""
    sections: list[Any] = [
        Section("Parameters", [_values_table(task.parameters) if task.parameters else Markdown("No parameters.")]),
    ]
    if task.artifacts is None:
        artifacts: Any = Markdown("The task is still running: its artifacts appear when it has stored them.")
    else:
        artifacts = _values_table(task.artifacts) if task.artifacts else Markdown("No artifacts.")
    sections.append(Section("Artifacts", [artifacts]))
    if task.graph is not None:
        sections.append(Section("Graph", [Html(graph_svg(task.graph, task.step_name))]))
    return sections
