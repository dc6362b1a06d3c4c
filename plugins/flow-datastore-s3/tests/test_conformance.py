"""The S3 backend passes the conformance suite every storage backend must pass."""

from __future__ import annotations

import pytest
from flow_core.plugin_api import ConfigError, DataStoreError
from flow_core.testing import StorageConformance
from flow_core.testing.servers import free_ports
from flow_datastore_s3.storage import S3Storage, parse_sysroot


class TestS3Storage(StorageConformance):
    @pytest.fixture
    def storage(self, seaweed, bucket):
        return S3Storage(bucket, "some/prefix", seaweed.endpoint_url)

    def test_keys_live_under_the_prefix(self, storage, seaweed, bucket):
        import boto3

        storage.put("data/ab/cd", b"x")
        listed = boto3.client("s3", endpoint_url=seaweed.endpoint_url).list_objects_v2(Bucket=bucket)
        assert [o["Key"] for o in listed["Contents"]] == ["some/prefix/data/ab/cd"]
        assert storage.describe() == f"s3://{bucket}/some/prefix at {seaweed.endpoint_url}"

    def test_large_objects_go_up_in_parts_and_come_back_whole(self, storage):
        import os

        blob = os.urandom(40 * 1024 * 1024)
        storage.put("big", blob)
        assert storage.get("big") == blob


def test_sysroot_is_parsed_or_refused_clearly():
    assert parse_sysroot("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_sysroot("s3://bucket") == ("bucket", "")
    with pytest.raises(ConfigError, match="must look like s3://bucket/prefix"):
        parse_sysroot("/local/path")


def test_a_missing_bucket_is_one_clear_sentence(seaweed):
    storage = S3Storage("no-such-bucket-here", "x", seaweed.endpoint_url)
    for call in (lambda: storage.get("k"), lambda: storage.put("k", b"v"), lambda: list(storage.list("")),
                 lambda: storage.exists("k")):
        with pytest.raises(DataStoreError, match="the S3 bucket 'no-such-bucket-here' does not exist"):
            call()


def test_an_unreachable_endpoint_is_one_clear_sentence():
    (port,) = free_ports(1)
    storage = S3Storage("bucket", "", f"http://127.0.0.1:{port}")
    with pytest.raises(DataStoreError, match=f"cannot reach http://127.0.0.1:{port}"):
        storage.get("k")
