"""Each step's decorators, and the task they make of it: what the runtime launches, and what a
scheduler compiles into its own terms (a job definition, a state's retries and time limit)."""

from __future__ import annotations

import os
from typing import Callable, Collection, Mapping

import attrs

from flow_core.backends.compute import TaskSpec
from flow_core.backends.environment import EnvironmentRequest, Interpreter, StepRequest
from flow_core.backends.selection import Backends
from flow_core.engine.code_package import flow_library, flow_requirements
from flow_core.engine.run_start import INTERPRETER_VARIABLE
from flow_core.model.decorators import StepDecorator, check_environment, flow_decorators, step_decorators
from flow_core.model.graph import FlowGraph


def decorate_steps(flow_cls: type, graph: FlowGraph, decospecs: tuple[str, ...],
                   known: Mapping[str, type[StepDecorator]],
                   environment: str = "local") -> dict[str, list[StepDecorator]]:
    """Every step's decorators (``--with`` ones included), each checked against the graph and
    against the selected ``environment``, as are the flow's decorators."""
    for flow_decorator in flow_decorators(flow_cls):
        check_environment(flow_decorator, environment)
    decorators: dict[str, list[StepDecorator]] = {}
    for node in graph:
        decorators[node.name] = step_decorators(flow_cls, node.name, decospecs, known)
        for decorator in decorators[node.name]:
            check_environment(decorator, environment)
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


def build_environment_request(flow_cls: type, graph: FlowGraph, decorators: Mapping[str, list[StepDecorator]],
                              backends: Backends, remote_steps: Collection[str], origin_run_id: str | None = None,
                              report: Callable[[str], None] = print) -> EnvironmentRequest:
    """What the configured environment needs to prepare the flow's steps: their decorators,
    where they run, and what Flow needs inside every environment: what flow-core, the
    configured backends' plugins and the plugins of the flow's decorators declare."""
    on_flow = {d.name: d for d in flow_decorators(flow_cls)}
    providers = backends.registry.decorator_providers
    used = {providers.get(name) for name in {*on_flow, *(d.name for ds in decorators.values() for d in ds)}}
    # The environment's own plugin did its work before the task: its libraries (uv) stay out.
    environment = backends.registry.backends("environment").get(backends.settings.backend_name("environment"))
    used.discard(environment.plugin if environment else None)
    return EnvironmentRequest(
        flow_cls, flow_cls.__name__,
        tuple(StepRequest(node.name, {d.name: d for d in decorators[node.name]}, node.name in remote_steps)
              for node in graph),
        flow_decorators=on_flow,
        origin_run_id=origin_run_id,
        flow_requirements=flow_requirements(backends, sorted(filter(None, used))),
        report=report,
    )


def prepare_interpreters(backends: Backends,
                         request: EnvironmentRequest) -> dict[str, tuple[Interpreter, dict[str, str]]]:
    """Each step's interpreter from the configured environment, and the variables its tasks
    then need: the interpreter's name (recorded as the task's ``environment``) and, for a step
    on this machine, a PYTHONPATH through which that Python finds Flow itself. A remote task
    finds Flow in its code package."""
    prepared = {}
    library = None
    remote = {step.name for step in request.steps if step.remote}
    for step_name, interpreter in backends.environment.prepare(request).items():
        variables = {INTERPRETER_VARIABLE: interpreter.name}
        if step_name not in remote:
            library = library or flow_library(backends.registry, backends.settings.local_root / "libraries")
            variables["PYTHONPATH"] = os.pathsep.join(p for p in (str(library), os.environ.get("PYTHONPATH")) if p)
        prepared[step_name] = (interpreter, variables)
    return prepared


def with_interpreter(spec: TaskSpec, prepared: tuple[Interpreter, dict[str, str]] | None) -> TaskSpec:
    """``spec`` running with its step's prepared interpreter, if it has one."""
    if prepared is None:
        return spec
    interpreter, variables = prepared
    return attrs.evolve(spec, interpreter=interpreter, environment={**spec.environment, **variables})
