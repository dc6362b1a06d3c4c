"""`AttemptInfo`: the facts an attempt's index holds besides its artifacts and logs."""

from __future__ import annotations

from typing import Any, Mapping

import attrs

_FIELDS = ("success", "duration", "exception", "exception_type", "foreach_stack", "foreach_num_splits",
           "transition", "origin")


@attrs.define
class AttemptInfo:
    """How the attempt went and where it stands in the graph; what the runtime, ``resume``
    and the Client API read back."""

    success: bool = False
    #: Seconds the attempt took, user code and storing included.
    duration: float | None = None
    #: ``"ValueError: …"`` of the exception a failed attempt raised.
    exception: str | None = None
    #: The exception's module-qualified type (``mymodule.DataError``), as Metaflow reports it.
    exception_type: str | None = None
    #: The enclosing foreach frames, as `flow_core.model.foreach.stack_to_info` writes them.
    foreach_stack: list = attrs.field(factory=list)
    #: How many tasks a foreach step fans out to.
    foreach_num_splits: int | None = None
    #: The steps ``self.next`` named.
    transition: list[str] | None = None
    #: The task a resumed run reused this attempt from (``Flow/run/step/task``).
    origin: str | None = None

    @classmethod
    def from_index(cls, raw: Mapping[str, Any]) -> "AttemptInfo":
        """Read what an index holds; keys a newer flow-core may add are ignored."""
        return cls(**{name: raw[name] for name in _FIELDS if raw.get(name) is not None})

    def to_index(self) -> dict[str, Any]:
        return {name: value for name, value in attrs.asdict(self).items() if value is not None}
