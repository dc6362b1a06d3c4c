"""`MetaflowCard`: what a card type is, with Metaflow's contract, and `CardTask`: the task a
card type renders.

A card type is a subclass with a ``type`` name and ``render(task)`` returning the page's HTML.
``@card(type=NAME, options={...})`` builds it as ``Card(options=..., components=...,
graph=..., flow=...)`` (only the arguments its constructor takes) and calls ``render`` when the
task has succeeded; with ``RUNTIME_UPDATABLE = True``, ``render_runtime(task, data)`` is called
on each ``current.card.refresh(data)`` while it runs. A plugin makes its types known through the
``flow_card_types`` hook (`flow_core.plugin.hookspecs`).
"""

from __future__ import annotations

import inspect
from typing import Any, Iterator, Mapping, Optional

from flow_core.model.cards.task_facts import TaskFacts


class MetaflowCard:
    """Base of every card type. ``components`` are the HTML fragments of what the step appended
    (shown by types with ``ALLOW_USER_COMPONENTS``), ``graph`` the flow's steps as
    ``{name: {"name", "type", "next", "doc", "matching_join"}}``, ``flow`` the flow object."""

    #: Reload policies, as Metaflow names them: whether a viewer reloads a live card.
    RELOAD_POLICY_NEVER = "never"
    RELOAD_POLICY_ALWAYS = "always"
    RELOAD_POLICY_ONCHANGE = "onchange"
    #: Replaced in the rendered HTML by a token that changes when the card should be reloaded.
    RELOAD_POLICY_TOKEN = "[METAFLOW_RELOAD_TOKEN]"

    #: The name ``@card(type=...)`` uses: letters, digits and underscores, unique among installed types.
    type: Optional[str] = None
    #: Whether ``current.card.append`` may add components to it (it is "editable").
    ALLOW_USER_COMPONENTS = False
    #: Whether ``render_runtime`` shows it while the task runs.
    RUNTIME_UPDATABLE = False
    RELOAD_POLICY = RELOAD_POLICY_NEVER
    scope = "task"

    def __init__(self, options: Optional[Mapping[str, Any]] = None, components: Optional[list] = None,
                 graph: Optional[dict] = None, flow: Any = None, **kwargs: Any):
        pass

    def render(self, task: "CardTask") -> str:
        """The card's HTML once the task has succeeded."""
        raise NotImplementedError(f"card type {type(self).__name__} does not define render(task)")

    def render_runtime(self, task: "CardTask", data: dict) -> str:
        """The card's HTML while the task runs; ``data["user"]`` is what was given to
        ``current.card.refresh(data)``, ``data["components"]`` the HTML of the updatable
        components by id."""
        raise NotImplementedError

    def refresh(self, task: "CardTask", data: dict) -> Any:
        """Metaflow's data-only update. Flow's viewers reload the whole live card, so Flow
        renders ``render_runtime`` instead and never calls this."""
        raise NotImplementedError

    def reload_content_token(self, task: "CardTask", data: dict) -> str:
        return "content-token"


def build_card(card_class: type[MetaflowCard], **arguments: Any) -> MetaflowCard:
    """``card_class(**arguments)``, leaving out what its constructor does not take, so a card
    written for an older Metaflow (no ``flow``) is built too."""
    try:
        parameters = inspect.signature(card_class).parameters
    except (TypeError, ValueError):
        return card_class(**arguments)
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return card_class(**arguments)
    return card_class(**{name: value for name, value in arguments.items() if name in parameters})


class ArtifactView:
    """``task["name"]``: one artifact, as the Client's ``DataArtifact`` shows it."""

    def __init__(self, name: str, flow: Any):
        self.id = name
        self._flow = flow

    @property
    def data(self) -> Any:
        return getattr(self._flow, self.id)


class ArtifactNamespace:
    """``task.data``: the task's artifacts as attributes."""

    def __init__(self, flow: Any):
        self._flow = flow

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._flow, name)


class CardTask:
    """The task a card renders, read from the running process: its pathspec and ids, the
    artifacts it holds (``task.data.x``, ``task["x"].data``) and, for the built-in types, the
    facts the default card shows."""

    def __init__(self, facts: TaskFacts, flow: Any = None, card: Optional[dict] = None, finished: bool = True):
        self.facts = facts
        self.pathspec = facts.pathspec
        self.flow_name, self.run_id, self.step_name, self.id = facts.pathspec.split("/")
        self.current_attempt = facts.attempt
        #: True for ``render``, False for ``render_runtime``.
        self.finished = finished
        self.successful = finished
        self.data = ArtifactNamespace(flow)
        self._flow = flow
        #: type, id, pathspec and attempt of the card being rendered, for the page's facts.
        self.card = dict(card or {})

    def _names(self) -> list[str]:
        return [artifact.name for artifact in self.facts.artifacts or ()]

    def __getitem__(self, name: str) -> ArtifactView:
        if name.startswith("_") or not hasattr(self._flow, name):
            raise KeyError(f"{self.pathspec} has no artifact '{name}'")
        return ArtifactView(name, self._flow)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not name.startswith("_") and hasattr(self._flow, name)

    def __iter__(self) -> Iterator[ArtifactView]:
        return iter([ArtifactView(name, self._flow) for name in self._names()])

    def __repr__(self) -> str:
        return f"<CardTask {self.pathspec}>"


def graph_dict(graph: Any) -> dict:
    """The flow's steps as Metaflow hands them to a card type."""
    if graph is None:
        return {}
    return {name: {"name": name, "type": node.type, "next": list(node.out_funcs), "doc": node.doc,
                   "matching_join": node.matching_join} for name, node in graph.nodes.items()}
