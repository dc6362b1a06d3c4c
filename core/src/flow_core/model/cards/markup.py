"""Small HTML helpers shared by the components and the page."""

from __future__ import annotations

import html
import json
import reprlib
import traceback
from typing import Any

#: The longest short representation an artifact gets in a card.
MAX_REPR = 300

_repr = reprlib.Repr()
_repr.maxstring = 120
_repr.maxother = 120
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 10


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def short_repr(value: Any) -> str:
    """A bounded ``repr``: a card must stay small however large the value."""
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the card
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def full_type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def script_json(value: Any) -> str:
    """JSON safe to put inside a ``<script>`` element (no ``</script>`` can close it early)."""
    return json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def error_block(title: str, detail: str = "") -> str:
    """What a card shows where something failed: a title and the reason, never a blank."""
    body = f'<pre class="flow-error-detail">{escape(detail)}</pre>' if detail else ""
    return f'<div class="flow-error" role="alert"><div class="flow-error-title">{escape(title)}</div>{body}</div>'


def exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
