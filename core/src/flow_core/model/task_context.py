"""`TaskContext`: what a step decorator's task hooks are given about the attempt they run in."""

from __future__ import annotations

from typing import Any

import attrs

from flow_core.model.flowspec import FlowSpec
from flow_core.model.graph import FlowGraph


@attrs.define
class TaskContext:
    """The attempt a decorator hook runs in: the flow object the step's code sees (set an
    artifact on it, as ``@catch`` does), and where the attempt stands among its retries."""

    flow: FlowSpec
    step_name: str
    retry_count: int
    max_user_code_retries: int
    graph: FlowGraph
    #: ``Flow/run/step/task`` of the attempt.
    pathspec: str = ""
    #: Where @card stores the attempt's cards (a `flow_core.model.cards.card_slot.CardWriter`
    #: the engine gives); None where cards are not kept.
    card_writer: Any = None
    #: ``{name: (type, size)}`` of what the attempt stored, set once it is stored.
    stored_artifacts: dict[str, tuple[str, int]] | None = None
