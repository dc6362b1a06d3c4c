"""Artifact previews: small, bounded HTML for any value, never the whole of a large one.

Values are loaded (unpickled) only on a task or artifact page and only below a size cap, so
a run page never loads artifact data at all.
"""

from __future__ import annotations

import base64
import html
import io
import reprlib
from typing import Any

#: Artifacts whose stored size is above this are not loaded for a task page's inline preview.
INLINE_LIMIT = 256 * 1024
#: ...nor for the artifact's own page.
PAGE_LIMIT = 64 * 1024 * 1024
#: Characters of a value's repr shown at most.
REPR_CHARS = 4000
#: Rows of a DataFrame's head.
HEAD_ROWS = 10

_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))

_repr = reprlib.Repr()
_repr.maxlevel = 4
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = 50
_repr.maxdict = 50
_repr.maxstring = 2000
_repr.maxlong = 200
_repr.maxother = 2000


def short_repr(value: Any, limit: int = REPR_CHARS) -> str:
    """A bounded repr: containers cut after 50 items, the text after ``limit`` characters."""
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a value whose __repr__ raises still gets a line
        text = f"<{type(value).__name__} whose repr failed: {exc}>"
    return text if len(text) <= limit else text[:limit] + "…"


def image_type(value: Any) -> str | None:
    if isinstance(value, (bytes, bytearray)):
        for magic, mime in _IMAGE_TYPES:
            if bytes(value[: len(magic)]) == magic:
                return mime
    return None


def drawn_png(value: Any) -> bytes | None:
    """A PIL image or a matplotlib figure as PNG, drawn by its own library (whichever
    unpickled it is installed here); None for anything else or when drawing fails."""
    module = type(value).__module__ or ""
    buffer = io.BytesIO()
    try:
        if module.startswith("PIL.") and callable(getattr(value, "save", None)):
            value.save(buffer, format="PNG")
        elif module.startswith("matplotlib.") and callable(getattr(value, "savefig", None)):
            value.savefig(buffer, format="png")
        else:
            return None
    except Exception:
        return None
    return buffer.getvalue()


def preview_html(value: Any) -> str:
    """HTML showing ``value``: an image (bytes of one, a PIL image, a matplotlib figure), a
    DataFrame's head as a table, an array's shape and dtype, or a bounded repr."""
    mime = image_type(value)
    drawn = None if mime else drawn_png(value)
    if mime or drawn:
        data = base64.b64encode(bytes(value) if mime else drawn).decode("ascii")
        return f'<img class="preview-image" alt="image artifact" src="data:{mime or "image/png"};base64,{data}">'
    head = getattr(value, "head", None)
    if callable(head) and hasattr(value, "to_html") and hasattr(value, "columns"):
        try:
            shape = getattr(value, "shape", None)
            table = head(HEAD_ROWS).to_html(max_cols=50, border=0, classes="dataframe")  # escapes cells itself
            caption = f'<p class="preview-note">DataFrame, shape {html.escape(str(shape))}; first {HEAD_ROWS} rows</p>'
            return caption + f'<div class="table-scroll">{table}</div>'
        except Exception:
            pass  # not a DataFrame after all: fall through to the repr
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        note = f'<p class="preview-note">array, shape {html.escape(str(tuple(shape)))}, dtype {html.escape(str(dtype))}</p>'
        return note + f"<pre>{html.escape(short_repr(value))}</pre>"
    return f"<pre>{html.escape(short_repr(value))}</pre>"


def artifact_preview(artifact: Any, limit: int) -> str:
    """The preview of a `DataArtifact`, or one sentence saying why there is none."""
    if artifact.size > limit:
        return f'<p class="preview-note">{human_size(artifact.size)} stored: too large to preview here.</p>'
    try:
        value = artifact.data
    except Exception as exc:  # a class this process cannot import, a damaged object...
        return f'<p class="preview-note">cannot be loaded here: {html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p>'
    return preview_html(value)


def human_size(size: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"
