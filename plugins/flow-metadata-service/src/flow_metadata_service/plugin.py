"""Hook implementations of flow-metadata-service."""

from flow_core.plugin_api import Setting, hookimpl


@hookimpl
def flow_settings():
    return [
        Setting("METAFLOW_SERVICE_URL", None, "URL of the metadata service"),
        Setting("METAFLOW_SERVICE_AUTH_KEY", None, "bearer token the metadata service expects"),
    ]
