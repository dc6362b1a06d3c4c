"""Hook implementations of flow-sched-sfn."""

from flow_core.plugin_api import Setting, hookimpl


@hookimpl
def flow_settings():
    return [
        Setting("METAFLOW_SFN_IAM_ROLE", None, "IAM role the state machine runs as"),
        Setting("METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE", None, "IAM role EventBridge schedules start executions with"),
        Setting("METAFLOW_SFN_DYNAMO_DB_TABLE", None, "DynamoDB table that tracks foreach joins"),
    ]
