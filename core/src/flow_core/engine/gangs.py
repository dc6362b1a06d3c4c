"""The runtime's book of @parallel gangs: which tasks start together, and gangs being retried.

A gang is all-or-nothing, as in Metaflow: its nodes may wait on one another, so one node
failing stops the others. With ``@retry``, the whole gang then runs again as its next attempt
(Metaflow retries the control task, which brings its workers back with it), once every node of
the failed attempt has ended, so no old node outlives the new one with the same task id.
"""

from __future__ import annotations

import attrs

from flow_core.backends.compute import TaskSpec


class GangBook:
    def __init__(self) -> None:
        #: Control task id (node 0's) -> the specs of the gang's current attempt, node order.
        self._specs: dict[str, list[TaskSpec]] = {}
        #: Control task id -> the attempt it is retried as, while the old attempt ends.
        self._retrying: dict[str, int] = {}

    def add(self, spec: TaskSpec) -> None:
        assert spec.gang is not None
        self._specs.setdefault(spec.gang.control_task_id, []).append(spec)

    def task_ids(self, spec: TaskSpec) -> set[str]:
        """The task ids of ``spec``'s gang (empty for a task of no gang)."""
        if spec.gang is None:
            return set()
        return {member.task_id for member in self._specs.get(spec.gang.control_task_id, ())}

    def start_retry(self, spec: TaskSpec) -> None:
        assert spec.gang is not None
        self._retrying[spec.gang.control_task_id] = spec.retry_count + 1

    def is_retrying(self, spec: TaskSpec) -> bool:
        return spec.gang is not None and spec.gang.control_task_id in self._retrying

    def next_attempt(self, spec: TaskSpec) -> list[TaskSpec]:
        """Every node of ``spec``'s gang as its next attempt; the gang is no longer retrying."""
        assert spec.gang is not None
        control = spec.gang.control_task_id
        attempt = self._retrying.pop(control)
        self._specs[control] = [attrs.evolve(member, retry_count=attempt) for member in self._specs[control]]
        return list(self._specs[control])
