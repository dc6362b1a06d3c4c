"""`BatchCompute`: every task a Batch job running the bootstrap and then the task command.

Submissions go through a small thread pool, so ``launch`` returns at once even for a wide
foreach; one monitor thread describes all live jobs a hundred at a time, backing off while
nothing changes, reports each state change as a line of the task's output, streams the
job's CloudWatch log lines while it runs, and reports the end with Batch's reason.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
from flow_core.plugin_api import (
    Backends,
    CodePackage,
    ComputeBackend,
    ConfigError,
    FlowError,
    Settings,
    TaskEvents,
    TaskHandle,
    TaskSpec,
)

from .api import container_command, container_environment, default_image, job_queue
from .decorator import RESOURCES_KEY
from .job_definition import JobShape
from .jobs import TERMINAL, BatchJobRunner, failure_reason, job_name

DISTRIBUTION = "flow-compute-batch"
SUBMIT_WORKERS = 8
MIN_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 5.0
STOP_REASON = "stopped by Flow: the run failed or was interrupted"


@attrs.define(eq=False)
class _Job:
    """One Batch job: a task's, or a @parallel gang's multi-node job running all its tasks."""

    tasks: list[tuple[TaskSpec, TaskEvents]]
    job_id: str | None = None
    #: A gang's own job definition, deregistered once its job ends.
    definition: str | None = None
    status: str | None = None
    log_stream: str | None = None
    log_token: str | None = None
    stop_requested: bool = False
    done: bool = False

    @property
    def spec(self) -> TaskSpec:
        """The task the job's lines are shown under: the only one, or a gang's control task."""
        return self.tasks[0][0]

    @property
    def events(self) -> TaskEvents:
        return self.tasks[0][1]


class BatchJobHandle(TaskHandle):
    def __init__(self, compute: "BatchCompute", job: _Job):
        self.compute = compute
        self.job = job

    def terminate(self) -> None:
        self.compute._terminate(self.job)


class BatchCompute(ComputeBackend):
    """Runs each task as an AWS Batch job in METAFLOW_BATCH_JOB_QUEUE."""

    name = "batch"
    remote = True
    runs_gangs = True  # as one multi-node job

    def __init__(self, backends: Backends, runner: BatchJobRunner, image: str, job_role: str | None = None):
        self.backends = backends
        self.settings = backends.settings
        self.storage = backends.storage
        self.runner = runner
        self.image = image
        self.job_role = job_role
        self._package: tuple[CodePackage, str] | None = None
        self._lock = threading.Lock()
        self._live: dict[str, _Job] = {}
        self._gangs: dict[tuple[str, str], _Job] = {}  # gangs whose tasks are still being launched
        self._pool = ThreadPoolExecutor(SUBMIT_WORKERS, thread_name_prefix="flow-batch-submit")
        self._wake = threading.Event()
        self._closed = False
        self._monitor = threading.Thread(target=self._watch, name="flow-batch-monitor", daemon=True)
        self._monitor.start()

    @classmethod
    def from_settings(cls, settings: Settings, backends: Backends) -> "BatchCompute":
        return cls(backends, BatchJobRunner(job_queue(settings)), default_image(settings),
                   settings.get("METAFLOW_ECS_S3_ACCESS_IAM_ROLE"))

    # -- submitting ---------------------------------------------------------------------------

    def launch(self, spec: TaskSpec, events: TaskEvents) -> TaskHandle:
        if spec.gang is None:
            job = _Job([(spec, events)])
            self._pool.submit(self._submit, job)
            return BatchJobHandle(self, job)
        key = (spec.run_id, spec.gang.control_task_id)
        with self._lock:
            job = self._gangs.setdefault(key, _Job([]))
            job.tasks.append((spec, events))
            complete = len(job.tasks) == spec.gang.num_nodes
            if complete:
                del self._gangs[key]
                job.tasks.sort(key=lambda task: task[0].gang.node_index)  # type: ignore[union-attr]
        if complete:
            self._pool.submit(self._submit, job)
        return BatchJobHandle(self, job)

    def code_package(self, flow_file: str) -> tuple[CodePackage, str]:
        """The run's code package and its S3 address, built and uploaded on first use."""
        with self._lock:
            if self._package is None:
                package = CodePackage.build(flow_file, self.backends, used=[DISTRIBUTION])
                url = self.storage.location(package.store(self.storage))
                if not url or not url.startswith("s3://"):
                    raise ConfigError(f"AWS Batch tasks fetch their code from S3, and the datastore "
                                      f"{self.storage.describe()} is not on S3; use --datastore s3")
                self._package = (package, url)
            return self._package

    def _submit(self, job: _Job) -> None:
        spec = job.spec
        if job.stop_requested:
            self._finish(job, 1, "stopped before it was submitted")
            return
        batch = spec.resources.options_for(RESOURCES_KEY)
        try:
            package, url = self.code_package(spec.flow_file)
            shape = JobShape.from_resources(spec.resources, self.image, self.job_role)
            nodes = [self._container_command(task, package, url) for task, _ in job.tasks]
            if spec.gang is None:
                definition, (command, environment) = self.runner.job_definition(shape), nodes[0]
            else:
                definition = job.definition = self.runner.gang_definition(shape.node_properties(nodes))
                command = environment = None
            timeout = spec.resources.timeout_seconds
            job_id = self.runner.submit(
                job_name(spec.flow_name, spec.run_id, spec.step_name, spec.task_id), definition, command,
                environment, queue=batch.get("queue"),
                timeout_seconds=math.ceil(timeout) if timeout else None,
                tags={"flow:flow_name": spec.flow_name, "flow:run_id": spec.run_id,
                      "flow:step_name": spec.step_name, "flow:task_id": spec.task_id,
                      "flow:user": self.settings.user},
            )
        except FlowError as exc:
            self._finish(job, 1, str(exc))
            return
        except Exception as exc:  # a bug here must fail the task, never hang the run
            self._finish(job, 1, f"could not be submitted to AWS Batch ({type(exc).__name__}: {exc})")
            return
        with self._lock:
            job.job_id = job_id
            self._live[job_id] = job
            stop = job.stop_requested
        if spec.gang is None:
            job.events.output(spec, "stdout", f"Submitted as AWS Batch job {job_id}.")
        for index, (task, events) in enumerate(job.tasks if spec.gang else ()):
            events.output(task, "stdout", f"Submitted as node {index} of the {len(job.tasks)}-node AWS Batch job "
                                          f"{job_id}.")
        if stop:
            self._terminate(job)
        self._wake.set()

    def _container_command(self, spec: TaskSpec, package: CodePackage, url: str) -> tuple[list[str], dict[str, str]]:
        """The container's command line (the bootstrap, then the task: after building its
        environment, for a @pypi step) and environment."""
        return (container_command(package, url, *spec.remote_commands(package.flow_file)),
                container_environment(spec.environment, package, self.storage))

    def _terminate(self, job: _Job) -> None:
        with self._lock:
            job.stop_requested = True
            job_id = None if job.done else job.job_id
        if job_id is not None:
            try:
                self.runner.terminate(job_id, STOP_REASON)
            except FlowError as exc:
                job.events.output(job.spec, "stderr", f"Could not stop AWS Batch job {job_id}: {exc}")

    # -- watching -----------------------------------------------------------------------------

    def _watch(self) -> None:
        interval = MIN_POLL_SECONDS
        while not self._closed:
            self._wake.wait(interval)
            self._wake.clear()
            with self._lock:
                jobs = dict(self._live)
            if not jobs:
                interval = MIN_POLL_SECONDS
                continue
            try:
                described = self.runner.describe(list(jobs))
            except FlowError:
                interval = MAX_POLL_SECONDS  # Batch is unreachable for now; botocore has retried already
                continue
            changed = False
            for job_id, job in jobs.items():
                info = described.get(job_id)
                if info is not None:
                    changed |= self._update(job, info)
            interval = MIN_POLL_SECONDS if changed else min(MAX_POLL_SECONDS, interval * 1.5)

    def _update(self, job: _Job, info: dict[str, Any]) -> bool:
        status = info["status"]
        changed = status != job.status
        if changed:
            job.status = status
            if status not in TERMINAL:
                job.events.output(job.spec, "stdout", f"Task is starting (status {status})...")
        job.log_stream = (info.get("container") or {}).get("logStreamName") or job.log_stream
        if job.log_stream and (status == "RUNNING" or status in TERMINAL):
            self._pump_logs(job)
        if status == "SUCCEEDED":
            self._finish(job, 0)
        elif status == "FAILED":
            self._finish_failed(job, info)
        return changed

    def _pump_logs(self, job: _Job) -> None:
        try:
            lines, job.log_token = self.runner.log_events(job.log_stream, job.log_token)  # type: ignore[arg-type]
        except FlowError:
            return  # the task keeps its own copy of its output in the datastore
        for line in lines:
            job.events.output(job.spec, "stdout", line)

    def _finish_failed(self, job: _Job, info: dict[str, Any]) -> None:
        container = info.get("container") or {}
        exit_code = container.get("exitCode")
        explained = bool(info.get("statusReason") or container.get("reason"))
        why = failure_reason(info)
        if not job.stop_requested:
            job.events.output(job.spec, "stderr", f"AWS Batch job {job.job_id} failed: {why}")
        # Exit status 1 with nothing more from Batch is the task's own failure, whose exception
        # the runtime reads from the datastore; anything else (a timeout, a lost host, out of
        # memory) only Batch can explain.
        own_failure = exit_code == 1 or (exit_code is None and not explained)
        self._finish(job, exit_code or 1, None if own_failure else f"AWS Batch job {job.job_id} failed: {why}")

    def _finish(self, job: _Job, returncode: int, reason: str | None = None) -> None:
        with self._lock:
            if job.done:
                return
            job.done = True
            if job.job_id is not None:
                self._live.pop(job.job_id, None)
        for spec, events in job.tasks:
            events.finished(spec, returncode, reason)
        if job.definition is not None:
            try:
                self.runner.deregister(job.definition)
            except FlowError:
                pass  # an inactive leftover definition costs nothing

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._monitor.join(timeout=5)
