"""Passing a task its parents' paths, however many there are.

A join after a 10,000-way foreach has 10,000 parents; spelled out on the command line they
would pass Linux's 128 KiB limit on one argument. Past a few kilobytes the list goes into
the datastore as a content-addressed blob and the command line carries ``@<key>`` instead,
which every compute backend can resolve, since every task reaches the datastore.

An orchestrator that cannot know its parents' ids (the tasks of a foreach it fanned out)
writes ``RUN/STEP/*`` instead: every successful task of that step, found through metadata;
or ``RUN/STEP/PREFIX*``, those whose ids start with ``PREFIX`` (the iterations of one inner
foreach, when the orchestrator names tasks by their foreach position).
"""

from __future__ import annotations

from typing import Sequence

from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.records import SUCCEEDED
from flow_core.datastore.cas import ContentAddressedStore
from flow_core.errors import NotFound

INLINE_LIMIT = 4096
REFERENCE_MARK = "@"
EVERY_TASK = "*"


def pack_input_paths(cas: ContentAddressedStore, paths: Sequence[str]) -> tuple[str, ...]:
    """The paths as the task command line carries them: inline when short, else by reference."""
    if sum(len(p) + 1 for p in paths) <= INLINE_LIMIT:
        return tuple(paths)
    (key,) = cas.save_blobs(["\n".join(paths).encode()])
    return (REFERENCE_MARK + key,)


def unpack_input_paths(cas: ContentAddressedStore, paths: Sequence[str]) -> tuple[str, ...]:
    """The inverse of `pack_input_paths`."""
    out: list[str] = []
    for path in paths:
        if path.startswith(REFERENCE_MARK):
            (blob,) = cas.load_blobs([path[len(REFERENCE_MARK):]])
            out.extend(blob.decode().split("\n"))
        elif path:
            out.append(path)
    return tuple(out)


def has_step_wildcard(paths: Sequence[str]) -> bool:
    return any(path.endswith(EVERY_TASK) for path in paths)


def resolve_step_wildcards(metadata: MetadataBackend, flow_name: str, paths: Sequence[str]) -> tuple[str, ...]:
    """Replace each ``RUN/STEP/*`` (or ``RUN/STEP/PREFIX*``) with the paths of that step's
    successful tasks (whose ids start with ``PREFIX``)."""
    out: list[str] = []
    for path in paths:
        run_id, _, rest = path.partition("/")
        step_name, _, task_id = rest.partition("/")
        if not task_id.endswith(EVERY_TASK):
            out.append(path)
            continue
        prefix = task_id[:-len(EVERY_TASK)]
        found = [f"{run_id}/{step_name}/{task.task_id}" for task in metadata.list_tasks(flow_name, run_id, step_name)
                 if task.status == SUCCEEDED and task.task_id.startswith(prefix)]
        if not found:
            raise NotFound(f"input path {path}: step {flow_name}/{run_id}/{step_name} has no successful task")
        out.extend(found)
    return tuple(out)
