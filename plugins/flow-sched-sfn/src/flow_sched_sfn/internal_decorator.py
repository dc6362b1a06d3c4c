"""The decorator every task of a deployed flow runs with (its job definition adds ``--with``).

Each task records the execution it belongs to, under Metaflow's metadata names, so that a run
leads back to its execution. A state machine cannot read a task's artifacts, so a foreach
step's task also writes how many splits it made to two small S3 objects the next states read
(see the README's Foreach): the count, and the list of indices for a Distributed Map's
ItemReader.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flow_core import current
from flow_core.plugin_api import StepDecorator

from .foreach_objects import foreach_object_keys

INTERNAL_DECORATOR = "step_functions_internal"
#: The execution's ARN, which the job's bootstrap sets from the state's Batch parameter.
EXECUTION_VARIABLE = "FLOW_SFN_EXECUTION"
#: Task ids are ``sfn`` and the foreach position (the README's "stack").
TASK_ID_PREFIX = "sfn"


class StepFunctionsInternal(StepDecorator):
    """Not for flows to use: added to every task of a flow deployed to Step Functions."""

    name = INTERNAL_DECORATOR

    def task_metadata(self) -> dict[str, str]:
        execution = os.environ.get(EXECUTION_VARIABLE)
        if not execution:
            return {}
        # arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME -> the state machine's ARN
        prefix, _, rest = execution.partition(":execution:")
        machine = rest.rsplit(":", 1)[0]
        return {"aws-step-functions-execution": execution,
                "aws-step-functions-state-machine": f"{prefix}:stateMachine:{machine}"}

    def task_post_step(self, ctx: Any) -> None:
        node = ctx.graph[ctx.step_name]
        if node.type != "foreach":
            return
        try:
            count = len(getattr(ctx.flow, node.foreach_param))
        except (AttributeError, TypeError):
            return  # the task reports a foreach over nothing sized itself, in its own words
        stack = str(current.task_id)[len(TASK_ID_PREFIX):]
        root = os.environ["METAFLOW_DATASTORE_SYSROOT_S3"]
        where = foreach_object_keys(root, current.flow_name, current.run_id, ctx.step_name, stack)
        client = _s3_client()
        client.put_object(Bucket=where.bucket, Key=where.items_key, Body=json.dumps(list(range(count))).encode())
        client.put_object(Bucket=where.bucket, Key=where.count_key, Body=json.dumps({"count": count}).encode())


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("METAFLOW_S3_ENDPOINT_URL") or None)
