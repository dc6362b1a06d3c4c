"""The S3 backend passes the conformance suite every storage backend must pass."""

from __future__ import annotations

import pytest
from flow_core.plugin_api import ConfigError, DataStoreError
from flow_core.testing import StorageConformance
from flow_core.testing.servers import free_ports
from flow_datastore_s3.storage import S3Storage, parse_sysroot
from flow_datastore_s3.testing import SeaweedS3

from .conftest import KEYED


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


def missing_bucket_sentence(bucket: str, endpoint_url: str) -> str:
    return (f"the S3 bucket '{bucket}' does not exist (METAFLOW_DATASTORE_SYSROOT_S3=s3://{bucket}/x, "
            f"METAFLOW_S3_ENDPOINT_URL={endpoint_url}); create it or point METAFLOW_DATASTORE_SYSROOT_S3 "
            "at an existing one")


def test_a_missing_bucket_is_one_clear_sentence(seaweed):
    storage = S3Storage("no-such-bucket-here", "x", seaweed.endpoint_url)
    for call in (lambda: storage.get("k"), lambda: storage.put("k", b"v"), lambda: list(storage.list("")),
                 lambda: storage.exists("k")):
        with pytest.raises(DataStoreError) as raised:
            call()
        assert str(raised.value) == missing_bucket_sentence("no-such-bucket-here", seaweed.endpoint_url)


def test_a_write_never_creates_a_missing_bucket(keyed_seaweed, monkeypatch):
    """A store that creates a bucket on the first write to it would take a mistyped bucket
    name for a new, empty datastore: the first write of a backend stops instead."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYED[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYED[1])
    for number, write in enumerate((lambda storage: storage.put("k", b"v"),
                                    lambda storage: storage.put_many([("a", b"1"), ("b", b"2")]),
                                    lambda storage: storage.put_pieces("k", [b"head", b"body"]),
                                    lambda storage: storage.put("k", b"v", overwrite=False))):
        bucket = f"mistyped-bucket-{number}"
        with pytest.raises(DataStoreError) as raised:
            write(S3Storage(bucket, "x", keyed_seaweed.endpoint_url))
        assert str(raised.value) == missing_bucket_sentence(bucket, keyed_seaweed.endpoint_url)
    assert not [name for name in keyed_seaweed.bucket_names() if name.startswith("mistyped-bucket-")]
    keyed_seaweed.create_bucket("made-on-purpose")
    storage = S3Storage("made-on-purpose", "x", keyed_seaweed.endpoint_url)
    storage.put_many([("a", b"1"), ("b", b"2")])
    assert storage.get_many(["a", "b"]) == {"a": b"1", "b": b"2"}


def test_an_unreachable_endpoint_is_one_clear_sentence():
    (port,) = free_ports(1)
    storage = S3Storage("bucket", "", f"http://127.0.0.1:{port}")
    with pytest.raises(DataStoreError) as raised:
        storage.get("k")
    assert str(raised.value) == f"cannot reach S3 at http://127.0.0.1:{port} to read k: connection refused"


def test_s3_going_away_is_one_sentence_with_the_cause(tmp_path):
    """The server stops while a backend is in use: every call says so, naming what it was doing."""
    with SeaweedS3(tmp_path / "s3") as server:
        storage = S3Storage(server.create_bucket("vanishing"), "x", server.endpoint_url)
        storage.put("before", b"v")
        server.stop()
        calls = {"read before": lambda: storage.get("before"),
                 "write after": lambda: storage.put("after", b"v"),
                 "look up before": lambda: storage.exists("before")}
        for what, call in calls.items():
            with pytest.raises(DataStoreError) as raised:
                call()
            assert str(raised.value) == f"cannot reach S3 at {server.endpoint_url} to {what}: connection refused"


def test_datastore_uploads_skip_payload_signing_and_a_key_checking_server_takes_them(keyed_seaweed, monkeypatch):
    """The datastore sends UNSIGNED-PAYLOAD (no SHA-256 over every body: content hashes check
    each object on read), and a server that checks signatures still takes the uploads."""
    import numpy as np
    from flow_core.datastore.cas import ContentAddressedStore

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYED[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYED[1])
    keyed_seaweed.create_bucket("unsigned-bodies")
    storage = S3Storage("unsigned-bodies", "x", keyed_seaweed.endpoint_url)
    sent = []
    storage._client().meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(request.headers.get("X-Amz-Content-SHA256")))
    array = np.random.default_rng(5).random(3 * 1024 * 1024)  # 24 MiB: two chunks and a manifest
    records = ContentAddressedStore(storage).save_values({"array": array})
    assert len(sent) == 3 and {value.decode() if isinstance(value, bytes) else value for value in sent} == {
        "UNSIGNED-PAYLOAD"}
    fresh = S3Storage("unsigned-bodies", "x", keyed_seaweed.endpoint_url)
    assert np.array_equal(ContentAddressedStore(fresh).load_values(records)["array"], array)
