"""Hook implementations of flow-compute-batch."""

from flow_core.plugin_api import Backend, Setting, hookimpl


@hookimpl
def flow_compute_backends():
    return [Backend("batch", "flow_compute_batch.compute:BatchCompute", "a job per task on AWS Batch")]


@hookimpl
def flow_step_decorators():
    from .decorator import batch

    return [batch]


@hookimpl
def flow_settings():
    return [
        Setting("METAFLOW_BATCH_JOB_QUEUE", None, "AWS Batch job queue steps are submitted to"),
        Setting("METAFLOW_BATCH_CONTAINER_IMAGE", None,
                "container image Batch jobs run in (default: python:<this Python's version>)"),
        Setting("METAFLOW_ECS_S3_ACCESS_IAM_ROLE", None, "IAM role Batch jobs assume to reach S3"),
    ]
