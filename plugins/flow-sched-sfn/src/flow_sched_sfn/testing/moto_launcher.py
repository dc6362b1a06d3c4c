"""``python -m flow_sched_sfn.testing.moto_launcher [--s3-endpoint-url URL] [--without PATCH] -- <moto.server args>``

Test-only: patches moto's Step Functions interpreter (``moto.stepfunctions.parser``) inside
the server's own process, then runs ``moto.server``. `moto_sfn` explains each patch and why;
`MotoSfnServer` is what starts this. Nothing here is imported by Flow outside tests.

The real S3 server's key pair comes from the environment: ``FLOW_MOTO_S3_ACCESS_KEY_ID`` and
``FLOW_MOTO_S3_SECRET_ACCESS_KEY`` (else botocore's usual chain, which in the server's process
finds moto's own dummy pair).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

PATCHES = ("batch-parameters", "sync-retry", "s3-datastore")
S3_KEY_ID_VARIABLE = "FLOW_MOTO_S3_ACCESS_KEY_ID"
S3_SECRET_VARIABLE = "FLOW_MOTO_S3_SECRET_ACCESS_KEY"

_SERVICE = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service"


def patch_batch_parameters() -> None:
    """(a) Batch's Task states speak the API's member names, through botocore's service model.

    moto's ``StateTaskService._normalise_parameters`` and ``_normalise_response`` are empty
    (the LocalStack code it comes from fills them from the service catalog), so a
    ``batch:submitJob`` state sent ``JobName``, ``ContainerOverrides``... as they are written in
    the state, where Batch's API reads ``jobName``, ``containerOverrides``; and the ``.sync`` wait
    then read ``JobId`` from a response that has ``jobId``. Here both methods of the Batch
    integration use moto's own generic converters (``_to_boto_request``/``_from_boto_response``,
    which walk the shapes recursively) with the operation's input and output shapes."""
    from botocore import xform_name
    from botocore.session import get_session
    from importlib import import_module

    batch_task = import_module(f"{_SERVICE}.state_task_service_batch").StateTaskServiceBatch
    service_model = get_session().get_service_model("batch")
    operation_names = {xform_name(name): name for name in service_model.operation_names}

    def operation_model(task: Any, service_action_name: str | None) -> Any:
        return service_model.operation_model(operation_names[task._get_boto_service_action(service_action_name)])

    def normalise_parameters(self: Any, parameters: dict, boto_service_name: str | None = None,
                             service_action_name: str | None = None) -> None:
        shape = operation_model(self, service_action_name).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)

    def normalise_response(self: Any, response: Any, boto_service_name: str | None = None,
                           service_action_name: str | None = None) -> None:
        shape = operation_model(self, service_action_name).output_shape
        if shape is not None:
            self._from_boto_response(response, shape)

    batch_task._normalise_parameters = normalise_parameters
    batch_task._normalise_response = normalise_response


def patch_sync_retry() -> None:
    """(b) A retried attempt of a ``.sync`` Task waits for its own job again.

    A Task state whose integration supports ``.waitForTaskToken`` (Batch does) gets one task
    token per state, in ``StateTaskServiceCallback._eval_body``, and every attempt's wait, even a
    ``.sync`` one, also listens on that token's ``CallbackEndpoint``. Each attempt ends by
    calling ``interrupt_all()`` on the endpoint, which sets its event for good; the Retry loop
    (``ExecutionState._eval_state``) then runs the next attempt with the same token, whose wait
    returns at once with no outcome, read as ``CallbackOutcomeTimedOut``: States.Timeout
    whatever the job does. Here an attempt starting on an endpoint that an earlier attempt has
    already interrupted gets a fresh endpoint under the same token."""
    from importlib import import_module

    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    callback_task = import_module(f"{_SERVICE}.state_task_service_callback").StateTaskServiceCallback
    original = callback_task._eval_integration_pattern

    def eval_integration_pattern(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        task = env.states.context_object.context_object_data.get("Task") or {}
        token = task.get("Token")
        pool = env.callback_pool_manager
        endpoint = pool.get(token) if token else None
        if endpoint is not None and endpoint._notify_event.is_set():
            pool._pool[token] = CallbackEndpoint(callback_id=token)
        return original(self, env, *args, **kwargs)

    callback_task._eval_integration_pattern = eval_integration_pattern


def real_s3_client(region: str, endpoint_url: str) -> Any:
    """An S3 client for the real S3 server, with the key pair from the environment; a
    ``GetObject`` response's ``Body`` arrives as text (see `patch_s3_datastore`)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id=os.environ.get(S3_KEY_ID_VARIABLE),
                                    aws_secret_access_key=os.environ.get(S3_SECRET_VARIABLE), region_name=region)
    client = session.client("s3", endpoint_url=endpoint_url,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    return client


def _read_body(parsed: dict | None = None, **_: Any) -> None:
    body = (parsed or {}).get("Body")
    if body is not None and hasattr(body, "read"):
        parsed["Body"] = body.read().decode("utf-8", errors="replace")


def patch_s3_datastore(endpoint_url: str) -> None:
    """(c) S3 calls made by a state machine go to the real S3 server at ``endpoint_url``.

    moto's interpreter makes every service call through ``boto_client_for``
    (``moto.stepfunctions.parser.asl.utils.boto_client``), a boto3 client pointed back at moto
    itself, so ``aws-sdk:s3:getObject`` and a Distributed Map's ``ItemReader`` read moto's own
    S3, not the datastore. Two call sites are replaced and nothing else: the ``boto_client_for``
    name in the aws-sdk integration's module (for service ``s3`` only) and the Distributed
    Map's ``ResourceEvalS3._get_s3_client`` (its ItemReader, and its ResultWriter's manifest,
    the one write). The aws-sdk integration also left a
    ``GetObject`` response's ``Body`` a botocore ``StreamingBody`` object (it normalises no
    aws-sdk response); AWS returns the object's text, so this client turns it into text after
    each ``GetObject``."""
    from importlib import import_module

    aws_sdk = import_module(f"{_SERVICE}.state_task_service_aws_sdk")
    item_reader = import_module(
        "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3")
    result_writer = import_module(
        "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3")
    moto_client_for: Callable[..., Any] = aws_sdk.boto_client_for

    def aws_sdk_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if service != "s3":
            return moto_client_for(region=region, service=service, state_credentials=state_credentials)
        client = real_s3_client(region, endpoint_url)
        client.meta.events.register("after-call.s3.GetObject", _read_body)
        return client

    def item_reader_client(resource_runtime_part: Any, state_credentials: Any) -> Any:
        return real_s3_client(resource_runtime_part.region, endpoint_url)

    aws_sdk.boto_client_for = aws_sdk_client_for
    item_reader.ResourceEvalS3._get_s3_client = staticmethod(item_reader_client)
    result_writer.ResourceEvalS3._get_s3_client = staticmethod(item_reader_client)


def apply(patches: Sequence[str], s3_endpoint_url: str | None) -> None:
    if "batch-parameters" in patches:
        patch_batch_parameters()
    if "sync-retry" in patches:
        patch_sync_retry()
    if "s3-datastore" in patches and s3_endpoint_url:
        patch_s3_datastore(s3_endpoint_url)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="moto_launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--s3-endpoint-url", help="the real S3 server the state machines read from")
    parser.add_argument("--without", action="append", default=[], choices=PATCHES,
                        help="leave this patch out (to see stock moto's behaviour)")
    args, moto_args = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    apply([name for name in PATCHES if name not in args.without], args.s3_endpoint_url)
    from moto.server import main as moto_main

    moto_main([arg for arg in moto_args if arg != "--"])


if __name__ == "__main__":
    main()
