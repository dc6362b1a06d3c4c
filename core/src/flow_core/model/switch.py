"""Switches: ``self.next({"a": self.a, "b": self.b}, condition="choice")``, as in Metaflow 2.19.

A switch runs exactly one of its cases: the one whose key equals the value of the artifact
``self.<condition>`` when the step ends. Its cases need no join: the step after them runs
once, whichever case led to it. A case may go back to the switch itself or to an earlier
step (a recursive switch: a loop), which is the only way a Flow graph may have a cycle.

This module reads a switch from a step's source and checks what only a switch can get
wrong; `flow_core.model.graph` does the rest of the graph's validation.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flow_core.errors import GraphError
    from flow_core.model.graph import FlowGraph

#: The node type of a switch step, as Metaflow names it.
SWITCH = "split-switch"


def is_switch_call(call: ast.Call) -> bool:
    """Whether a ``self.next(...)`` call is a switch (its cases given as a dict)."""
    return any(isinstance(arg, ast.Dict) for arg in call.args) or any(k.arg == "condition" for k in call.keywords)


def parse_switch(call: ast.Call, step: str, step_names: set[str], flow_name: str,
                 error: Callable[[str, int | None], GraphError]) -> tuple[dict[Any, str], str]:
    """The cases (key → step) and the condition's artifact name of a switch's ``self.next``."""
    line = call.lineno
    dicts = [arg for arg in call.args if isinstance(arg, ast.Dict)]
    if len(call.args) != 1 or not dicts:
        raise error(f"the switch in step '{step}' must pass self.next exactly one dict of cases, "
                    "as in self.next({\"a\": self.a, \"b\": self.b}, condition=\"choice\")", line)
    condition = None
    for keyword in call.keywords:
        if keyword.arg == "condition":
            if not (isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str)):
                raise error(f"condition in step '{step}' must be the name of an artifact as a string literal",
                            line)
            condition = keyword.value.value
        elif keyword.arg == "foreach":
            raise error(f"step '{step}' cannot both switch and foreach in one self.next", line)
        else:
            raise error(f"self.next in step '{step}' has an unknown argument '{keyword.arg}'", line)
    if condition is None:
        raise error(f"the switch in step '{step}' needs condition=\"<artifact>\" naming the artifact "
                    "that selects the case", line)
    if not condition.isidentifier():
        raise error(f"condition {condition!r} in step '{step}' is not an artifact name", line)
    table = dicts[0]
    if not table.keys:
        raise error(f"the switch in step '{step}' has no cases", line)
    cases: dict[Any, str] = {}
    for key, value in zip(table.keys, table.values):
        if not isinstance(key, ast.Constant) or isinstance(key.value, (bytes, type(None))):
            shown = "**" + ast.unparse(value) if key is None else ast.unparse(key)
            raise error(f"the switch in step '{step}' has the case {shown}; each case must be a literal "
                        "string (or number)", line)
        target = value.attr if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) \
            and value.value.id == "self" else None
        if target is None:
            raise error(f"the case {key.value!r} of the switch in step '{step}' must name a step as "
                        f"self.<step>, not {ast.unparse(value)}", line)
        if target not in step_names:
            raise error(f"the case {key.value!r} of the switch in step '{step}' points at '{target}', "
                        f"which is not a @step of {flow_name}", line)
        if key.value in cases:
            raise error(f"the switch in step '{step}' has the case {key.value!r} twice", line)
        cases[key.value] = target
    return cases, condition


def check_switches(graph: FlowGraph) -> None:
    """What Metaflow refuses of a switch: a case that goes straight to a join (its cases run
    in place of one another, so the join would wait for inputs that never come), and a
    condition naming one of FlowSpec's own attributes (``next``, ``input``…), never an artifact."""
    for node in graph.nodes.values():
        if node.type != SWITCH:
            continue
        if node.condition in _RESERVED_CONDITIONS:
            raise graph.error(f"condition '{node.condition}' of the switch in step '{node.name}' is not an "
                              "artifact; name the artifact that selects the case", node.next_line)
        for key, target in node.switch_cases.items():
            if graph.nodes[target].takes_inputs:
                raise graph.error(
                    f"the case {key!r} of the switch in step '{node.name}' goes straight to the join "
                    f"'{target}'; a case must go to a step of its own, whose next step may be the join",
                    node.next_line,
                )


_RESERVED_CONDITIONS = frozenset({"next", "input", "index", "foreach_stack", "merge_artifacts", "name"})


def choose_case(cases: Mapping[Any, str], value: Any) -> str | None:
    """The step a switch goes to when its condition holds ``value`` (None: no case matches).

    Keys compare as Python values; a value that is not itself a key also matches the key that
    is its ``str()``, so ``True`` selects the case ``"True"``."""
    try:
        if value in cases:
            return cases[value]
    except TypeError:  # an unhashable value: compared by its text below
        pass
    text = str(value)
    return cases.get(text) if isinstance(text, str) else None


def describe_cases(cases: Mapping[Any, str]) -> str:
    """``'a' -> step_a, 'b' -> step_b``: how `show` lists a switch's cases."""
    return ", ".join(f"{key!r} -> {target}" for key, target in cases.items())
