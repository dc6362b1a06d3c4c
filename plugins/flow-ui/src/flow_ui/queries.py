"""What the pages show, gathered with as few backend queries as the public APIs allow.

Records (runs, and every task of a run in one query) come from the configured metadata
backend; artifacts, logs, exceptions and metadata fields from the Client API, which reads
the same backends. Nothing here writes.
"""

from __future__ import annotations

import json

import threading
import time
from typing import Any

from flow_core import Task, namespace
from flow_core.plugin_api import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    AttemptRecord,
    Backends,
    MetadataBackend,
    NotFound,
    RunRecord,
    TaskRecord,
    attempts_from_fields,
)

#: The run's parameters live in this hidden step's one task (as `start` inherits them).
PARAMETERS_STEP = "_parameters"
#: Runs per page of the runs list.
PAGE_SIZE = 50
#: How long a listing of every run is reused while paging (seconds).
LISTING_TTL = 2.0


def run_status(record: RunRecord) -> str:
    return "crashed" if record.crashed else record.status


def task_state(record: TaskRecord) -> str:
    """``done``, ``running``, ``failed`` or ``pending`` (allocated, no attempt started yet)."""
    if record.status == SUCCEEDED:
        return "done"
    if record.status == FAILED:
        return "failed"
    return "running" if record.attempt >= 0 else "pending"


def run_summary(record: RunRecord) -> dict[str, Any]:
    end = record.finished_at if record.status != RUNNING else None
    return {
        "flow": record.flow_name, "run_id": record.run_id, "pathspec": record.pathspec,
        "user": record.user, "status": run_status(record), "created_at": record.created_at,
        "finished_at": end, "duration": ((end or time.time()) - record.created_at),
        "tags": sorted(record.tags), "system_tags": sorted(record.system_tags),
        "origin_run_id": record.origin_run_id,
    }


class Queries:
    """The read side of the UI over one set of configured backends."""

    def __init__(self, backends: Backends | None = None):
        namespace(None)  # the UI shows everyone's runs, as the metadata holds them
        self.backends = backends or Backends.configured()
        self._listing: dict[tuple, tuple[float, list[RunRecord]]] = {}
        self._edges: dict[str, dict[str, list[str]]] = {}
        self._lock = threading.Lock()

    @property
    def metadata(self) -> MetadataBackend:
        return self.backends.metadata

    def describe(self) -> str:
        return self.metadata.describe()

    # -- runs ---------------------------------------------------------------------------------

    def flows(self) -> list[str]:
        return [f.name for f in self.metadata.list_flows()]

    def _all_runs(self, flow: str | None, user: str | None, tag: str | None) -> list[RunRecord]:
        """Every run matching the filters the metadata answers itself (flow and tags), newest
        first; kept for a moment so that paging through 10,000 runs queries once."""
        key = (flow, user, tag)
        now = time.monotonic()
        with self._lock:
            cached = self._listing.get(key)
            if cached and now - cached[0] < LISTING_TTL:
                return cached[1]
        tags = ([f"user:{user}"] if user else []) + ([tag] if tag else [])
        names = [flow] if flow else self.flows()
        records: list[RunRecord] = []
        for name in names:
            records.extend(self.metadata.list_runs(name, tags=tags))
        records.sort(key=lambda r: r.created_at, reverse=True)
        with self._lock:
            self._listing[key] = (now, records)
        return records

    def runs(self, flow: str | None = None, user: str | None = None, tag: str | None = None,
             status: str | None = None, page: int = 1, per_page: int = PAGE_SIZE) -> dict[str, Any]:
        records = self._all_runs(flow or None, user or None, tag or None)
        if status:
            records = [r for r in records if run_status(r) == status]
        pages = max(1, -(-len(records) // per_page))
        page = min(max(1, page), pages)
        shown = records[(page - 1) * per_page: page * per_page]
        return {"runs": [run_summary(r) for r in shown], "page": page, "pages": pages, "total": len(records),
                "filters": {"flow": flow or "", "user": user or "", "tag": tag or "", "status": status or ""}}

    # -- one run ------------------------------------------------------------------------------

    def run_record(self, flow: str, run_id: str) -> RunRecord:
        try:
            record = self.metadata.get_run(flow, run_id)
        except NotFound:
            record = None
        if record is None:
            raise NotFound(f"run {flow}/{run_id} does not exist in {self.describe()}")
        return record

    def run(self, flow: str, run_id: str) -> dict[str, Any]:
        """The run, its steps with task counts, the edges between them and every task: three
        metadata queries whatever the number of tasks, plus the graph's edges (see `_edges_of`)."""
        record = self.run_record(flow, run_id)
        run_id = record.run_id
        step_order = [s.step_name for s in self.metadata.list_steps(flow, run_id)]
        tasks = self.metadata.list_tasks(flow, run_id)
        by_step: dict[str, list[TaskRecord]] = {}
        for task in tasks:
            by_step.setdefault(task.step_name, []).append(task)
        params_tasks = by_step.pop(PARAMETERS_STEP, [])
        recorded = self._recorded(params_tasks)
        graph = json.loads(recorded["graph-info"]) if recorded.get("graph-info") else None
        if graph:  # the flow's graph as the run recorded it: steps no task reached are drawn too
            step_order = [s["name"] for s in graph["steps"]]
        steps = []
        for name in [s for s in step_order if s in by_step or graph]:
            counts = {"done": 0, "running": 0, "failed": 0, "pending": 0}
            for task in by_step.get(name, []):
                counts[task_state(task)] += 1
            starts = [t.created_at for t in by_step.get(name, [])]
            ends = [t.finished_at for t in by_step.get(name, []) if t.finished_at is not None]
            steps.append({"name": name, "counts": counts, "tasks": len(by_step.get(name, [])),
                          "started_at": min(starts) if starts else None, "finished_at": max(ends) if ends else None})
        summary = run_summary(record)
        summary.update(
            steps=steps,
            edges={s["name"]: s["next"] for s in graph["steps"]} if graph else self._edges_of(record, by_step),
            tasks=[{"step": t.step_name, "task_id": t.task_id, "pathspec": t.pathspec, "state": task_state(t),
                    "attempt": max(t.attempt, 0), "created_at": t.created_at, "finished_at": t.finished_at}
                   for name in [s["name"] for s in steps] for t in by_step.get(name, [])],
            parameters=self._parameters(params_tasks),
        )
        summary.update(self._started_by(record, by_step.get("start", [])))
        summary["started_by"]["command"] = recorded.get("command")
        return summary

    def _recorded(self, params_tasks: list[TaskRecord]) -> dict[str, str]:
        """What the run recorded about itself on its `_parameters` task: its graph and the
        command line that started it (runs of older versions of Flow have neither)."""
        if not params_tasks:
            return {}
        try:
            return Task(params_tasks[0].pathspec).metadata_dict
        except NotFound:
            return {}

    def _edges_of(self, record: RunRecord, by_step: dict[str, list[TaskRecord]]) -> dict[str, list[str]]:
        """``{step: [child steps]}``, from one finished task of each step.

        The Client API knows a task's children (from what each attempt recorded), not the
        flow's graph, so a step appears once one of its tasks started. A finished run's edges
        never change and are kept."""
        if record.pathspec in self._edges:
            return self._edges[record.pathspec]
        edges: dict[str, list[str]] = {}
        for name, tasks in by_step.items():
            done = next((t for t in tasks if t.status == SUCCEEDED), None)
            if done is None:
                edges[name] = []
                continue
            task = Task(done.pathspec)
            children = []
            for pathspec in task.child_task_pathspecs:
                step = pathspec.split("/")[2]
                if step not in children:
                    children.append(step)
            edges[name] = children
        if record.status != RUNNING:
            self._edges[record.pathspec] = edges
        return edges

    def _parameters(self, params_tasks: list[TaskRecord]) -> dict[str, str]:
        from .previews import short_repr

        done = [t for t in params_tasks if t.status == SUCCEEDED]
        if not done:
            return {}
        try:
            task = Task(done[0].pathspec)
            return {a.id: short_repr(a.data) for a in task}
        except Exception as exc:  # a parameter that cannot be read here still leaves the page
            return {"(unreadable)": f"{type(exc).__name__}: {exc}"}

    def _started_by(self, record: RunRecord, start_tasks: list[TaskRecord]) -> dict[str, Any]:
        """What is known of how the run started: its runtime tag, and the `start` task's host
        and code package. Flow does not record the command line itself."""
        runtime = next((t.split(":", 1)[1] for t in record.system_tags if t.startswith("runtime:")), None)
        production = next((t for t in record.system_tags if t.startswith("production:")), None)
        fields: dict[str, str] = {}
        if start_tasks:
            try:
                fields = Task(start_tasks[0].pathspec).metadata_dict
            except NotFound:
                fields = {}
        return {"started_by": {"runtime": runtime, "production": production, "hostname": fields.get("hostname"),
                               "code_package": bool(fields.get("code-package")),
                               "environment": fields.get("environment"),
                               "trigger": fields.get("execution-triggers")}}

    # -- the timeline -------------------------------------------------------------------------

    def timeline(self, flow: str, run_id: str) -> dict[str, Any]:
        """Every attempt of every task with its start and end: one metadata query for the
        whole run (`MetadataBackend.list_attempts`), whatever its number of tasks."""
        record = self.run_record(flow, run_id)
        run = f"{flow}/{record.run_id}"
        bars = [{"step": a.step_name, "task_id": a.task_id, "pathspec": f"{run}/{a.step_name}/{a.task_id}",
                 **attempt_row(a)}
                for a in self.metadata.list_attempts(flow, record.run_id) if a.step_name != PARAMETERS_STEP]
        starts = [b["start"] for b in bars] or [record.created_at]
        ends = [b["end"] or time.time() for b in bars] or [time.time()]
        return {"start": min(starts), "end": max(ends), "attempts": bars}

    # -- one task -----------------------------------------------------------------------------

    def task(self, flow: str, run_id: str, step: str, task_id: str, attempt: str | None = None) -> Task:
        """The task, or one of its attempts (one that started: the UI links only to those)."""
        if step == PARAMETERS_STEP:
            raise NotFound(f"task {flow}/{run_id}/{step}/{task_id} does not exist")
        task = Task(f"{flow}/{run_id}/{step}/{task_id}", attempt=attempt)
        latest = self.metadata.get_task(flow, run_id, step, task_id)
        if attempt is not None and (latest is None or task.current_attempt > latest.attempt):
            raise NotFound(f"task {task.pathspec} has no attempt {task.current_attempt}; "
                           f"its attempts are 0 to {max(latest.attempt, 0) if latest else 0}")
        return task

    def attempts(self, task: Task) -> list[dict[str, Any]]:
        """Every attempt of the task (whichever one ``task`` shows), with its host and why it ended."""
        flow, run_id, step, task_id = task.path_components
        record = self.metadata.get_task(flow, run_id, step, task_id)
        if record is None:
            return []
        fields = self.metadata.list_metadata(flow, run_id, step, task_id)
        notes: dict[int, dict[str, str]] = {}
        for field in fields:
            if field.field in ("hostname", "failure", "stopped"):
                notes.setdefault(field.attempt, {})[field.field] = field.value
        return [{**attempt_row(a), **notes.get(a.attempt, {})} for a in attempts_from_fields(record, fields)]


#: An attempt's outcome as the pages colour it (a task's states, see `task_state`).
ATTEMPT_STATES = {SUCCEEDED: "done", FAILED: "failed", RUNNING: "running"}


def attempt_row(attempt: AttemptRecord) -> dict[str, Any]:
    return {"attempt": attempt.attempt, "start": attempt.started_at, "end": attempt.finished_at,
            "state": ATTEMPT_STATES.get(attempt.status, attempt.status)}
