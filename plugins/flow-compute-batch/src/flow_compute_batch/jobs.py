"""`BatchJobRunner`: the AWS Batch and CloudWatch Logs calls a run makes, in plain terms.

Every AWS failure leaves here as a `FlowError` with one sentence saying what went wrong and
what to do; botocore already retries throttling and transient errors with back-off.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Mapping

from botocore.exceptions import BotoCoreError, ClientError
from flow_core.plugin_api import FlowError

from .aws_calls import aws_clients, call_aws
from .job_definition import JobShape, gang_definition_name

#: Where Batch sends a job's output unless its job definition says otherwise.
LOG_GROUP = "/aws/batch/job"
TERMINAL = ("SUCCEEDED", "FAILED")
#: describe_jobs takes at most this many ids.
DESCRIBE_BATCH = 100
_JOB_NAME = re.compile(r"[^A-Za-z0-9_-]")


class BatchError(FlowError):
    """AWS Batch or CloudWatch Logs refused a call."""


def job_name(flow_name: str, run_id: str, step_name: str, task_id: str) -> str:
    """``Flow-run-step-task``, made to fit Batch's rules (128 of letters, digits, - and _)."""
    return _JOB_NAME.sub("_", f"{flow_name}-{run_id}-{step_name}-{task_id}")[:128]


class BatchJobRunner:
    """Registers job definitions, submits, describes and terminates jobs, reads their logs."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.batch, self.logs = aws_clients("AWS Batch", "batch", "logs", max_pool_connections=32)
        self._definitions: dict[str, str] = {}
        self._lock = threading.Lock()

    def _call(self, what: str, method: Any, **kwargs: Any) -> Any:
        return call_aws(what, BatchError, method, **kwargs)

    # -- job definitions --------------------------------------------------------------------

    def job_definition(self, shape: JobShape) -> str:
        """The ARN of the active job definition for ``shape``, registered on first use."""
        return self._active_definition(shape.definition_name, "container",
                                       containerProperties=shape.container_properties())

    def _active_definition(self, name: str, kind: str, **content: Any) -> str:
        """The ARN of the active definition ``name``, registered with ``content`` unless it exists
        (a name carries its content's digest, so an existing one holds the same)."""
        with self._lock:
            if name in self._definitions:
                return self._definitions[name]
            found = self._call("look up job definitions", self.batch.describe_job_definitions,
                               jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
            if found:
                arn = max(found, key=lambda d: d["revision"])["jobDefinitionArn"]
            else:
                arn = self._call("register a job definition", self.batch.register_job_definition,
                                 jobDefinitionName=name, type=kind, tags={"created-by": "flow"},
                                 **content)["jobDefinitionArn"]
            self._definitions[name] = arn
            return arn

    def fixed_definition(self, name: str, container_properties: Mapping[str, Any]) -> str:
        """The ARN of the job definition ``name`` (see `fixed_definition`), registered on first use."""
        return self._active_definition(name, "container", containerProperties=dict(container_properties))

    def gang_definition(self, node_properties: Mapping[str, Any]) -> str:
        """Register a multi-node job definition for one @parallel gang; its ARN."""
        name = gang_definition_name(node_properties)
        return self._call("register a multi-node job definition", self.batch.register_job_definition,
                          jobDefinitionName=name, type="multinode", nodeProperties=dict(node_properties),
                          tags={"created-by": "flow"})["jobDefinitionArn"]

    def deregister(self, definition: str) -> None:
        self._call(f"deregister job definition {definition}", self.batch.deregister_job_definition,
                   jobDefinition=definition)

    # -- jobs -------------------------------------------------------------------------------

    def submit(self, name: str, definition: str, command: list[str] | None = None,
               environment: Mapping[str, str] | None = None, queue: str | None = None,
               timeout_seconds: int | None = None, tags: Mapping[str, str] | None = None) -> str:
        """Submit a job; a multi-node job's definition already holds its commands (no overrides)."""
        request: dict[str, Any] = {"jobName": name, "jobQueue": queue or self.queue, "jobDefinition": definition}
        if command is not None:
            request["containerOverrides"] = {
                "command": command,
                "environment": [{"name": k, "value": str(v)} for k, v in sorted((environment or {}).items())],
            }
        if timeout_seconds:
            request["timeout"] = {"attemptDurationSeconds": max(60, int(timeout_seconds))}  # Batch's minimum
        if tags:
            request["tags"] = dict(tags)
        return self._call(f"submit job {name} to queue {request['jobQueue']}", self.batch.submit_job,
                          **request)["jobId"]

    def describe(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        described: dict[str, dict[str, Any]] = {}
        for start in range(0, len(job_ids), DESCRIBE_BATCH):
            batch = job_ids[start:start + DESCRIBE_BATCH]
            for job in self._call("describe jobs", self.batch.describe_jobs, jobs=batch)["jobs"]:
                described[job["jobId"]] = job
        return described

    def terminate(self, job_id: str, reason: str) -> None:
        self._call(f"terminate job {job_id}", self.batch.terminate_job, jobId=job_id, reason=reason)

    def log_events(self, stream: str, token: str | None) -> tuple[list[str], str | None]:
        """New lines of a job's log stream after ``token``, and the token to continue from.
        A stream Batch has not created yet has no lines."""
        lines: list[str] = []
        while True:
            kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            try:
                page = self.logs.get_log_events(**kwargs)
            except self.logs.exceptions.ResourceNotFoundException:
                return lines, token
            except (ClientError, BotoCoreError) as exc:
                raise BatchError(f"could not read the log stream {stream}: {exc}") from None
            lines.extend(event["message"] for event in page.get("events", ()))
            following = page.get("nextForwardToken")
            if following == token or not page.get("events"):
                return lines, following
            token = following


def failure_reason(job: Mapping[str, Any]) -> str:
    """Why Batch says a job failed, with the container's exit code when it has one."""
    container = job.get("container") or {}
    parts = [job.get("statusReason"), container.get("reason")]
    text = "; ".join(p for p in parts if p) or "Batch gave no reason"
    code = container.get("exitCode")
    return f"{text} (exit code {code})" if code is not None else text

