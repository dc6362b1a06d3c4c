"""Checking a run's stored objects end to end: every index parses, every object it points at
still hashes to its name.

Reads verify each object they load anyway; this finds damage before a reader trips on it,
names everything a damaged object breaks, and (on request) removes damaged objects so that
the next task producing the same value writes it again. Content addressing makes that repair
reach every run that shares the value.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from flow_core.datastore.cas import DamagedObject, blob_key
from flow_core.datastore.task_store import (
    INDEX_PREFIX,
    INDEX_SUFFIX,
    DamagedIndex,
    FlowDataStore,
)
from flow_core.errors import BlobNotFound, NotFound

#: Temporary files younger than this may belong to a write still in progress.
LEFTOVER_AGE = 3600.0


@attrs.frozen
class Damage:
    #: The damaged object: the value's own, one of its chunks, or a task's index.
    key: str
    why: str
    #: What the damage breaks: ``artifact 'x' of F/3/start/1``, ``the stdout log of …``.
    breaks: tuple[str, ...]
    #: What the index points at (differs from `key` when a chunk is damaged).
    referenced_key: str = ""


@attrs.frozen
class RunCheck:
    flow_name: str
    run_id: str
    indexes: int
    objects: int
    damaged: tuple[Damage, ...]


def run_ids(datastore: FlowDataStore, flow_name: str) -> list[str]:
    """Every run of the flow with a committed task attempt, oldest first (a run whose first
    task still runs has only its live logs or cards: nothing to check yet)."""
    prefix = f"{INDEX_PREFIX}/{flow_name}/"
    ids = {key[len(prefix):].split("/", 1)[0] for key in datastore.storage.list(prefix) if key.endswith(INDEX_SUFFIX)}
    return sorted(ids, key=lambda r: (not r.isdigit(), int(r) if r.isdigit() else 0, r))


def check_run(datastore: FlowDataStore, flow_name: str, run_id: str,
              progress: Callable[[int, int], None] | None = None) -> RunCheck:
    """Re-read and re-hash every object the run's task attempts point at."""
    prefix = f"{INDEX_PREFIX}/{flow_name}/{run_id}/"
    index_keys = [k for k in datastore.storage.list(prefix) if k.endswith(INDEX_SUFFIX)]
    if not index_keys:
        raise NotFound(f"the datastore holds nothing of run {flow_name}/{run_id}")
    damaged: list[Damage] = []
    uses: dict[str, list[str]] = {}
    blobs = datastore.storage.get_many(index_keys)
    for key in index_keys:
        step, task, name = key[len(prefix):].split("/")
        pathspec = f"{flow_name}/{run_id}/{step}/{task}"
        attempt = name[: -len(INDEX_SUFFIX)]
        try:
            store = datastore.open_index(pathspec, int(attempt), blobs[key])
        except (DamagedIndex, ValueError):
            damaged.append(Damage(key, "it does not parse", (f"every artifact and log of {pathspec}",)))
            continue
        where = f"{pathspec} (attempt {attempt})"
        for record in store.artifact_records().values():
            uses.setdefault(record.key, []).append(f"artifact '{record.name}' of {where}")
        for stream, digest in store.log_keys().items():
            uses.setdefault(digest, []).append(f"the {stream} log of {where}")

    def check(digest: str) -> Damage | None:
        try:
            datastore.cas.verify(digest)
        except DamagedObject as exc:
            return Damage(exc.key, exc.why, tuple(uses[digest]), blob_key(digest))
        except BlobNotFound:
            return Damage(blob_key(digest), "it is missing", tuple(uses[digest]), blob_key(digest))
        return None

    for done, result in enumerate(datastore.cas.map_in_parallel(check, list(uses)), start=1):
        if progress:
            progress(done, len(uses))
        if result is not None:
            damaged.append(result)
    return RunCheck(flow_name, run_id, len(index_keys), len(uses), tuple(damaged))


def _missing(check: RunCheck) -> set[str]:
    return {d.key for d in check.damaged if d.why == "it is missing"}


def remove_damaged(datastore: FlowDataStore, check: RunCheck) -> list[str]:
    """Delete the damaged objects and indexes found (and the value a damaged chunk belongs to,
    so that `resume` sees the value gone and runs its task again); return their keys."""
    keys = sorted({k for d in check.damaged for k in (d.key, d.referenced_key) if k} - _missing(check))
    if keys:
        datastore.storage.delete_many(keys)
    return keys
