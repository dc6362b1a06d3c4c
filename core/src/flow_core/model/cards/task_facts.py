"""What a card may say about its task, gathered by the @card decorator in the running task."""

from __future__ import annotations

from typing import Any, Sequence

import attrs


@attrs.frozen
class ValueFacts:
    """One parameter or artifact as a card shows it."""

    name: str
    type: str
    repr: str


@attrs.frozen
class TaskFacts:
    """The task's pathspec, attempt, parameters, artifacts (once stored), graph and user."""

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
