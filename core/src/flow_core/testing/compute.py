"""The tests every compute backend must pass.

Subclass `ComputeConformance` and name the backend::

    class TestMyCompute(ComputeConformance):
        @pytest.fixture
        def compute_name(self):
            return "my-compute"

The tests run real tasks (the ``start`` step of a small flow written into the test's folder),
prepared the way the runtime prepares them: a run and its ``_parameters`` task, task ids from
the metadata backend, the run's task environment plus the metadata route, and, for a task whose
records travel through the datastore, the runtime's applying them when it is reported finished.
By default the tasks use the local datastore and metadata of ``flow_env``. A remote backend
overrides ``flow_backends`` (`Backends` for a datastore its tasks reach) and ``timeout``.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import attrs
import pytest

from flow_core.backends.compute import ComputeBackend, TaskHandle, TaskSpec
from flow_core.backends.records import FAILED, SUCCEEDED, TaskRecord
from flow_core.backends.selection import Backends
from flow_core.datastore.task_store import FlowDataStore, TaskDataStore
from flow_core.engine.input_paths import pack_input_paths
from flow_core.engine.metadata_path import (apply_stored_records, route_environment, stored_calls,
                                            writes_through_datastore)
from flow_core.engine.run_start import create_run, store_parameters, task_environment

FLOW_NAME = "ComputeConformanceFlow"
#: The variable the conformance tasks read from their TaskSpec's environment.
ENV_VARIABLE = "FLOW_CONFORMANCE_VALUE"
FAILURE = "RuntimeError: conformance failure on purpose"
LAST_LINE = "conformance-out last, without a newline"

CONFORMANCE_FLOW = f"""
import os
import sys
import time

from flow_core import FlowSpec, Parameter, current, step


class {FLOW_NAME}(FlowSpec):
    mode = Parameter("mode", default="succeed")
    seconds = Parameter("seconds", default=0.0)

    @step
    def start(self):
        self.env_value = os.environ.get("{ENV_VARIABLE}")
        print(f"conformance-task {{current.task_id}}", flush=True)
        print(f"conformance-env {{self.env_value}}", flush=True)
        if self.mode == "streams":
            for i in range(3):
                print(f"conformance-out {{i}}", flush=True)
                print(f"conformance-err {{i}}", file=sys.stderr, flush=True)
            sys.stdout.write("{LAST_LINE}")
            sys.stdout.flush()
        elif self.mode == "sleep":
            time.sleep(self.seconds)
        elif self.mode == "fail":
            raise RuntimeError("conformance failure on purpose")
        self.squares = [n * n for n in range(10)]
        self.next(self.end)

    @step
    def end(self):
        pass
"""


@attrs.frozen
class Finish:
    """One ``finished`` report, with what the metadata backend showed at that moment."""

    spec: TaskSpec
    returncode: int
    reason: str | None
    record: TaskRecord | None
    artifacts: tuple[str, ...]
    #: Why the metadata could not be read (or, on the datastore route, applied).
    problem: str | None


class TaskEventLog:
    """A `TaskEvents` that keeps every event, keyed by the reported spec's pathspec.

    On ``finished`` it does what the runtime does before it trusts the event (apply the records
    of a task on the datastore route) and then reads the metadata, in the reporting thread:
    a task reported finished must already be on record.
    """

    def __init__(self, backends: Backends) -> None:
        self.backends = backends
        self.changed = threading.Condition()
        self.lines: dict[str, list[tuple[TaskSpec, str, str]]] = {}
        self.finishes: dict[str, list[Finish]] = {}

    def output(self, spec: TaskSpec, stream: str, line: str) -> None:
        with self.changed:
            self.lines.setdefault(spec.pathspec, []).append((spec, stream, line))
            self.changed.notify_all()

    def finished(self, spec: TaskSpec, returncode: int, reason: str | None = None) -> None:
        record, artifacts, problem = self._snapshot(spec)
        with self.changed:
            self.finishes.setdefault(spec.pathspec, []).append(
                Finish(spec, returncode, reason, record, artifacts, problem))
            self.changed.notify_all()

    def _snapshot(self, spec: TaskSpec) -> tuple[TaskRecord | None, tuple[str, ...], str | None]:
        try:
            metadata = self.backends.metadata
            if writes_through_datastore(spec):
                failure = apply_stored_records(metadata, self.backends.storage, spec)
                if failure:
                    return None, (), failure
            where = (spec.flow_name, spec.run_id, spec.step_name, spec.task_id)
            artifacts = tuple(a.name for a in metadata.list_artifacts(*where, attempt=spec.retry_count))
            return metadata.get_task(*where), artifacts, None
        except Exception as exc:  # never break the backend's thread; the test reports it
            return None, (), f"{type(exc).__name__}: {exc}"


class ComputeHarness:
    """Runs the conformance flow's ``start`` tasks on one compute backend, as the runtime would."""

    def __init__(self, backends: Backends, compute_name: str, flow_file: Path, timeout: float) -> None:
        self.backends = backends
        self.compute_name = compute_name
        self.flow_file = str(Path(flow_file).absolute())
        self.timeout = timeout
        self.events = TaskEventLog(backends)
        self.datastore = FlowDataStore(backends.storage)
        self.handles: dict[str, TaskHandle] = {}

    @property
    def compute(self) -> ComputeBackend:
        """Built on first use, as the runtime builds it."""
        return self.backends.compute(self.compute_name)

    def new_run(self, mode: str = "succeed", seconds: float = 0.0) -> tuple[str, str]:
        """A run and its ``_parameters`` task: (run id, the parameters task's path)."""
        metadata = self.backends.metadata
        run = create_run(metadata, FLOW_NAME, self.backends.settings.user)
        path = store_parameters(metadata, self.datastore, FLOW_NAME, run.run_id, {"mode": mode, "seconds": seconds})
        return run.run_id, path

    def specs(self, run: tuple[str, str], environments: Sequence[Mapping[str, str]]) -> list[TaskSpec]:
        """One ``start`` task of ``run`` per environment (added to the run's own)."""
        run_id, parameters_path = run
        metadata = self.backends.metadata
        task_ids = metadata.new_tasks(FLOW_NAME, run_id, "start", len(environments))
        route = route_environment(self.compute, metadata)
        return [
            TaskSpec(flow_file=self.flow_file, flow_name=FLOW_NAME, run_id=run_id, step_name="start", task_id=task_id,
                     input_paths=pack_input_paths(self.datastore.cas, (parameters_path,)),
                     environment={**task_environment(self.backends.settings), **extra, **route},
                     compute=self.compute_name)
            for task_id, extra in zip(task_ids, environments)
        ]

    def spec(self, run: tuple[str, str], environment: Mapping[str, str] | None = None) -> TaskSpec:
        return self.specs(run, [environment or {}])[0]

    def launch(self, spec: TaskSpec) -> TaskHandle:
        handle = self.compute.launch(spec, self.events)
        self.handles[spec.pathspec] = handle
        return handle

    def run(self, spec: TaskSpec) -> Finish:
        self.launch(spec)
        return self.wait(spec)

    def wait(self, spec: TaskSpec, timeout: float | None = None) -> Finish:
        """The first ``finished`` report of the task."""
        timeout = self.timeout if timeout is None else timeout
        with self.events.changed:
            reported = self.events.changed.wait_for(lambda: self.events.finishes.get(spec.pathspec), timeout)
        if not reported:
            raise AssertionError(f"{spec.pathspec} was not reported finished within {timeout:.0f}s\n"
                                 f"{self.describe(spec)}")
        return self.events.finishes[spec.pathspec][0]

    def reports(self, *specs: TaskSpec, settle: float = 1.0) -> list[int]:
        """How many times each task was reported finished, after giving a second report time to come."""
        time.sleep(settle)
        return [len(self.events.finishes.get(spec.pathspec, ())) for spec in specs]

    def lines(self, spec: TaskSpec, stream: str | None = None) -> list[str]:
        return [line for _spec, s, line in self.events.lines.get(spec.pathspec, ()) if stream in (None, s)]

    def started(self, spec: TaskSpec) -> bool:
        """Whether the task is running its step: its first line arrived, or its attempt is on
        record as started (a backend may pass on output only when the task ends)."""
        if any(line.startswith("conformance-task") for line in self.lines(spec)):
            return True
        if writes_through_datastore(spec):
            calls = stored_calls(self.backends.storage, spec.flow_name, spec.run_id, spec.step_name, spec.task_id,
                                 spec.retry_count)
            return any(call == "start_attempt" for call, _args in calls)
        record = self.backends.metadata.get_task(spec.flow_name, spec.run_id, spec.step_name, spec.task_id)
        return record is not None and record.attempt >= spec.retry_count

    def wait_started(self, spec: TaskSpec) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.started(spec):
            assert not self.events.finishes.get(spec.pathspec), f"{spec.pathspec} ended early\n{self.describe(spec)}"
            assert time.monotonic() < deadline, f"{spec.pathspec} did not start in {self.timeout:.0f}s\n" \
                                                f"{self.describe(spec)}"
            time.sleep(0.2)

    def stored(self, spec: TaskSpec) -> TaskDataStore:
        return self.datastore.open_task(spec.flow_name, spec.run_id, spec.step_name, spec.task_id, spec.retry_count)

    def describe(self, spec: TaskSpec) -> str:
        """The task's reports, for an assertion's message."""
        lines = "\n".join(f"  {s}: {line}" for _spec, s, line in self.events.lines.get(spec.pathspec, ()))
        finishes = [(f.returncode, f.reason, f.problem) for f in self.events.finishes.get(spec.pathspec, ())]
        return f"finished reports (returncode, reason, problem): {finishes}\noutput:\n{lines}"

    def stop_unfinished(self) -> None:
        """Leave nothing running after a test that failed half-way."""
        for pathspec, handle in self.handles.items():
            if not self.events.finishes.get(pathspec):
                handle.terminate()


def _live_threads() -> set[threading.Thread]:
    """Threads that are alive, less the idle workers of unnamed executors (a storage
    backend's pool): a compute's own threads are expected to end on close."""
    return {t for t in threading.enumerate() if t.is_alive() and not t.name.startswith("ThreadPoolExecutor-")}


def _child_processes() -> set[int]:
    """This process's living (not zombie) children; read from /proc, so empty elsewhere."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if int(ppid) == os.getpid() and state != "Z":
            children.add(int(stat.parent.name))
    return children


class ComputeConformance:
    """Behaviour of `flow_core.plugin_api.ComputeBackend` implementations, on real tasks."""

    #: False for a backend whose log service merges a task's two streams (AWS Batch's
    #: CloudWatch Logs): each stream's lines must still all arrive, in order, but may be
    #: reported under either name.
    separate_streams = True
    #: Seconds within which a terminated task must be reported finished.
    stops_within = 20.0
    #: What the task of the "terminate" tests sleeps: far longer than `stops_within`.
    long_sleep = 60.0
    #: What the task of the "launch returns promptly" test sleeps; launch must take under half.
    short_sleep = 4.0
    #: Tasks launched at once in the concurrency test.
    concurrent_tasks = 4

    @pytest.fixture
    def compute_name(self) -> str:
        raise NotImplementedError("a ComputeConformance subclass must define a `compute_name` fixture")

    @pytest.fixture
    def flow_backends(self, flow_env) -> Iterator[Backends]:
        """The backends of the test's "command": the compute is built from them, and the tasks
        write to their datastore and metadata."""
        with Backends.configured() as backends:
            yield backends

    @pytest.fixture
    def timeout(self) -> float:
        """Seconds a task may take to start or to end before a test gives up on it."""
        return 60.0

    @pytest.fixture
    def compute_harness(self, flow_backends: Backends, compute_name: str, write_flow,
                        timeout: float) -> Iterator[ComputeHarness]:
        harness = ComputeHarness(flow_backends, compute_name, write_flow("compute_conformance.py", CONFORMANCE_FLOW),
                                 timeout)
        yield harness
        harness.stop_unfinished()

    def _output(self, harness: ComputeHarness, spec: TaskSpec, stream: str) -> list[str]:
        return harness.lines(spec, stream if self.separate_streams else None)

    # -- the tests ----------------------------------------------------------------------------

    def test_a_task_that_succeeds_is_reported_once_after_its_records_are_written(self, compute_harness):
        spec = compute_harness.spec(compute_harness.new_run())
        finish = compute_harness.run(spec)
        assert finish.returncode == 0, compute_harness.describe(spec)
        assert finish.problem is None, finish.problem
        assert finish.record is not None and (finish.record.attempt, finish.record.status) == (0, SUCCEEDED), \
            f"reported finished while the metadata showed {finish.record}"
        assert {"squares", "env_value"} <= set(finish.artifacts), finish.artifacts
        assert compute_harness.stored(spec).load("squares") == [n * n for n in range(10)]
        assert compute_harness.reports(spec) == [1]

    def test_output_arrives_line_by_line_in_order_per_stream(self, compute_harness):
        spec = compute_harness.spec(compute_harness.new_run("streams"))
        assert compute_harness.run(spec).returncode == 0, compute_harness.describe(spec)
        reported = compute_harness.events.lines[spec.pathspec]
        assert {stream for _spec, stream, _line in reported} <= {"stdout", "stderr"}
        assert all(s == spec for s, _stream, _line in reported)
        assert not [line for line in compute_harness.lines(spec) if line.endswith(("\n", "\r"))]
        out = [line for line in self._output(compute_harness, spec, "stdout") if line.startswith("conformance-")]
        err = [line for line in self._output(compute_harness, spec, "stderr") if line.startswith("conformance-")]
        if not self.separate_streams:
            out = [line for line in out if not line.startswith("conformance-err")]
            err = [line for line in err if line.startswith("conformance-err")]
        assert out == [f"conformance-task {spec.task_id}", "conformance-env None", "conformance-out 0",
                       "conformance-out 1", "conformance-out 2", LAST_LINE], compute_harness.describe(spec)
        assert err == ["conformance-err 0", "conformance-err 1", "conformance-err 2"], compute_harness.describe(spec)

    def test_a_failing_task_reports_a_nonzero_status_and_keeps_its_exception(self, compute_harness):
        spec = compute_harness.spec(compute_harness.new_run("fail"))
        finish = compute_harness.run(spec)
        assert finish.returncode != 0, compute_harness.describe(spec)
        assert finish.problem is None, finish.problem
        assert finish.record is not None and (finish.record.attempt, finish.record.status) == (0, FAILED), \
            f"reported finished while the metadata showed {finish.record}"
        stored = compute_harness.stored(spec)
        assert FAILURE in (stored.info.exception or "") and stored.info.success is False
        assert FAILURE in stored.log("stderr").decode()
        assert any(FAILURE in line for line in self._output(compute_harness, spec, "stderr")), \
            compute_harness.describe(spec)
        assert compute_harness.reports(spec) == [1]

    def test_launch_returns_before_the_task_ends(self, compute_harness):
        spec = compute_harness.spec(compute_harness.new_run("sleep", self.short_sleep))
        began = time.monotonic()
        compute_harness.launch(spec)
        took = time.monotonic() - began
        assert not compute_harness.events.finishes.get(spec.pathspec), "launch waited for the task to end"
        assert took < self.short_sleep / 2, f"launch took {took:.1f}s"
        assert compute_harness.wait(spec).returncode == 0, compute_harness.describe(spec)

    def test_terminate_stops_a_running_task_and_may_be_repeated(self, compute_harness):
        spec = compute_harness.spec(compute_harness.new_run("sleep", self.long_sleep))
        handle = compute_harness.launch(spec)
        compute_harness.wait_started(spec)
        handle.terminate()
        handle.terminate()
        finish = compute_harness.wait(spec, timeout=self.stops_within)
        assert finish.returncode != 0, compute_harness.describe(spec)
        handle.terminate()
        assert compute_harness.reports(spec) == [1]

    def test_terminate_right_after_launch_stops_the_task(self, compute_harness):
        """The runtime stops every running task when one fails, including those just launched
        (several here, as a race with the task's start is easily missed once)."""
        run = compute_harness.new_run("sleep", self.long_sleep)
        specs = compute_harness.specs(run, [{}] * self.concurrent_tasks)
        for spec in specs:
            compute_harness.launch(spec).terminate()
        for spec in specs:
            finish = compute_harness.wait(spec, timeout=self.stops_within + compute_harness.timeout)
            assert finish.returncode != 0, f"terminate() right after launch() did not stop {spec.pathspec}\n" \
                                           f"{compute_harness.describe(spec)}"
        assert compute_harness.reports(*specs) == [1] * len(specs)

    def test_tasks_launched_together_each_finish_once_with_their_own_spec(self, compute_harness):
        run = compute_harness.new_run()
        specs = compute_harness.specs(run, [{ENV_VARIABLE: f"task-{i}"} for i in range(self.concurrent_tasks)])
        for spec in specs:
            compute_harness.launch(spec)
        for spec in specs:
            finish = compute_harness.wait(spec)
            assert finish.spec == spec
            assert finish.returncode == 0, compute_harness.describe(spec)
            assert finish.record is not None and finish.record.status == SUCCEEDED, finish.problem or finish.record
            assert compute_harness.stored(spec).load("env_value") == spec.environment[ENV_VARIABLE]
            assert all(s == spec for s, _stream, _line in compute_harness.events.lines.get(spec.pathspec, ()))
            ours = [line for line in compute_harness.lines(spec) if line.startswith(("conformance-task",
                                                                                     "conformance-env"))]
            assert ours == [f"conformance-task {spec.task_id}", f"conformance-env {spec.environment[ENV_VARIABLE]}"], \
                compute_harness.describe(spec)
        assert compute_harness.reports(*specs) == [1] * len(specs)
        assert set(compute_harness.events.finishes) == {spec.pathspec for spec in specs}

    def test_close_after_the_tasks_finished_releases_the_backend(self, compute_harness):
        run = compute_harness.new_run()
        threads, children = _live_threads(), _child_processes()
        specs = compute_harness.specs(run, [{}, {}])  # builds the compute
        for spec in specs:
            compute_harness.launch(spec)
        for spec in specs:
            assert compute_harness.wait(spec).returncode == 0, compute_harness.describe(spec)
        began = time.monotonic()
        compute_harness.backends.close()  # as the runtime ends a run: closes each compute it built
        assert time.monotonic() - began < 30, "close() took more than 30s"
        deadline = time.monotonic() + 10
        while True:
            left = sorted(t.name for t in _live_threads() - threads), sorted(_child_processes() - children)
            if left == ([], []) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert left == ([], []), f"threads and child processes still alive after close(): {left}"

    def test_the_task_environment_reaches_the_task(self, compute_harness):
        value = uuid.uuid4().hex
        assert ENV_VARIABLE not in os.environ
        spec = compute_harness.spec(compute_harness.new_run(), {ENV_VARIABLE: value})
        assert compute_harness.run(spec).returncode == 0, compute_harness.describe(spec)
        assert compute_harness.stored(spec).load("env_value") == value
        assert f"conformance-env {value}" in self._output(compute_harness, spec, "stdout")
