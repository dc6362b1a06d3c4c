"""Where a foreach step's task leaves its number of splits for the state machine to read.

The task of foreach step ``S`` at foreach position ``stack`` writes two small S3 objects::

    <METAFLOW_DATASTORE_SYSROOT_S3>/<flow>/sfn-foreach/<run_id>/<S>/sfn<stack>.json        {"count": N}
    <METAFLOW_DATASTORE_SYSROOT_S3>/<flow>/sfn-foreach/<run_id>/<S>/sfn<stack>.items.json  [0, ..., N-1]

The task calls `foreach_object_keys` to know where; the compiler calls `foreach_key_format`
to build the same keys in the state machine with ``States.Format``. Both derive from one
template, so they cannot drift apart.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

COUNT_SUFFIX = ".json"
ITEMS_SUFFIX = ".items.json"


class ForeachObjects(NamedTuple):
    """The bucket and keys of one foreach task's objects."""

    bucket: str
    count_key: str
    items_key: str


def split_root(foreach_root: str) -> tuple[str, str]:
    """``"s3://bucket/some/prefix/"`` -> ``("bucket", "some/prefix")`` (the prefix may be empty)."""
    if not foreach_root.startswith("s3://"):
        raise ValueError(f"the foreach root must be an s3:// URL, not {foreach_root!r}")
    bucket, _, prefix = foreach_root[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"the foreach root {foreach_root!r} names no bucket")
    return bucket, prefix.strip("/")


def _folder(prefix: str, flow_name: str, run_id: str, step: str) -> str:
    parts = [prefix] if prefix else []
    return "/".join(parts + [flow_name, "sfn-foreach", run_id, step])


def stack_text(stack: str | Sequence[int]) -> str:
    """A foreach position as the run context holds it: ``""``, ``"-3"``, ``"-3-1"``."""
    if isinstance(stack, str):
        return stack
    return "".join(f"-{int(index)}" for index in stack)


def foreach_object_keys(foreach_root: str, flow_name: str, run_id: str, step: str,
                        stack: str | Sequence[int] = "") -> ForeachObjects:
    """Where the task of foreach ``step`` at ``stack`` (``"-3"`` or ``(3,)``) writes its objects."""
    bucket, prefix = split_root(foreach_root)
    base = f"{_folder(prefix, flow_name, run_id, step)}/sfn{stack_text(stack)}"
    return ForeachObjects(bucket, base + COUNT_SUFFIX, base + ITEMS_SUFFIX)


def escape_format_literal(text: str) -> str:
    """Text as a literal inside an intrinsic function's quoted string: ``' { } \\`` take a backslash."""
    return "".join("\\" + ch if ch in "'{}\\" else ch for ch in text)


def foreach_key_format(foreach_root: str, flow_name: str, step: str, suffix: str,
                       run_id: str = "$.run_id", stack: str = "$.stack") -> tuple[str, str]:
    """The bucket and a ``States.Format`` expression that evaluates, in the state machine, to the
    key `foreach_object_keys` gives (``suffix`` is `COUNT_SUFFIX` or `ITEMS_SUFFIX`); ``run_id``
    and ``stack`` are the paths holding them in the state's input."""
    bucket, prefix = split_root(foreach_root)
    template = escape_format_literal(_folder(prefix, flow_name, "\0", step) + "/sfn\0" + suffix).replace("\0", "{}")
    return bucket, f"States.Format('{template}', {run_id}, {stack})"
