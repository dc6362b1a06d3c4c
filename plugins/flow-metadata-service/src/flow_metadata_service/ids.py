"""How ids and attempts are spelled on the wire, shared by the service and its client."""

from __future__ import annotations

from collections.abc import Iterable

ATTEMPT_TAG = "attempt_id:"


def is_number(text: str) -> bool:
    """ASCII digits only: ``"²".isdigit()`` is true, but it is no number of ours."""
    return text.isascii() and text.isdigit()


def attempt_from_tags(tags: Iterable[object] | None) -> int | None:
    """The attempt an ``attempt_id:N`` tag names, or None."""
    for tag in tags or ():
        if isinstance(tag, str) and tag.startswith(ATTEMPT_TAG) and is_number(tag[len(ATTEMPT_TAG):]):
            return int(tag[len(ATTEMPT_TAG):])
    return None
