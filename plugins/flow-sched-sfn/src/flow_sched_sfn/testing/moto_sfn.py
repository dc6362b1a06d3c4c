"""moto in server mode running Step Functions state machines, for tests only.

`MotoSfnServer` is flow-compute-batch's `MotoServer` (Batch, CloudWatch Logs, IAM, reached over
HTTP with boto3 exactly as AWS would be; Batch in no-container mode or running containers)
with Step Functions executing state machines: the server is started through
`flow_sched_sfn.testing.moto_launcher`, which patches moto 5.2.5's interpreter
(``moto.stepfunctions.parser``) in the server's process before handing over to
``moto.server``, and ``{"stepfunctions": {"execute_state_machine": true}}`` is posted to
``/moto-api/config`` once it answers. It binds 127.0.0.1 on a free port and stops like every
`ChildServer`::

    with SeaweedS3(tmp_path / "s3") as s3, MotoSfnServer(tmp_path / "moto.log", s3.endpoint_url) as moto:
        env = moto.client_environment()   # AWS_ENDPOINT_URL_SFN, _BATCH, ... -> moto

The patches are test-only: they make moto do what AWS does for the constructs Flow's compiler
emits, and nothing in Flow runs them outside tests. Each can be left out
(``without=("sync-retry",)``) to see stock moto's behaviour.

``batch-parameters`` (a)
    ``batch:submitJob`` / ``batch:submitJob.sync`` states send their Parameters in the Batch
    API's member names. Stock moto passes the state's PascalCase names (``JobName``,
    ``JobQueue``, ``ContainerOverrides.Environment[].Name``...) to Batch unchanged, because
    ``StateTaskService._normalise_parameters``/``_normalise_response`` are empty in moto (they
    are filled in LocalStack, where the interpreter comes from): Batch fails with KeyError
    'JobName', and the ``.sync`` wait would then look for ``JobId`` in a response holding
    ``jobId``. The patch gives the Batch integration both methods, built on moto's own generic
    shape walkers with the operation's input/output shape from botocore's service model, so
    every member, nested ones included, converts (no hand-kept list); the ``.sync`` output
    is then PascalCase, as on AWS (``$.JobName``, ``$.Status``...).

``sync-retry`` (b)
    A retried attempt of a ``.sync`` Task waits for its own job. In stock moto, every attempt
    of a Task state listens on the state's single task-token ``CallbackEndpoint`` (created
    once per state in ``StateTaskServiceCallback._eval_body``, Batch supporting
    ``.waitForTaskToken``); each attempt ends with ``interrupt_all()`` on it, so the next
    attempt's wait returns at once with no outcome, taken as ``CallbackOutcomeTimedOut``: the
    attempt fails with States.Timeout whatever its job does. The patch hands an attempt that
    finds its endpoint already interrupted a fresh endpoint under the same token
    (``StateTaskServiceCallback._eval_integration_pattern``).

``s3-datastore`` (c)
    S3 calls made by a state machine go to a real S3 server (SeaweedFS in tests: the datastore
    lives there, not in moto's S3), with the key pair given to `MotoSfnServer` (by default the
    caller's ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` when the server starts). Stock
    moto makes every call of a state machine through ``boto_client_for``, a client pointed
    back at moto itself. Only three call sites change: the ``aws-sdk`` integration's client for
    service ``s3`` (``arn:aws:states:::aws-sdk:s3:getObject``), a Distributed Map's
    ``ItemReader`` (``arn:aws:states:::s3:getObject``) and its ``ResultWriter`` (the manifest
    it writes; moto writes no result files). The aws-sdk ``GetObject`` response's
    ``Body`` also becomes the object's text, as on AWS (stock moto does not normalise aws-sdk
    responses and leaves a botocore ``StreamingBody`` object there), so
    ``States.StringToJson($.Body)`` works.

What still differs from AWS on moto, with these patches (the compiler works around it or the
tests leave it alone): a multi-key ``OutputPath`` returns a list (use ``ResultSelector``);
``$[0].x`` returns a list; JSONata variables are missing; ``$$.Execution.Name`` inside a
Distributed Map's child execution is the parent's; ``ResultWriter`` manifests are empty;
Batch's ``RetryStrategy`` and ``AWS_BATCH_JOB_ATTEMPT`` are absent; EventBridge rules are
stored but never fire.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from flow_compute_batch.testing import MotoServer

from flow_sched_sfn.testing.moto_launcher import PATCHES, S3_KEY_ID_VARIABLE, S3_SECRET_VARIABLE

__all__ = ["PATCHES", "MotoSfnServer", "wait_for_execution"]

#: An execution's status while it has not ended.
RUNNING = "RUNNING"


class MotoSfnServer(MotoServer):
    """moto with Step Functions executing state machines, patched as the module says.

    ``s3_endpoint_url`` is the real S3 server the state machines read from (without it, their
    S3 reads stay on moto's S3); ``s3_credentials`` its key pair, by default the caller's
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` at start. ``without`` names patches to
    leave out. ``docker_host`` and ``fail_jobs`` are `MotoServer`'s."""

    name = "moto server (Step Functions)"

    def __init__(self, log_file: Path, s3_endpoint_url: str | None = None, *,
                 s3_credentials: tuple[str, str] | None = None, without: tuple[str, ...] = (),
                 docker_host: str | None = None, fail_jobs: bool = False):
        super().__init__(log_file, docker_host=docker_host, fail_jobs=fail_jobs)
        unknown = set(without) - set(PATCHES)
        if unknown:
            raise ValueError(f"unknown moto patches {sorted(unknown)}; the patches are {', '.join(PATCHES)}")
        self.s3_endpoint_url = s3_endpoint_url
        self.s3_credentials = s3_credentials
        self.without = tuple(without)

    def launch_command(self) -> list[str]:
        command = [sys.executable, "-m", "flow_sched_sfn.testing.moto_launcher"]
        if self.s3_endpoint_url:
            command += ["--s3-endpoint-url", self.s3_endpoint_url]
        for patch in self.without:
            command += ["--without", patch]
        return [*command, "--"]

    def launch_environment(self) -> dict[str, str]:
        key_id, secret = self.s3_credentials or (os.environ.get("AWS_ACCESS_KEY_ID"),
                                                 os.environ.get("AWS_SECRET_ACCESS_KEY"))
        env = {}
        if key_id and secret:
            env[S3_KEY_ID_VARIABLE], env[S3_SECRET_VARIABLE] = key_id, secret
        return env

    def start(self, timeout: float = 60.0) -> MotoSfnServer:
        super().start(timeout)
        try:
            self.enable_execution()
        except Exception:
            self.stop()
            raise
        return self

    def enable_execution(self) -> None:
        """Make state machines run (moto only stores them by default)."""
        self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})

    def client_environment(self) -> dict[str, str]:
        """`MotoServer`'s, plus Step Functions (boto3's service id ``SFN``)."""
        return {**super().client_environment(), "AWS_ENDPOINT_URL_SFN": self.endpoint_url}


def wait_for_execution(sfn: Any, execution_arn: str, timeout: float = 60.0, interval: float = 0.2) -> dict:
    """``describe_execution`` once the execution has ended; AssertionError if it does not
    end within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != RUNNING:
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {execution_arn} still RUNNING after {timeout:.0f}s")
        time.sleep(interval)
