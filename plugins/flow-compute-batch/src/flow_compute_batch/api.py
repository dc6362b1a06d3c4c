"""What other plugins may use of flow-compute-batch.

flow-sched-sfn builds each step's job definition from the same parts as ``--compute batch``:
the job's shape from the step's resources, the bootstrap that fetches the code package, and the
task's environment. Anything not named here is this plugin's own and may change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Mapping

from flow_core.plugin_api import CodePackage, Settings, StorageBackend

from . import bootstrap
from .aws_calls import aws_clients, call_aws
from .job_definition import JobShape, fixed_definition
from .jobs import BatchError, BatchJobRunner, job_name

__all__ = ["BatchError", "BatchJobRunner", "JobShape", "aws_clients", "call_aws", "container_command",
           "container_environment", "default_image", "fixed_definition", "job_name", "job_queue"]

BOOTSTRAP_SOURCE = Path(bootstrap.__file__).read_text()


def container_command(package: CodePackage, url: str, *task_commands: list[str],
                      job_environment: Mapping[str, str] | None = None) -> list[str]:
    """The job's command: the bootstrap (fetch ``package`` from ``url``, check it, unpack it),
    then each task command line in turn (they are given the package's paths).
    ``job_environment`` sets variables for the tasks from whole arguments, which may be
    ``Ref::`` placeholders a submission fills in."""
    words = ["python3", "-c", BOOTSTRAP_SOURCE, url, package.sha256, json.dumps(package.requirements)]
    for name, value in (job_environment or {}).items():
        words += ["--env", name, value]
    words.append("--")
    for index, command in enumerate(task_commands):
        words += (["&&"] if index else []) + list(command)
    return words


def container_environment(environment: Mapping[str, str], package: CodePackage,
                          storage: StorageBackend) -> dict[str, str]:
    """A task's environment in its container: its own, and the package it runs from."""
    return {**environment, **package.task_environment(storage), "PYTHONUNBUFFERED": "1"}


def default_image(settings: Settings) -> str:
    """METAFLOW_BATCH_CONTAINER_IMAGE, else the official Python image of this Python's version."""
    return settings.get("METAFLOW_BATCH_CONTAINER_IMAGE") or f"python:{sys.version_info[0]}.{sys.version_info[1]}"


def job_queue(settings: Settings) -> str:
    return settings.require("METAFLOW_BATCH_JOB_QUEUE", "set it to the AWS Batch job queue tasks run in")
