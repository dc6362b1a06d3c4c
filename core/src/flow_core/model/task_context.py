"""`TaskContext`: what a step decorator's task hooks are given about the attempt they run in."""

from __future__ import annotations

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
