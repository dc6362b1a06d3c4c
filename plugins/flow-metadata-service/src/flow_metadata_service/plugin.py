"""Hook implementations of flow-metadata-service."""

from flow_core.plugin_api import Backend, Setting, hookimpl


@hookimpl
def flow_metadata_backends():
    return [Backend("service", "flow_metadata_service.client:ServiceMetadata",
                    "runs recorded by the metadata service (PostgreSQL)")]


@hookimpl
def flow_cli_commands():
    from .cli import metadata_service

    return [metadata_service]


@hookimpl
def flow_settings():
    return [
        Setting("METAFLOW_SERVICE_URL", None, "URL of the metadata service"),
        Setting("METAFLOW_SERVICE_AUTH_KEY", None, "bearer token the metadata service expects"),
        Setting("METAFLOW_SERVICE_DATABASE_URL", None, "PostgreSQL URL the metadata service serves from"),
    ]
