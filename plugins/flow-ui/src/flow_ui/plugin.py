"""Hook implementations of flow-ui: the ``flow ui`` command."""

from flow_core.plugin_api import hookimpl


@hookimpl
def flow_cli_commands():
    from .cli import ui

    return [ui]
