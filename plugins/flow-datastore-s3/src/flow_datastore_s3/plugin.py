"""Hook implementations of flow-datastore-s3."""

from flow_core.plugin_api import Setting, hookimpl


@hookimpl
def flow_settings():
    return [
        Setting("METAFLOW_DATASTORE_SYSROOT_S3", None, "s3://bucket/prefix of the S3 datastore"),
        Setting("METAFLOW_S3_ENDPOINT_URL", None, "S3-compatible endpoint (on-prem, tests)"),
    ]
