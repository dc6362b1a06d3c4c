"""Everything a plugin may import from Flow, in one place.

Plugins import from here (and from `flow_core.plugin.hookspecs` for the hook reference), never
from Flow's other modules: what is exported here is the stable plugin API; the rest may
change between releases.
"""

from typing import TYPE_CHECKING

from flow_core.backends.compute import ComputeBackend, Resources, TaskEvents, TaskHandle, TaskSpec
from flow_core.backends.environment import EnvironmentBackend, EnvironmentRequest, Interpreter, StepRequest
from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.records import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    ArtifactRecord,
    AttemptRecord,
    FlowRecord,
    MetadataField,
    RunRecord,
    StepRecord,
    TaskRecord,
    attempts_from_fields,
    close_superseded,
)
from flow_core.backends.scheduler import Deployment, DeployRequest, SchedulerBackend, new_production_token
from flow_core.backends.selection import Backends
from flow_core.backends.storage import Blob, StorageBackend
from flow_core.errors import (
    BlobNotFound,
    ConfigError,
    DataStoreError,
    FlowError,
    MetadataError,
    NotFound,
    PluginError,
)
from flow_core.model.cards.card_class import CardTask, MetaflowCard
from flow_core.model.decorators import DecoratorError, FlowDecorator, StepDecorator
from flow_core.model.parallel import Gang
from flow_core.model.task_context import TaskContext
from flow_core.plugin.descriptor import Backend
from flow_core.plugin.hookspecs import hookimpl
from flow_core.plugin.settings import Setting, Settings

if TYPE_CHECKING:
    from flow_core.cli.deploy_commands import deploy_request, deployed_name, environment_request, given_parameters
    from flow_core.cli.state import CliState, FlowTarget, flow_options
    from flow_core.engine.code_package import CodePackage
    from flow_core.engine.run_start import task_environment

#: Names for plugins' commands and remote computes, imported on first use: every process that
#: loads plugins imports this module, and most never deploy a flow or build a code package.
_LAZY = {
    "CliState": "flow_core.cli.state",
    "FlowTarget": "flow_core.cli.state",
    "flow_options": "flow_core.cli.state",
    "deploy_request": "flow_core.cli.deploy_commands",
    "deployed_name": "flow_core.cli.deploy_commands",
    "environment_request": "flow_core.cli.deploy_commands",
    "given_parameters": "flow_core.cli.deploy_commands",
    "CodePackage": "flow_core.engine.code_package",
    "task_environment": "flow_core.engine.run_start",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'flow_core.plugin_api' has no attribute {name!r}")


__all__ = [
    "ArtifactRecord",
    "AttemptRecord",
    "Backend",
    "Backends",
    "Blob",
    "BlobNotFound",
    "CardTask",
    "CliState",
    "CodePackage",
    "ComputeBackend",
    "ConfigError",
    "DataStoreError",
    "DecoratorError",
    "Deployment",
    "DeployRequest",
    "EnvironmentBackend",
    "EnvironmentRequest",
    "environment_request",
    "deploy_request",
    "deployed_name",
    "FAILED",
    "FlowDecorator",
    "FlowError",
    "FlowRecord",
    "FlowTarget",
    "flow_options",
    "given_parameters",
    "Gang",
    "hookimpl",
    "Interpreter",
    "MetadataBackend",
    "MetaflowCard",
    "MetadataError",
    "MetadataField",
    "new_production_token",
    "NotFound",
    "PluginError",
    "RUNNING",
    "Resources",
    "RunRecord",
    "SchedulerBackend",
    "Setting",
    "Settings",
    "StepDecorator",
    "StepRequest",
    "StepRecord",
    "StorageBackend",
    "SUCCEEDED",
    "TaskContext",
    "TaskEvents",
    "TaskHandle",
    "TaskRecord",
    "attempts_from_fields",
    "close_superseded",
    "TaskSpec",
    "task_environment",
]
