"""The hook implementations Flow loads from the ``flow.plugins`` entry point.

Implement only the hooks you need; `flow_core.plugin.hookspecs` documents each one with an
example. Import from `flow_core.plugin_api` only.
"""

from flow_core.plugin_api import Backend, hookimpl


@hookimpl
def flow_storage_backends():
    # A "module:Class" path: the module is imported only when configuration selects "my-plugin".
    return [Backend("my-plugin", "flow_my_plugin.storage:MyPluginStorage", "say where the blobs go")]
