"""Hook implementations of flow-secrets-aws."""

from flow_core.plugin_api import hookimpl


@hookimpl
def flow_step_decorators():
    from .decorator import secrets

    return [secrets]


@hookimpl
def flow_settings():
    from .decorator import SETTINGS

    return list(SETTINGS)
