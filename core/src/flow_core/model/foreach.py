"""Where a task sits inside foreach splits: its stack of (step, splits, index) frames.

The task and the runtime both derive a child's stack from its parent's with `child_stack`,
so they always agree on which iteration a task belongs to and which tasks a join gathers.
"""

from __future__ import annotations

from typing import Sequence

import attrs

from flow_core.model.graph import FOREACH, JOIN, StepNode


@attrs.frozen
class ForeachFrame:
    step: str  # the step that called self.next(..., foreach=var)
    var: str
    num_splits: int
    index: int

    def to_list(self) -> list:
        return [self.step, self.var, self.num_splits, self.index]

    @classmethod
    def from_list(cls, values: Sequence) -> "ForeachFrame":
        step, var, num_splits, index = values
        return cls(step, var, int(num_splits), int(index))


Stack = tuple[ForeachFrame, ...]


def child_stack(parent: Stack, parent_node: StepNode, child_node: StepNode, split_index: int | None,
                num_splits: int | None) -> Stack:
    """The stack of a task of ``child_node`` whose (first) parent ran ``parent_node``."""
    if parent_node.type == FOREACH:
        assert split_index is not None and num_splits is not None
        return parent + (ForeachFrame(parent_node.name, parent_node.foreach_param or "", num_splits, split_index),)
    closes = parent_node.split_parents[-1] if parent_node.split_parents else None
    if child_node.type == JOIN and parent and parent[-1].step == closes:
        return parent[:-1]  # the join gathers every iteration of the innermost foreach
    return parent


def iteration_key(stack: Stack) -> tuple[int, ...]:
    """Which iteration of every enclosing foreach a task belongs to."""
    return tuple(frame.index for frame in stack)


def stack_to_info(stack: Stack) -> list[list]:
    return [frame.to_list() for frame in stack]


def stack_from_info(values: Sequence[Sequence] | None) -> Stack:
    return tuple(ForeachFrame.from_list(v) for v in values or ())
