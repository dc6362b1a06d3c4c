"""`run.trigger`: the events that started a run, shaped as Metaflow's ``Trigger``.

A scheduler that starts runs on events records them in the start task's
``execution-triggers`` metadata field (a JSON list, Metaflow's format); a run started by hand
or on a schedule has ``run.trigger is None``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, NamedTuple


class TriggerEvent(NamedTuple):
    """One triggering event; for a run triggered by another flow, ``flow_name``/``run_id``."""

    flow_name: str | None
    run_id: str | None
    name: str
    id: str | None
    timestamp: datetime | None
    type: str


def _event(raw: dict[str, Any]) -> TriggerEvent:
    stamp = raw.get("timestamp")
    when = datetime.fromtimestamp(float(stamp), tz=timezone.utc).replace(tzinfo=None) \
        if isinstance(stamp, (int, float)) or (isinstance(stamp, str) and stamp.replace(".", "", 1).isdigit()) \
        else None
    pathspec = str(raw.get("pathspec") or raw.get("id") or "")  # Metaflow puts a run's pathspec in "id"
    flow_name, _, run_id = pathspec.partition("/") if raw.get("type") == "run" else ("", "", "")
    return TriggerEvent(raw.get("flow") or flow_name or None, run_id.split("/")[0] or None,
                        str(raw.get("name", "")), raw.get("id"), when, str(raw.get("type", "event")))


class Trigger:
    """``trigger.event`` (the first), ``trigger.events``, and for flows triggered by other
    flows ``trigger.run`` / ``trigger.runs`` and ``trigger["OtherFlow"]``."""

    def __init__(self, field: str, open_run: Callable[[str], Any]):
        raw = json.loads(field)
        self._events = [_event(item) for item in (raw if isinstance(raw, list) else [raw])]
        self._open_run = open_run

    @property
    def event(self) -> TriggerEvent | None:
        return self._events[0] if self._events else None

    @property
    def events(self) -> list[TriggerEvent]:
        return list(self._events)

    @property
    def runs(self) -> list[Any]:
        return [self._open_run(f"{e.flow_name}/{e.run_id}") for e in self._events if e.run_id]

    @property
    def run(self) -> Any:
        runs = self.runs
        return runs[0] if runs else None

    def __getitem__(self, name: str) -> Any:
        for e in self._events:
            if e.flow_name == name and e.run_id:
                return self._open_run(f"{e.flow_name}/{e.run_id}")
            if e.name == name:
                return e
        raise KeyError(f"no event or flow named '{name}' triggered this run")

    def __iter__(self) -> Iterator[TriggerEvent]:
        return iter(self._events)

    def __contains__(self, name: str) -> bool:
        return any(name in (e.name, e.flow_name) for e in self._events)

    def __repr__(self) -> str:
        return f"<Trigger: {', '.join(e.name or str(e.flow_name) for e in self._events)}>"
