"""Flow's storage backend on Amazon S3 and S3-compatible stores, and Metaflow's `S3` client.

``from flow_datastore_s3 import S3`` (and `S3Object`, `S3PutObject`, `S3GetObject`, the
``MetaflowS3*`` errors) load boto3 only when first asked for: the plugin's entry point imports
this package in every Flow command, which must stay quick.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: Names importable from here, and the module each lives in.
_EXPORTS = {
    "S3": "s3_client",
    **{name: "s3_objects" for name in (
        "S3Object", "S3PutObject", "S3GetObject", "RangeInfo", "MetaflowS3Exception", "MetaflowS3NotFound",
        "MetaflowS3AccessDenied", "MetaflowS3URLException", "MetaflowS3InvalidRange")},
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'flow_datastore_s3' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(f"flow_datastore_s3.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
