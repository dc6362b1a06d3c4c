"""The core's own plugin: its local backends and settings, registered through the public hooks."""

from __future__ import annotations

from .backend import Backend
from .hookspecs import hookimpl
from .settings import CORE_SETTINGS


@hookimpl
def flow_storage_backends():
    return [Backend("local", "flow_core.storage.local:LocalStorage", "a folder on this machine")]


@hookimpl
def flow_compute_backends():
    return [
        Backend("local", "flow_core.compute.local:LocalCompute",
                "a process per task on this machine, forked from a warm process"),
        Backend("subprocess", "flow_core.compute.process:SubprocessCompute",
                "a new interpreter per task running the task command line, as remote compute does"),
    ]


@hookimpl
def flow_metadata_backends():
    return [Backend("local", "flow_core.metadata.local:LocalMetadata", "SQLite under the local root")]


@hookimpl
def flow_scheduler_backends():
    return [Backend("local", "flow_core.scheduler.local:LocalScheduler", "background runs on this machine")]


@hookimpl
def flow_step_decorators():
    from .builtin_decorators import BUILTIN_STEP_DECORATORS

    return list(BUILTIN_STEP_DECORATORS)


@hookimpl
def flow_settings():
    return list(CORE_SETTINGS)
