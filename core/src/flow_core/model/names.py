"""What Flow can store as a name: flow and step names, tags, and the parts of a pathspec.

Flow and step names become segments of datastore keys (``[A-Za-z0-9._-]``, see
`flow_core.backends.storage`), file names of the local backends and names in remote services,
so they are ASCII Python identifiers of at most `MAX_NAME_LENGTH` characters: a name that
passes here is stored the same on every backend. Anything a user types (a tag, a run id, a
pathspec) must at least be text every backend can encode: no lone surrogates (what Python
makes of bytes that are not UTF-8 on the command line) and no NUL character.

Each check returns what is wrong as a phrase (or None), so the caller raises the error its
layer reports: a `GraphError` with file and line, a click usage error, a `NotFound`.
"""

from __future__ import annotations

import re

#: Longest flow or step name: well inside a file name (255 bytes) and the services' limits.
MAX_NAME_LENGTH = 128
#: Longest tag, as in Metaflow.
MAX_TAG_LENGTH = 500

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def shown(value: str, limit: int = 60) -> str:
    """``value`` quoted for a message, escaped so it prints anywhere, and cut short: a bad
    value may be megabytes long."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def text_problem(value: object) -> str | None:
    """Why ``value`` is not text Flow can store, or None when it is."""
    if not isinstance(value, str):
        return f"{value!r} is not a string"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{shown(value)} is not valid UTF-8 text"
    if "\x00" in value:
        return f"{shown(value)} holds a NUL character"
    return None


def name_problem(name: str, what: str) -> str | None:
    """Why ``name`` cannot name a flow or step (``what``), or None when it can."""
    if not _IDENTIFIER.fullmatch(name):
        return (f"{what} name {name!r} is not an ASCII identifier (the letters A-Z and a-z, digits and '_', "
                "not starting with a digit)")
    if len(name) > MAX_NAME_LENGTH:
        return (f"{what} name '{name[:20]}...' is {len(name)} characters long, more than the "
                f"{MAX_NAME_LENGTH} a name may have")
    return None


def tag_problem(tag: object) -> str | None:
    """Why ``tag`` cannot be a run's tag, or None when it can; `TAG_RULE` says what can."""
    problem = text_problem(tag)
    if problem:
        return problem
    assert isinstance(tag, str)
    if not tag.strip():
        return f"{tag!r} is empty"
    if len(tag) > MAX_TAG_LENGTH:
        return f"{tag[:20]!r}... is {len(tag)} characters long"
    return None


#: What a tag must be, for messages.
TAG_RULE = f"a tag is non-empty UTF-8 text of at most {MAX_TAG_LENGTH} characters"
