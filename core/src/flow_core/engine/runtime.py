"""The local runtime: walks a run's graph and hands each ready task to a compute backend.

The runtime never runs user code. It allocates ids through the metadata backend, launches
task command lines (locally by default, anywhere a compute plugin reaches), reads back a
finished foreach step's number of splits from the datastore, and decides what runs next:
the children of a step, one task per foreach item, the one case a switch picked (read back
from the switch's task), a join once all its inputs are done. The tasks of a @parallel step
are a gang: launched together, reused by resume only all together, stopped if one fails.
A resumed run clones the origin run's successful tasks instead of running them again.
"""

from __future__ import annotations

import os
import queue
import shlex
import time
from collections import deque
from pathlib import Path
from typing import Any

import attrs

from flow_core.backends.compute import TaskHandle, TaskSpec
from flow_core.backends.environment import Interpreter
from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.records import RUNNING, SUCCEEDED, RunRecord, TaskRecord
from flow_core.backends.selection import Backends
from flow_core.datastore.task_store import FlowDataStore
from flow_core.engine.console import Console, StepProgress
from flow_core.engine.gangs import GangBook
from flow_core.engine.task_output import TaskOutput
from flow_core.engine.heartbeat import RunHeartbeat
from flow_core.engine.input_paths import pack_input_paths
from flow_core.engine.metadata_path import apply_stored_records, route_environment, writes_through_datastore
from flow_core.engine.resume import ResumePlan
from flow_core.engine.run_start import PARAMETERS_STEP, create_run, run_fields, store_parameters, task_environment
from flow_core.engine.step_specs import (
    build_environment_request,
    decorate_steps,
    first_task_specs,
    prepare_interpreters,
    with_interpreter,
)
from flow_core.errors import ConfigError, FlowError, RunFailed
from flow_core.model.foreach import Stack, child_stack, iteration_key
from flow_core.model.graph import FOREACH, JOIN, START, SWITCH, FlowGraph
from flow_core.model.parallel import Gang, gang_environment

STOP_GRACE_SECONDS = 10.0
DEFAULT_MAX_NUM_SPLITS = 100


def default_max_workers() -> int:
    """Tasks at once without ``--max-workers``: one more than the cores. Between one task's
    end and the next one's start (the runtime hearing of it, the fork server forking) a core
    would sit idle; the extra task fills that gap. On 2 cores a foreach of 1,000 trivial
    tasks runs about 7% faster with 3 than with 2, and slower again with 4 or 8."""
    return (os.cpu_count() or 1) + 1


@attrs.frozen
class _Output:
    spec: TaskSpec
    stream: str
    line: str


@attrs.frozen
class _Finished:
    spec: TaskSpec
    returncode: int
    reason: str | None


class _EventQueue:
    """Compute backends report here from their threads; the runtime's loop drains it."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()

    def output(self, spec: TaskSpec, stream: str, line: str) -> None:
        self.queue.put(_Output(spec, stream, line))

    def finished(self, spec: TaskSpec, returncode: int, reason: str | None = None) -> None:
        self.queue.put(_Finished(spec, returncode, reason))


@attrs.frozen
class RunOptions:
    compute: str | None = None
    max_workers: int | None = None
    max_num_splits: int = DEFAULT_MAX_NUM_SPLITS
    tags: tuple[str, ...] = ()
    decospecs: tuple[str, ...] = ()
    production_token: str | None = None
    run_id_file: str | None = None


class Runtime:
    def __init__(
        self,
        flow_cls: type,
        graph: FlowGraph,
        flow_file: str,
        backends: Backends,
        console: Console,
        options: RunOptions = RunOptions(),
        parameters: dict[str, Any] | None = None,
        resume: ResumePlan | None = None,
    ):
        self.flow_cls = flow_cls
        self.flow_name = flow_cls.__name__
        self.graph = graph
        self.flow_file = os.path.abspath(flow_file)
        self.backends = backends
        self.settings = backends.settings
        self.console = console
        self.options = options
        self.parameters = parameters or {}
        self.resume = resume
        self.max_workers = options.max_workers or default_max_workers()
        self.default_compute = options.compute or self.settings.backend_name("compute")
        # Select every backend and check every decorator before anything runs.
        self.decorators = decorate_steps(flow_cls, graph, options.decospecs, backends.step_decorators,
                                         self.settings.backend_name("environment"))
        self.storage = backends.storage
        self.datastore = FlowDataStore(self.storage)
        self.metadata: MetadataBackend = backends.metadata
        self._remote_steps: set[str] = set()
        self._check_remote_steps()
        #: Steps with an interpreter of their own (@pypi): it, and what their tasks' environment adds.
        self._interpreters: dict[str, tuple[Interpreter, dict[str, str]]] = {}
        self._events = _EventQueue()
        self._pending: deque[TaskSpec] = deque()
        self._delayed: list[tuple[float, TaskSpec]] = []
        self._running: dict[str, tuple[TaskSpec, TaskHandle]] = {}
        self._slots_used = 0
        self._stacks: dict[str, Stack] = {}
        self._join_inputs: dict[tuple, dict[Any, str]] = {}
        #: Tasks enqueued so far per (step, foreach iteration): a recursive switch runs a step
        #: again in the same iteration, and resume matches the n-th visit to the origin's n-th.
        self._visits: dict[tuple[str, tuple[int, ...]], int] = {}
        self._fresh: set[str] = set()  # tasks this run executed (not cloned)
        self._failed: list[tuple[TaskSpec, str]] = []
        self._stopping: set[str] = set()  # tasks the runtime itself terminated
        self._outputs: dict[str, TaskOutput] = {}  # what running tasks wrote: the tail of each stream
        self._gangs = GangBook()
        self.counts = {"done": 0, "cloned": 0}
        self._launched_at: dict[str, float] = {}  # for --verbose timings
        self._progress: dict[str, StepProgress] = {}  # in the order steps first ran

    def _check_remote_steps(self) -> None:
        """Build every compute backend the run uses, and refuse a step sent to remote compute
        with a datastore that only this machine reaches, or a @parallel gang sent to a remote
        compute that cannot start one, before anything runs."""
        specs = self._first_specs = first_task_specs(self.graph, self.decorators, self.flow_file, self.flow_name,
                                                     self.default_compute)
        # Built now, so that their settings are checked up front.
        probes = [(node, specs[node.name], self.backends.compute(specs[node.name].compute)) for node in self.graph]
        for node, probe, compute in probes:
            if node.parallel_step and compute.remote and not compute.runs_gangs:
                raise ConfigError(f"step '{node.name}' is @parallel, and the {probe.compute} compute cannot start "
                                  "a gang's tasks together; run it on local compute or on AWS Batch "
                                  "(flow-compute-batch)")
        for node, probe, compute in probes:
            remote = compute.remote
            if remote:
                self._remote_steps.add(node.name)
            if remote and self.storage.local_only:
                raise ConfigError(
                    f"step '{node.name}' runs on {probe.compute}, which cannot reach the local datastore "
                    f"{self.storage.describe()}; use one both can reach, e.g. --datastore s3 "
                    "(METAFLOW_DEFAULT_DATASTORE=s3)"
                )

    # -- the run --------------------------------------------------------------------------

    def execute(self) -> RunRecord:
        user = self.settings.user
        token = self.options.production_token
        origin = self.resume.origin_run_id if self.resume else None
        self._prepare_environments(origin)
        self.task_environment = task_environment(self.settings, token, origin)
        self._prepare_start_compute()
        run = create_run(self.metadata, self.flow_name, user, self.options.tags, token, origin)
        self.run = run
        if self._interpreters:
            self.backends.environment.record(self.flow_name, run.run_id)
        if self.options.run_id_file:
            Path(self.options.run_id_file).write_text(run.run_id)
        verb = f"Resuming {self.flow_name}/{origin}" if origin else "Workflow starting"
        self.console.info(f"{verb} (run-id {run.run_id}), {self.flow_name} by {user}:")
        self.console.detail(f"Datastore {self.storage.describe()}, metadata {self.metadata.describe()}, "
                            f"compute {self.default_compute}, up to {self.max_workers} tasks at once.")
        started = time.time()
        try:
            with RunHeartbeat(self.metadata, self.flow_name, run.run_id):
                parameters_path = self._store_parameters()
                self._enqueue(START, [((parameters_path,), (), None)])
                self._loop()
        except KeyboardInterrupt:
            self._terminate_all()
            self._drain_stopped()
            self.metadata.finish_run(self.flow_name, run.run_id, succeeded=False)
            raise RunFailed(
                f"run {run.pathspec} was interrupted; finished tasks are kept, and "
                f"`resume --origin-run-id {run.run_id}` continues it"
            ) from None
        finally:
            self.console.end_progress()
            self.backends.close()
        succeeded = not self._failed
        self.metadata.finish_run(self.flow_name, run.run_id, succeeded)
        if not succeeded:
            spec, why = self._failed[0]
            raise RunFailed(f"run {run.pathspec} failed: task {spec.pathspec} {why}; "
                            f"`resume --origin-run-id {run.run_id}` continues it")
        cloned = f" ({self.counts['cloned']} reused from run {origin})" if origin else ""
        self.console.result(f"Done! Run {run.pathspec} finished {self.counts['done']} tasks{cloned} "
                          f"in {time.time() - started:.1f}s.")
        return run

    def _prepare_environments(self, origin: str | None) -> None:
        """Resolve and build each step's environment (``--environment=pypi``) before the run
        exists: a package that cannot be had fails here, before any task."""
        environment = self.settings.backend_name("environment")
        if environment == "local":
            return
        request = build_environment_request(self.flow_cls, self.graph, self.decorators, self.backends,
                                            self._remote_steps, origin, self.console.info)
        started = time.monotonic()
        self._interpreters = prepare_interpreters(self.backends, request)
        self.console.detail(f"Environments ({environment}) ready in {time.monotonic() - started:.2f}s.")

    def _prepare_start_compute(self) -> None:
        """Let the start step's compute get ready while the run is recorded: the local compute
        forks its warm server from this process, which has no thread yet."""
        spec = self._first_specs[START]
        spec = self._placed(attrs.evolve(spec, environment={**self.task_environment, **spec.environment}))
        self.backends.compute(spec.compute).prepare(spec)

    def _placed(self, spec: TaskSpec) -> TaskSpec:
        """``spec`` with its step's interpreter and what its compute's route of the records
        adds to the environment."""
        spec = with_interpreter(spec, self._interpreters.get(spec.step_name))
        route = route_environment(self.backends.compute(spec.compute), self.metadata)
        return attrs.evolve(spec, environment={**spec.environment, **route}) if route else spec

    def _store_parameters(self) -> str:
        """Parameters become the artifacts of a `_parameters` task that `start` inherits."""
        if self.resume:
            origin_task = self.resume.parameters_task()
            if origin_task is not None:
                return self._clone(PARAMETERS_STEP, origin_task)
        return store_parameters(self.metadata, self.datastore, self.flow_name, self.run.run_id, self.parameters,
                                fields=run_fields(self.graph))

    def _loop(self) -> None:
        while self._pending or self._running or self._delayed:
            self._release_delayed()
            while self._pending and not self._failed:
                group = self._next_group()
                if not self._has_slots(group):
                    break
                for _ in group:
                    self._launch(self._pending.popleft())
            if self._failed and not self._running:
                break
            timeout = max(0.0, min(t for t, _ in self._delayed) - time.time()) if self._delayed else None
            try:
                event = self._events.queue.get(timeout=timeout)
            except queue.Empty:
                continue
            if isinstance(event, _Output):
                self.console.task_output(event.spec.label, event.stream, event.line)
                self._outputs.setdefault(event.spec.task_id, TaskOutput()).hear(event.stream, event.line)
            else:
                self._on_finished(event)

    def _release_delayed(self) -> None:
        now = time.time()
        for item in reversed([d for d in self._delayed if d[0] <= now]):  # a gang's nodes keep their order
            self._delayed.remove(item)
            self._pending.appendleft(item[1])

    def _slots(self, spec: TaskSpec) -> int:
        """How many of --max-workers a task takes: its CPUs when it runs on this machine."""
        if self.backends.compute(spec.compute).remote:
            return 1
        return max(1, min(int(spec.resources.cpu or 1), self.max_workers))

    def _has_slots(self, group: list[TaskSpec]) -> bool:
        needed = sum(self._slots(spec) for spec in group)
        return self._slots_used + needed <= self.max_workers or not self._running

    def _next_group(self) -> list[TaskSpec]:
        """The next task, or every task of the next @parallel gang: a gang's nodes may wait
        for one another, so they start together (even past --max-workers, on an idle runtime)."""
        gang = self._pending[0].gang
        if gang is None:
            return [self._pending[0]]
        group = []
        for spec in self._pending:
            if spec.gang is None or spec.gang.control_task_id != gang.control_task_id:
                break
            group.append(spec)
        return group

    # -- tasks ----------------------------------------------------------------------------

    def _enqueue(self, step_name: str, tasks: list[tuple[tuple[str, ...], Stack, int | None]]) -> None:
        """Queue tasks of one step: (input paths, foreach stack, split index) each."""
        to_run = []
        origins = []
        for input_paths, stack, _split_index in tasks:
            visit_key = (step_name, iteration_key(stack))
            visit = self._visits.get(visit_key, 0)
            self._visits[visit_key] = visit + 1
            origins.append(self._reusable(step_name, input_paths, stack, visit))
        gang = self.graph[step_name].parallel_step
        if gang and None in origins:
            origins = [None] * len(origins)  # a gang is all-or-nothing: one task to re-run re-runs them all
        for (input_paths, stack, split_index), origin in zip(tasks, origins):
            if origin is not None:
                path = self._clone(step_name, origin)
                self._stacks[path.rsplit("/", 1)[1]] = stack
                self.console.task_event(path, f"Reused {origin.pathspec}.")
                self._count(step_name, done=1)
                self._on_success(step_name, path, stack)
            else:
                to_run.append((input_paths, stack, split_index))
        if not to_run:
            return
        task_ids = self.metadata.new_tasks(self.flow_name, self.run.run_id, step_name, len(to_run))
        decorators = self.decorators[step_name]
        for task_id, (input_paths, stack, split_index) in zip(task_ids, to_run):
            environment = self.task_environment
            node = None
            if gang:
                node = Gang(len(to_run), split_index or 0, task_ids[0])
                environment = {**environment, **gang_environment(node)}
            spec = TaskSpec(
                flow_file=self.flow_file, flow_name=self.flow_name, run_id=self.run.run_id,
                step_name=step_name, task_id=task_id, split_index=split_index,
                input_paths=pack_input_paths(self.datastore.cas, input_paths),
                tags=self.options.tags, decospecs=self.options.decospecs,
                environment=environment, compute=self.default_compute, gang=node,
            )
            for decorator in decorators:
                spec = decorator.runtime_task_spec(spec)
            spec = self._placed(spec)
            self._stacks[task_id] = stack
            self._pending.append(spec)
            if spec.gang is not None:
                self._gangs.add(spec)

    def _reusable(self, step_name: str, input_paths: tuple[str, ...], stack: Stack, visit: int):
        if self.resume is None or any(path in self._fresh for path in input_paths):
            return None
        return self.resume.reusable_task(step_name, iteration_key(stack), visit)

    def _clone(self, step_name: str, origin) -> str:
        (task_id,) = self.metadata.new_tasks(self.flow_name, self.run.run_id, step_name, 1)
        self.resume.clone_task(origin, self.run.run_id, task_id, self.datastore, self.metadata)
        if step_name != PARAMETERS_STEP:  # the summary counts the flow's own steps' tasks
            self.counts["cloned"] += 1
        return f"{self.run.run_id}/{step_name}/{task_id}"

    def _launch(self, spec: TaskSpec) -> None:
        retry = f" (retry {spec.retry_count})" if spec.retry_count else ""
        self.console.task_event(spec.label, f"Task is starting{retry}.")
        self.console.detail(f"[{spec.label}] on {spec.compute}, after {', '.join(spec.input_paths) or 'nothing'}: "
                            + shlex.join(spec.command()))
        self._launched_at[spec.task_id] = time.monotonic()
        handle = self.backends.compute(spec.compute).launch(spec, self._events)
        self._running[spec.task_id] = (spec, handle)
        self._slots_used += self._slots(spec)
        self._count(spec.step_name, running=1)

    def _took(self, spec: TaskSpec) -> str:
        launched = self._launched_at.pop(spec.task_id, None)
        return f"{time.monotonic() - launched:.2f}s from launch to finish" if launched is not None else "?"

    def _count(self, step_name: str, done: int = 0, running: int = 0, failed: int = 0) -> None:
        progress = self._progress.setdefault(step_name, StepProgress(step_name))
        progress.done += done
        progress.running += running
        progress.failed += failed
        self.console.progress(list(self._progress.values()))

    def _on_finished(self, event: _Finished) -> None:
        spec = event.spec
        if writes_through_datastore(spec):
            failure = apply_stored_records(self.metadata, self.storage, spec)
            if failure and event.returncode == 0:
                event = _Finished(spec, 1, failure)
        if self._running.pop(spec.task_id, None) is not None:
            self._slots_used -= self._slots(spec)
        output = self._outputs.pop(spec.task_id, None) or TaskOutput()
        if self._gangs.is_retrying(spec):
            self._on_gang_node_ended(spec, event)
            return
        if spec.task_id in self._stopping and event.returncode != 0:
            self._on_stopped(spec, event.reason)
            return
        if event.returncode == 0:
            self.console.task_event(spec.label, "Task finished successfully.")
            self.console.detail(f"[{spec.label}] took {self._took(spec)}")
            self._count(spec.step_name, done=1, running=-1)
            path = f"{spec.run_id}/{spec.step_name}/{spec.task_id}"
            self._fresh.add(path)
            self.counts["done"] += 1
            if not self._failed:
                self._on_success(spec.step_name, path, self._stacks[spec.task_id], spec)
            return
        why = (event.reason or self._task_exception(spec) or self._gang_exception(spec)
               or output.describe(event.returncode))
        output.keep_if_lost(self.datastore, spec, why, event.returncode)
        self._record_failure(spec, why)
        retries_left = spec.retry_count < spec.max_user_code_retries + spec.max_error_retries
        if retries_left and not self._failed:
            self._count(spec.step_name, running=-1)
            if spec.gang is None:
                self.console.task_event(spec.label, f"Task failed ({why}); retrying.", failed=True)
                self._retry([attrs.evolve(spec, retry_count=spec.retry_count + 1)])
            else:
                self.console.task_event(spec.label, f"Task failed ({why}); retrying its @parallel gang.",
                                        failed=True)
                self._retry_gang(spec)
            return
        if spec.gang is not None and not self._failed:
            # A gang is all-or-nothing: its other nodes may be waiting for this one forever.
            why = f"{why}; the other tasks of its @parallel gang were stopped and step '{spec.step_name}' failed"
        self.console.task_event(spec.label, f"Task failed: {why}", failed=True)
        self._count(spec.step_name, failed=1, running=-1)
        self._failed.append((spec, f"failed: {why}"))
        self._terminate_all()

    def _retry(self, specs: list[TaskSpec]) -> None:
        # As in Metaflow, a task on this machine is retried at once: the wait between
        # retries is for remote compute, where a failure is often a passing outage.
        delay = specs[0].retry_delay if self.backends.compute(specs[0].compute).remote else 0.0
        at = time.time() + delay  # one time for a whole gang, so that it is released together
        self._delayed.extend((at, spec) for spec in specs)

    def _retry_gang(self, spec: TaskSpec) -> None:
        """Stop what is left of the gang's failed attempt; it runs again once all of it ended."""
        self._gangs.start_retry(spec)
        members = self._gangs.task_ids(spec)
        for arrived in self._join_inputs.values():  # what its finished nodes handed the join is stale
            for key in [k for k, path in arrived.items() if path.rsplit("/", 1)[1] in members]:
                del arrived[key]
        for other, handle in list(self._running.values()):
            if other.task_id in members:
                handle.terminate()
        self._retry_gang_if_ended(spec)

    def _on_gang_node_ended(self, spec: TaskSpec, event: _Finished) -> None:
        """A node of a gang being retried ended: whatever it did, the gang runs again."""
        self._stopping.discard(spec.task_id)
        if event.returncode != 0:
            self._on_stopped(spec, "its @parallel gang is retried")
        else:
            self._count(spec.step_name, running=-1)
        self._retry_gang_if_ended(spec)

    def _retry_gang_if_ended(self, spec: TaskSpec) -> None:
        if not self._gangs.task_ids(spec) & self._running.keys():
            next_attempt = self._gangs.next_attempt(spec)
            if not self._failed:  # another step failed meanwhile: the run is ending
                self._retry(next_attempt)

    def _task_exception(self, spec: TaskSpec) -> str | None:
        try:
            store = self.datastore.open_task(spec.flow_name, spec.run_id, spec.step_name, spec.task_id,
                                             spec.retry_count)
        except FlowError:
            return None
        exception = store.info.exception
        return f"raised {exception}" if exception else None

    def _gang_exception(self, spec: TaskSpec) -> str | None:
        """Why a gang failed, from the node that raised: a multi-node job ends all its tasks
        at once, and the first reported need not be the one that failed."""
        if spec.gang is None:
            return None
        for other, _ in list(self._running.values()):
            if other.gang is not None and other.gang.control_task_id == spec.gang.control_task_id:
                exception = self._task_exception(other)
                if exception:
                    return f"its gang's node {other.gang.node_index} ({other.label}) {exception}"
        return None

    def _record_failure(self, spec: TaskSpec, why: str) -> None:
        """A task that died before recording its attempt's end (killed, its fork server gone,
        its datastore unreachable) would look running forever: record it failed, and why."""
        self._finish_if_running(spec, self._task_record(spec), {"failure": why})

    def _task_record(self, spec: TaskSpec) -> TaskRecord | None:
        try:
            return self.metadata.get_task(spec.flow_name, spec.run_id, spec.step_name, spec.task_id)
        except FlowError:
            return None  # the run fails or ends either way; resume does not depend on this record

    def _finish_if_running(self, spec: TaskSpec, task: TaskRecord | None, fields: dict[str, str]) -> None:
        if task is None or task.status != RUNNING:
            return
        try:
            self.metadata.finish_attempt(spec.flow_name, spec.run_id, spec.step_name, spec.task_id,
                                         spec.retry_count, False, fields=fields)
        except FlowError:
            pass  # as above

    def _on_success(self, step_name: str, path: str, stack: Stack, spec: TaskSpec | None = None) -> None:
        node = self.graph[step_name]
        if node.type == FOREACH:
            run_id, _, task_id = path.split("/")
            store = self.datastore.open_task(self.flow_name, run_id, step_name, task_id)
            num_splits = int(store.info.foreach_num_splits or 0)
            if num_splits > self.options.max_num_splits:
                self._failed.append((spec or _spec_for(self, step_name, task_id),
                                     f"asked for a foreach of {num_splits} items, more than --max-num-splits "
                                     f"{self.options.max_num_splits}; raise it if that many is intended"))
                self._terminate_all()
                return
            child = self.graph[node.out_funcs[0]]
            self._enqueue(child.name, [
                ((path,), child_stack(stack, node, child, index, num_splits), index) for index in range(num_splits)
            ])
            return
        children = [self._chosen_case(step_name, path)] if node.type == SWITCH else node.out_funcs
        for child_name in children:
            child = self.graph[child_name]
            new_stack = child_stack(stack, node, child, None, None)
            if child.type != JOIN:
                self._enqueue(child_name, [((path,), new_stack, None)])
                continue
            closes_foreach = len(new_stack) < len(stack)
            key = (child_name, iteration_key(new_stack))
            arrived = self._join_inputs.setdefault(key, {})
            # A static split's join waits for one input per branch, from whichever step of
            # the branch ran last (a switch in a branch runs only one of its cases).
            split, branch = node.branch_path[-1]
            arrived[stack[-1].index if closes_foreach else branch] = path
            branches = self.graph[split].out_funcs
            expected = stack[-1].num_splits if closes_foreach else len(branches)
            if len(arrived) == expected:
                del self._join_inputs[key]
                order = sorted(arrived) if closes_foreach else branches
                self._enqueue(child_name, [(tuple(arrived[k] for k in order), new_stack, None)])

    def _chosen_case(self, step_name: str, path: str) -> str:
        """The case a switch's task took, as it recorded it."""
        run_id, _, task_id = path.split("/")
        store = self.datastore.open_task(self.flow_name, run_id, step_name, task_id)
        (chosen,) = store.info.transition or (None,)
        if chosen not in self.graph[step_name].out_funcs:
            raise FlowError(f"task {self.flow_name}/{path} of the switch '{step_name}' recorded no case it took")
        return chosen

    def _terminate_all(self) -> None:
        self._pending.clear()
        self._delayed.clear()
        for spec, handle in list(self._running.values()):
            self._stopping.add(spec.task_id)
            handle.terminate()

    def _on_stopped(self, spec: TaskSpec, reason: str | None = None) -> None:
        """A task the runtime stopped: record the attempt as failed so nothing looks still running.

        A task may have recorded its success just before the stop reached it (a Ctrl-C sent to
        the whole process group lands while it exits): that attempt is kept as it is, and
        `resume` reuses it."""
        task = self._task_record(spec)
        if task is not None and task.attempt == spec.retry_count and task.status == SUCCEEDED:
            self.console.task_event(spec.label, "Task finished successfully.")
            self._count(spec.step_name, done=1, running=-1)
            self.counts["done"] += 1
            return
        self.console.task_event(spec.label, f"Task stopped: {reason}." if reason else "Task stopped.", failed=True)
        self._count(spec.step_name, running=-1)
        self._finish_if_running(spec, task, {"stopped": reason or "stopped by the runtime"})

    def _drain_stopped(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """After Ctrl-C: wait briefly for the stopped tasks to exit, so none outlives the run."""
        deadline = time.monotonic() + grace
        while self._running and time.monotonic() < deadline:
            try:
                event = self._events.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                break
            if isinstance(event, _Finished):
                self._on_finished(event)


def _spec_for(runtime: Runtime, step_name: str, task_id: str) -> TaskSpec:
    return TaskSpec(flow_file=runtime.flow_file, flow_name=runtime.flow_name, run_id=runtime.run.run_id,
                    step_name=step_name, task_id=task_id)
