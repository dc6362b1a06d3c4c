"""``@parallel`` and ``self.next(self.train, num_parallel=N)``, as Metaflow 2.19 defines them.

As in Metaflow, ``num_parallel`` is a special foreach over node indices 0..N-1: the step
calling it is a foreach node whose splits are the gang's nodes, so the foreach machinery
(stacks, the join that gathers every iteration, resume's iteration keys) carries it. What
differs is here: the graph's rules (a ``num_parallel`` target is ``@parallel``, a
``@parallel`` step is reached only that way and goes straight to a join) and the names the
runtime uses to tell a gang's tasks what they are (``current.parallel``).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Mapping

import attrs

if TYPE_CHECKING:
    from flow_core.model.graph import FlowGraph

#: The decorator that marks a gang step.
PARALLEL_DECORATOR = "parallel"
#: What Metaflow calls the foreach variable of a ``num_parallel`` split.
PARALLEL_FOREACH_VAR = "_parallel_ubf_iter"
#: Environment of a gang's task, under Metaflow's names (libraries such as torchrun read them).
NUM_NODES_VAR = "MF_PARALLEL_NUM_NODES"
NODE_INDEX_VAR = "MF_PARALLEL_NODE_INDEX"
MAIN_IP_VAR = "MF_PARALLEL_MAIN_IP"
CONTROL_TASK_VAR = "MF_PARALLEL_CONTROL_TASK_ID"
LOCAL_MAIN_IP = "127.0.0.1"


def parse_num_parallel(value: ast.expr) -> tuple[str, int | None]:
    """The source text of a ``num_parallel=`` argument and, when it is a literal, its value."""
    if isinstance(value, ast.Constant) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return ast.unparse(value), value.value
    return ast.unparse(value), None


def check_parallel(graph: FlowGraph) -> None:
    """Metaflow's rules for gangs, reported at the ``self.next`` or step they concern."""
    nodes = sorted(graph.nodes.values(), key=lambda n: n.line)
    for node in nodes:
        if node.num_parallel_expr is None:
            continue
        if node.num_parallel is not None and node.num_parallel < 1:
            raise graph.error(f"num_parallel in step '{node.name}' must be at least 1, not {node.num_parallel}",
                              node.next_line)
        (target,) = node.out_funcs
        if not graph.nodes[target].parallel_step:
            raise graph.error(f"step '{node.name}' starts '{target}' with num_parallel, but '{target}' has no "
                              "@parallel decorator; add @parallel above its @step", node.next_line)
    for node in nodes:
        if not node.parallel_step:
            continue
        for source in node.in_funcs:
            if graph.nodes[source].num_parallel_expr is None:
                raise graph.error(f"step '{node.name}' is @parallel, but step '{source}' goes to it without "
                                  f"num_parallel; write self.next(self.{node.name}, num_parallel=N)",
                                  graph.nodes[source].next_line)
        follows = [graph.nodes[name] for name in node.out_funcs]
        if len(follows) != 1 or not follows[0].takes_inputs:
            raise graph.error(f"the @parallel step '{node.name}' must go to a join that gathers its gang, "
                              "as in self.next(self.join) with def join(self, inputs)",
                              node.next_line or node.line)


def describe_parallel(num_parallel_expr: str) -> str:
    """How `show` describes a gang's start."""
    return f"(@parallel gang of num_parallel={num_parallel_expr} tasks started together)"


@attrs.frozen
class Gang:
    """Where a task of a gang stands in it. The runtime launches a gang's tasks one after
    another, node 0 (the control task) first, and each must start with the others."""

    num_nodes: int
    node_index: int
    #: Node 0's task id, which names the gang.
    control_task_id: str


def gang_environment(gang: Gang) -> dict[str, str]:
    """What a gang's task is told about its gang, through its environment. The main node's
    address is this machine's; a compute that spreads the gang over machines replaces it."""
    return {NUM_NODES_VAR: str(gang.num_nodes), NODE_INDEX_VAR: str(gang.node_index), MAIN_IP_VAR: LOCAL_MAIN_IP,
            CONTROL_TASK_VAR: gang.control_task_id}


def gang_from_environment(environ: Mapping[str, str]) -> tuple[str, int, int, str | None]:
    """(main_ip, num_nodes, node_index, control_task_id) of the task running in ``environ``."""
    return (environ.get(MAIN_IP_VAR, LOCAL_MAIN_IP), int(environ.get(NUM_NODES_VAR, "1")),
            int(environ.get(NODE_INDEX_VAR, "0")), environ.get(CONTROL_TASK_VAR))


def task_type_fields(environ: Mapping[str, str], task_id: str) -> dict[str, str]:
    """The metadata a @parallel gang's control task carries so the client finds it
    (``Step.control_tasks()``), under Metaflow's field name and value."""
    return {"internal_task_type": "control"} if environ.get(CONTROL_TASK_VAR) == task_id else {}
