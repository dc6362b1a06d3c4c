"""Hook implementations of flow-datastore-s3."""

from flow_core.plugin_api import Backend, Setting, hookimpl


@hookimpl
def flow_storage_backends():
    # The class is imported only when a run selects "s3": boto3 is slow to import.
    return [Backend("s3", "flow_datastore_s3.storage:S3Storage", "artifacts and logs in an S3 bucket")]


@hookimpl
def flow_settings():
    return [
        Setting("METAFLOW_DATASTORE_SYSROOT_S3", None, "s3://bucket/prefix of the S3 datastore"),
        Setting("METAFLOW_S3_ENDPOINT_URL", None, "S3-compatible endpoint (on-prem, tests)"),
        Setting("METAFLOW_DATATOOLS_S3ROOT", None,
                "s3://bucket/prefix under which S3(run=...) keeps files (default: the datastore root + /data)"),
    ]


@hookimpl
def flow_exports():
    # `from flow_core import S3`, as Metaflow users write `from metaflow import S3`.
    return {name: f"flow_datastore_s3:{name}" for name in ("S3", "S3Object", "S3PutObject", "S3GetObject")}
