"""The Client API: every run's results from Python and notebooks, as Metaflow's client.

    from flow_core import Flow, namespace
    run = Flow("HelloFlow").latest_successful_run
    run.data.greeting
"""

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

__all__ = [
    "DataArtifact", "Flow", "Metaflow", "NamespaceMismatch", "Run", "Step", "TaggingError", "Task",
    "default_namespace", "get_metadata", "get_namespace", "namespace",
]
