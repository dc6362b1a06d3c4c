"""Hook implementations of flow-env. Nothing heavy is imported here: a task loads this
plugin in every process, environment or not."""

from flow_core.plugin_api import Backend, Setting, hookimpl


@hookimpl
def flow_environment_backends():
    return [
        Backend("pypi", "flow_env.environment:PypiEnvironment", "@pypi and @conda steps, resolved with uv"),
        Backend("conda", "flow_env.environment:CondaEnvironment", "@pypi and @conda steps, conda solved with rattler"),
    ]


@hookimpl
def flow_step_decorators():
    from .decorators import conda, pypi

    return [pypi, conda]


@hookimpl
def flow_flow_decorators():
    from .decorators import conda_base, pypi_base

    return [pypi_base, conda_base]


@hookimpl
def flow_flow_commands():
    from .cli import environment

    return [environment]


@hookimpl
def flow_settings():
    return [
        Setting("METAFLOW_ENVIRONMENT_CACHE", None,
                "where built @pypi/@conda environments are kept (default ~/.cache/flow/environments)"),
        Setting("METAFLOW_CONDA_CHANNELS", None, "conda channels @conda solves against, comma-separated"),
    ]
