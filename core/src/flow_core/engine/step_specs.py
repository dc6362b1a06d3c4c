"""Each step's decorators, and the task they make of it: what the runtime launches, and what a
scheduler compiles into its own terms (a job definition, a state's retries and time limit)."""

from __future__ import annotations

from typing import Mapping

from flow_core.backends.compute import TaskSpec
from flow_core.model.decorators import StepDecorator, step_decorators
from flow_core.model.graph import FlowGraph


def decorate_steps(flow_cls: type, graph: FlowGraph, decospecs: tuple[str, ...],
                   known: Mapping[str, type[StepDecorator]]) -> dict[str, list[StepDecorator]]:
    """Every step's decorators (``--with`` ones included), each checked against the graph."""
    decorators: dict[str, list[StepDecorator]] = {}
    for node in graph:
        decorators[node.name] = step_decorators(flow_cls, node.name, decospecs, known)
        for decorator in decorators[node.name]:
            decorator.step_init(flow_cls, graph, node.name)
    return decorators


def first_task_specs(graph: FlowGraph, decorators: Mapping[str, list[StepDecorator]], flow_file: str,
                     flow_name: str, compute: str, decospecs: tuple[str, ...] = ()) -> dict[str, TaskSpec]:
    """Each step's first task as its decorators shape it (compute, resources, retries), with
    placeholder ids: ``run_id`` and ``task_id`` are ``"0"``."""
    specs = {}
    for node in graph:
        spec = TaskSpec(flow_file=flow_file, flow_name=flow_name, run_id="0", step_name=node.name, task_id="0",
                        compute=compute, decospecs=decospecs)
        for decorator in decorators[node.name]:
            spec = decorator.runtime_task_spec(spec)
        specs[node.name] = spec
    return specs
