"""Hook implementations of flow-sched-sfn."""

from flow_core.plugin_api import Backend, Setting, hookimpl


@hookimpl
def flow_scheduler_backends():
    return [Backend("step-functions", "flow_sched_sfn.scheduler:StepFunctionsScheduler",
                    "production runs on AWS Step Functions, their steps on AWS Batch")]


@hookimpl
def flow_flow_commands():
    from .cli import step_functions

    return [step_functions]


@hookimpl
def flow_step_decorators():
    from .internal_decorator import StepFunctionsInternal

    return [StepFunctionsInternal]


@hookimpl
def flow_settings():
    return [
        Setting("METAFLOW_SFN_IAM_ROLE", None, "IAM role the state machine runs as"),
        Setting("METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE", None, "IAM role EventBridge schedules start executions with"),
        Setting("METAFLOW_SFN_INLINE_MAP_MAX", None,
                "foreach width past which a deployed flow uses a Distributed Map (default 40, at most 1000)"),
    ]
