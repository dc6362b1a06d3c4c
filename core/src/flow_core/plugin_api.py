"""Everything a plugin may import from Flow, in one place.

Plugins import from here (and from `flow_core.hookspecs` for the hook reference), never
from Flow's other modules: what is exported here is the stable plugin API; the rest may
change between releases.
"""

from .backend import Backend
from .code_package import CodePackage
from .compute.base import ComputeBackend, TaskEvents, TaskHandle, TaskSpec
from .decorators import DecoratorError, FlowDecorator, StepDecorator
from .errors import (
    BlobNotFound,
    ConfigError,
    DataStoreError,
    FlowError,
    MetadataError,
    PluginError,
)
from .hookspecs import hookimpl
from .plugins import configured_backend
from .metadata.base import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    ArtifactRecord,
    FlowRecord,
    MetadataBackend,
    MetadataField,
    RunRecord,
    StepRecord,
    TaskRecord,
)
from .scheduler.base import Deployment, DeployRequest, SchedulerBackend, new_production_token
from .settings import Setting, Settings
from .storage.base import Blob, StorageBackend

__all__ = [
    "ArtifactRecord",
    "Backend",
    "Blob",
    "BlobNotFound",
    "CodePackage",
    "configured_backend",
    "ComputeBackend",
    "ConfigError",
    "DataStoreError",
    "DecoratorError",
    "Deployment",
    "DeployRequest",
    "FAILED",
    "FlowDecorator",
    "FlowError",
    "FlowRecord",
    "hookimpl",
    "MetadataBackend",
    "MetadataError",
    "MetadataField",
    "new_production_token",
    "PluginError",
    "RUNNING",
    "RunRecord",
    "SchedulerBackend",
    "Setting",
    "Settings",
    "StepDecorator",
    "StepRecord",
    "StorageBackend",
    "SUCCEEDED",
    "TaskEvents",
    "TaskHandle",
    "TaskRecord",
    "TaskSpec",
]
