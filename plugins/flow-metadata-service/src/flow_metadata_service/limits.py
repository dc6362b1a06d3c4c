"""What one request may store: the service's limits, shared by the service and its client.

Without them an authenticated client's mistake (a 50 MB user name, 50,000 tags) is stored
and then sent back by every listing. Each limit is far above what Flow and Metaflow send:
Metaflow itself allows 50 user tags of 500 characters, its metadata values are short JSON
documents, and Flow's client splits its batches to stay within the per-request counts.
A request over a limit is refused whole: 413 for the body, 422 for anything in it, with a
message naming the limit and its value (and the same in ``limit``/``maximum`` fields).
"""

from __future__ import annotations

MAX_BODY = 16 * 2**20  # bytes in one request body
MAX_NAME = 255  # characters: ids, user names, field names, types, artifact names, digests
MAX_TEXT = 4096  # characters: an artifact's location (a URL) and its Python type
MAX_VALUE = 65536  # characters: one metadata value
MAX_TAG = 1024  # characters: one tag (Metaflow's own limit is 500)
MAX_TAGS = 100  # tags in one list, and user tags on a run (Metaflow's own limit is 50)
MAX_METADATA = 10_000  # metadata entries in one request
MAX_ARTIFACTS = 10_000  # artifacts in one request
MAX_EVENTS = 1_000  # attempt events in one POST …/attempts

#: Every limit by the name a refusal gives it, for the documentation and the OpenAPI description.
LIMITS = {
    "body_size": (MAX_BODY, "bytes in a request body"),
    "name_length": (MAX_NAME, "characters in an id, user name, field name, type, artifact name or digest"),
    "text_length": (MAX_TEXT, "characters in an artifact's location or type"),
    "value_length": (MAX_VALUE, "characters in a metadata value"),
    "tag_length": (MAX_TAG, "characters in a tag"),
    "tag_count": (MAX_TAGS, "tags in one list, and user tags on a run"),
    "metadata_per_request": (MAX_METADATA, "metadata entries in a request"),
    "artifacts_per_request": (MAX_ARTIFACTS, "artifacts in a request"),
    "events_per_request": (MAX_EVENTS, "attempt events in a request"),
}


class OverLimit(Exception):
    """A request over one of the limits (HTTP 422, or 413 for the body)."""

    def __init__(self, limit: str, message: str, status: int = 422):
        super().__init__(message)
        self.limit, self.maximum, self.status = limit, LIMITS[limit][0], status


def check_length(value: str, what: str, limit: str) -> str:
    """``value`` itself, or `OverLimit` when it is longer than ``limit`` allows."""
    maximum = LIMITS[limit][0]
    if len(value) > maximum:
        raise OverLimit(limit, f"{what} is {len(value)} characters long, over the limit of {maximum}")
    return value


def check_count(count: int, what: str, limit: str) -> None:
    """`OverLimit` when ``count`` is more than ``limit`` allows; ``what`` says what was
    counted, with ``{count}`` where the number goes ("'tags' holds {count} tags")."""
    maximum = LIMITS[limit][0]
    if count > maximum:
        raise OverLimit(limit, f"{what.replace('{count}', str(count))}, over the limit of {maximum}")


def body_too_large() -> OverLimit:
    return OverLimit("body_size", f"the request body is over the limit of {MAX_BODY} bytes "
                                  f"({MAX_BODY // 2**20} MiB)", status=413)
