"""The core's own plugin: its local backends, decorators, card types and settings, registered through the public hooks."""

from __future__ import annotations

from flow_core.model.cards.card_types import BUILTIN_CARD_TYPES
from flow_core.plugin.builtin_decorators import BUILTIN_FLOW_DECORATORS, BUILTIN_STEP_DECORATORS
from flow_core.plugin.descriptor import Backend
from flow_core.plugin.hookspecs import hookimpl
from flow_core.plugin.settings import CORE_SETTINGS


@hookimpl
def flow_storage_backends():
    return [Backend("local", "flow_core.backends.local_storage:LocalStorage", "a folder on this machine")]


@hookimpl
def flow_compute_backends():
    return [
        Backend("local", "flow_core.engine.local_compute:LocalCompute",
                "a process per task on this machine, forked from a warm process"),
        Backend("subprocess", "flow_core.backends.subprocess_compute:SubprocessCompute",
                "a new interpreter per task running the task command line, as remote compute does"),
    ]


@hookimpl
def flow_metadata_backends():
    return [Backend("local", "flow_core.backends.local_metadata:LocalMetadata", "SQLite under the local root")]


@hookimpl
def flow_scheduler_backends():
    return [Backend("local", "flow_core.backends.local_scheduler:LocalScheduler", "background runs on this machine")]


@hookimpl
def flow_environment_backends():
    return [Backend("local", "flow_core.backends.environment:LocalEnvironment",
                    "every task runs with the runtime's own Python")]


@hookimpl
def flow_step_decorators():
    return list(BUILTIN_STEP_DECORATORS)


@hookimpl
def flow_flow_decorators():
    return list(BUILTIN_FLOW_DECORATORS)


@hookimpl
def flow_card_types():
    return list(BUILTIN_CARD_TYPES)


@hookimpl
def flow_settings():
    return list(CORE_SETTINGS)
