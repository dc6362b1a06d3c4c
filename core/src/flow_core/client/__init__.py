"""The Client API: every run's results from Python and notebooks, as Metaflow's client.

    from flow_core import Flow, namespace
    run = Flow("HelloFlow").latest_successful_run
    run.data.greeting
"""

from flow_core.client.code import FlowCode
from flow_core.client.exception import TaskException
from flow_core.client.namespace import default_namespace, get_metadata, get_namespace, namespace
from flow_core.client.objects import (
    DataArtifact,
    Flow,
    Metaflow,
    NamespaceMismatch,
    Run,
    Step,
    TaggingError,
    Task,
)
from flow_core.client.trigger import Trigger, TriggerEvent

__all__ = [
    "DataArtifact", "Flow", "FlowCode", "Metaflow", "NamespaceMismatch", "Run", "Step", "TaggingError", "Task",
    "TaskException", "Trigger", "TriggerEvent",
    "default_namespace", "get_metadata", "get_namespace", "namespace",
]
