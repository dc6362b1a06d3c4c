"""Per-task-attempt views of the datastore: what a task wrote, found by its pathspec.

Each attempt ends by writing one small index (msgpack) that maps its artifact names to
content keys, its log streams to blob keys, and carries a few facts about the attempt
(success, foreach position, the exception). The index is the attempt's commit point: blobs
written before it are invisible until it exists, so a task killed half-way leaves nothing a
reader could mistake for a result. Layout under the storage root::

    flows/<flow>/<run>/<step>/<task>/<attempt>.index
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

from flow_core.backends.records import ArtifactRecord
from flow_core.backends.storage import StorageBackend
from flow_core.datastore.attempt_info import AttemptInfo
from flow_core.datastore.cas import (
    ContentAddressedStore,
    DamagedObject,
    UnstorableValue,
)
from flow_core.errors import BlobNotFound, DataStoreError, NotFound

INDEX_PREFIX = "flows"
INDEX_SUFFIX = ".index"
INDEX_FORMAT = 1
BULK_FROM = 32  # from this many tasks of one step, `open_tasks` lists the whole step once


class DamagedIndex(DataStoreError):
    """A task's index that does not parse: its artifacts and logs cannot be found."""

    def __init__(self, pathspec: str, key: str):
        super().__init__(
            f"the datastore index of {pathspec} ({key}) is damaged, so that task's artifacts and logs "
            "cannot be read; its status and every other task still can, and `resume` runs it again")
        self.pathspec = pathspec
        self.key = key


def task_prefix(flow_name: str, run_id: str, step_name: str, task_id: str) -> str:
    return f"{INDEX_PREFIX}/{flow_name}/{run_id}/{step_name}/{task_id}/"


def index_key(flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int) -> str:
    return f"{task_prefix(flow_name, run_id, step_name, task_id)}{attempt}{INDEX_SUFFIX}"


class TaskDataStore:
    """One attempt of one task: writable until `commit`, then read-only.

    Artifacts load lazily and once: a step that touches one artifact of a parent reads one
    blob, however many the parent stored.
    """

    def __init__(self, cas: ContentAddressedStore, pathspec: str, attempt: int,
                 index: Mapping[str, Any] | None = None):
        self.cas = cas
        self.pathspec = pathspec
        self.attempt = attempt
        index = index or {}
        self._records: dict[str, ArtifactRecord] = {
            name: ArtifactRecord(name, key, type_, size, encoding, attempt)
            for name, (key, type_, size, encoding) in index.get("artifacts", {}).items()
        }
        self._logs: dict[str, str] = dict(index.get("logs", {}))
        self.info = AttemptInfo.from_index(index.get("info", {}))
        self._values: dict[str, Any] = {}
        self.committed = index is not None and bool(index)

    # -- writing ----------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.committed:
            raise DataStoreError(f"attempt {self.attempt} of {self.pathspec} is already committed")

    def save_artifacts(self, values: Mapping[str, Any],
                       loaded_from: Mapping[str, ArtifactRecord] | None = None) -> dict[str, ArtifactRecord]:
        """Encode and store the values; they become part of this attempt's index.
        ``loaded_from``: the records some of them were loaded from (see `save_values`)."""
        self._writable()
        try:
            records = self.cas.save_values(values, loaded_from)
        except UnstorableValue as exc:
            step = self.pathspec.split("/")[2]
            cause = f"{type(exc.cause).__name__}: {exc.cause}"
            raise DataStoreError(
                f"self.{exc.name}, set in step '{step}', cannot be stored as an artifact ({cause}); "
                f"`del self.{exc.name}` before the step ends, or keep what it holds in a form that pickles"
            ) from None
        self.add_artifact_refs(records)
        self._values.update(values)
        return records

    def add_artifact_refs(self, records: Mapping[str, ArtifactRecord] | Iterable[ArtifactRecord]) -> None:
        """Point at artifacts already stored (a parent's, or a resumed run's) without copying."""
        self._writable()
        items = records.values() if isinstance(records, Mapping) else records
        for record in items:
            self._records[record.name] = ArtifactRecord(
                record.name, record.key, record.type, record.size, record.encoding, self.attempt)

    def save_log(self, stream: str, data: bytes) -> None:
        """Store a stream's output; an empty one stores nothing (most tasks print nothing on
        one stream or both, and `log` reads a missing stream as empty)."""
        self._writable()
        if data:
            self._logs[stream] = self.cas.save_blobs([data])[0]
        else:
            self._logs.pop(stream, None)

    def commit(self) -> None:
        """Write the index: from here on readers see this attempt."""
        self._writable()
        index = {
            "format": INDEX_FORMAT,
            "artifacts": {r.name: [r.key, r.type, r.size, r.encoding] for r in self._records.values()},
            "logs": self._logs,
            "info": self.info.to_index(),
        }
        flow, run, step, task = self.pathspec.split("/")
        self.cas.storage.put(index_key(flow, run, step, task, self.attempt), msgpack.packb(index))
        self.committed = True

    # -- reading ----------------------------------------------------------------------------

    def artifact_records(self) -> dict[str, ArtifactRecord]:
        return dict(self._records)

    def record(self, name: str) -> ArtifactRecord:
        return self._records[name]

    def names(self) -> list[str]:
        return list(self._records)

    def __contains__(self, name: str) -> bool:
        return name in self._records

    def load(self, name: str) -> Any:
        return self.load_many([name])[name]

    def load_many(self, names: Iterable[str]) -> dict[str, Any]:
        names = list(names)
        unknown = [n for n in names if n not in self._records]
        if unknown:
            raise NotFound(f"{self.pathspec} has no artifact '{unknown[0]}'")
        missing = {n: self._records[n] for n in names if n not in self._values}
        if missing:
            try:
                self._values.update(self.cas.load_values(missing))
            except DamagedObject as exc:
                name = next(n for n, r in missing.items() if r.key == exc.value_digest)
                raise self._damaged(f"artifact '{name}'", exc) from None
        return {n: self._values[n] for n in names}

    def log_keys(self) -> dict[str, str]:
        """``{stream: content key}`` of the attempt's captured output."""
        return dict(self._logs)

    def log(self, stream: str) -> bytes:
        """The attempt's captured output on ``stream`` ("stdout" or "stderr"); empty if none."""
        key = self._logs.get(stream)
        try:
            return self.cas.load_blobs([key])[0] if key else b""
        except DamagedObject as exc:
            raise self._damaged(f"the {stream} log", exc) from None

    def _damaged(self, what: str, exc: DamagedObject) -> DataStoreError:
        run_id = self.pathspec.split("/")[1]
        return DataStoreError(
            f"{what} of {self.pathspec} cannot be read because {exc.key} is damaged ({exc.why}); "
            f"`verify {run_id}` lists every damaged object of the run and can remove them so that "
            "`resume` writes them again")


class FlowDataStore:
    """Entry point to everything the datastore holds, for one storage backend."""

    def __init__(self, storage: StorageBackend):
        self.storage = storage
        self.cas = ContentAddressedStore(storage)

    def task(self, flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int) -> TaskDataStore:
        """A new, writable attempt."""
        return TaskDataStore(self.cas, f"{flow_name}/{run_id}/{step_name}/{task_id}", attempt)

    def committed_attempts(self, flow_name: str, run_id: str, step_name: str, task_id: str) -> list[int]:
        prefix = task_prefix(flow_name, run_id, step_name, task_id)
        attempts = []
        for key in self.storage.list(prefix):
            name = key[len(prefix):]
            if name.endswith(INDEX_SUFFIX) and name[: -len(INDEX_SUFFIX)].isdigit():
                attempts.append(int(name[: -len(INDEX_SUFFIX)]))
        return sorted(attempts)

    def open_tasks(self, flow_name: str, paths: Iterable[str]) -> list[TaskDataStore]:
        """The latest committed attempt of each ``run/step/task``, read in bulk: one listing
        per step and one batched read, so a 10,000-way join does not make 20,000 calls."""
        paths = list(paths)
        latest: dict[str, int] = {}
        steps: dict[tuple[str, str], list[str]] = {}
        for path in paths:
            steps.setdefault(tuple(path.split("/")[:2]), []).append(path)  # type: ignore[arg-type]
        for (run_id, step_name), step_paths in steps.items():
            # Many tasks of one step: list the step once. A few: list just those tasks, since
            # a step may hold thousands of tasks this one does not need.
            prefixes = ([f"{INDEX_PREFIX}/{flow_name}/{run_id}/{step_name}/"] if len(step_paths) >= BULK_FROM
                        else [task_prefix(flow_name, *p.split("/")) for p in step_paths])
            step_prefix = f"{INDEX_PREFIX}/{flow_name}/{run_id}/{step_name}/"
            for prefix in prefixes:
                for key in self.storage.list(prefix):
                    task_id, _, name = key[len(step_prefix):].partition("/")
                    attempt = name[: -len(INDEX_SUFFIX)] if name.endswith(INDEX_SUFFIX) else ""
                    if attempt.isdigit():
                        path = f"{run_id}/{step_name}/{task_id}"
                        latest[path] = max(latest.get(path, -1), int(attempt))
        missing = [p for p in paths if p not in latest]
        if missing:
            raise NotFound(f"the datastore has no finished attempt of {flow_name}/{missing[0]}")
        keys = {p: index_key(flow_name, *p.split("/"), latest[p]) for p in paths}
        blobs = self.storage.get_many(list(dict.fromkeys(keys.values())))
        return [self.open_index(f"{flow_name}/{p}", latest[p], blobs[keys[p]]) for p in paths]

    def open_index(self, pathspec: str, attempt: int, blob: bytes) -> TaskDataStore:
        """A committed attempt from its index's bytes, already read."""
        try:
            index = msgpack.unpackb(blob)
            if isinstance(index, dict) and isinstance(index.get("format"), int) and index["format"] > INDEX_FORMAT:
                raise DataStoreError(f"the index of {pathspec} was written by a newer version of Flow; "
                                     "upgrade flow-core to read it")
            if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
                raise ValueError("not an index")
            return TaskDataStore(self.cas, pathspec, attempt, index)
        except DataStoreError:
            raise
        except Exception:
            flow, run, step, task = pathspec.split("/")
            raise DamagedIndex(pathspec, index_key(flow, run, step, task, attempt)) from None

    def open_task(self, flow_name: str, run_id: str, step_name: str, task_id: str,
                  attempt: int | None = None) -> TaskDataStore:
        """A committed attempt (the latest when ``attempt`` is None), read-only."""
        pathspec = f"{flow_name}/{run_id}/{step_name}/{task_id}"
        if attempt is None:
            attempts = self.committed_attempts(flow_name, run_id, step_name, task_id)
            if not attempts:
                raise NotFound(f"the datastore has no finished attempt of {pathspec}")
            attempt = attempts[-1]
        try:
            blob = self.storage.get(index_key(flow_name, run_id, step_name, task_id, attempt))
        except BlobNotFound:
            raise NotFound(f"the datastore has no attempt {attempt} of {pathspec}") from None
        return self.open_index(pathspec, attempt, blob)
