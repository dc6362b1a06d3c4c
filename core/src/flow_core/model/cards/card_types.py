"""The card types Flow has, as Metaflow names them: ``default`` (the task's parameters,
artifacts and the flow's graph, after what the step appended), ``blank`` (only what the step
appended), and the error card that stands in for a card that failed to render. They are
`MetaflowCard` subclasses registered through the same hook a plugin's types use."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from flow_core.errors import FlowError
from flow_core.model.cards.card_class import CardTask, MetaflowCard
from flow_core.model.cards.components import Html, Markdown, Section, Table
from flow_core.model.cards.graph_picture import graph_svg
from flow_core.model.cards.markup import error_block, escape
from flow_core.model.cards.page import FINAL, RUNNING, render_page
from flow_core.model.cards.task_facts import TaskFacts, ValueFacts


class UnknownCardType(FlowError):
    """A @card asked for a type no installed plugin provides."""


class _PageCard(MetaflowCard):
    """What the built-in types share: the step's components on Flow's page, live or final."""

    ALLOW_USER_COMPONENTS = True
    RUNTIME_UPDATABLE = True

    def __init__(self, options: Optional[Mapping[str, Any]] = None, components: Optional[list] = None,
                 graph: Any = None, flow: Any = None, **kwargs: Any):
        self._options = dict(options or {})
        self._components = [Html(c) if isinstance(c, str) else c for c in components or ()]

    def _page(self, task: CardTask, status: str) -> str:
        raise NotImplementedError

    def render(self, task: CardTask) -> str:
        return self._page(task, FINAL)

    def render_runtime(self, task: CardTask, data: dict) -> str:
        return self._page(task, RUNNING)


class BlankCard(_PageCard):
    """Only what the step appended, under ``options["title"]`` (else the task's pathspec)."""

    type = "blank"

    def _page(self, task: CardTask, status: str) -> str:
        title = str(self._options.get("title") or task.pathspec)
        return render_page(title, self._components, status=status, facts=task.card)


class DefaultCard(_PageCard):
    """What the step appended, then the task's parameters, artifacts and the flow's graph."""

    type = "default"

    def _page(self, task: CardTask, status: str) -> str:
        facts = task.facts
        return render_page(task.pathspec, [*self._components, *default_sections(facts)], status=status,
                           subtitle=f"attempt {facts.attempt}" + (f" · {facts.user}" if facts.user else ""),
                           facts=task.card)


class ErrorCard(MetaflowCard):
    """The card stored in place of one that failed to render: the reason, in the card itself."""

    type = "error"

    def render(self, task: CardTask, stack_trace: str = "") -> str:
        card_type = task.card.get("type") or "requested"
        block = Html(error_block(f"The {card_type} card failed to render", stack_trace))
        return render_page(task.pathspec, [Section("Card render failed with error", [block])],
                           facts={**task.card, "error": True})


#: The built-in types, in the order their names are listed.
BUILTIN_CARD_TYPES: Sequence[type[MetaflowCard]] = (DefaultCard, BlankCard)


def render_error_card(card_type: str, task: TaskFacts, why: str, card_id: str | None = None) -> str:
    """What a card that failed to render is stored as."""
    card = {"type": card_type, "id": card_id, "pathspec": task.pathspec, "attempt": task.attempt}
    return ErrorCard().render(CardTask(task, card=card), stack_trace=why)


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
