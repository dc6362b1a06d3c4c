from __future__ import annotations

import itertools
import os

import pytest
from flow_datastore_s3.testing import SeaweedS3

_names = itertools.count(1)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """One SeaweedFS S3 server on 127.0.0.1 for the whole session."""
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server
        server.discard()


#: The one key pair the bucket-creating server takes.
KEYED = ("flow-keyed", "flow-keyed-secret")


@pytest.fixture(scope="session")
def keyed_seaweed(tmp_path_factory):
    """A second server, which takes only the `KEYED` pair and so, like several S3-compatible
    stores, creates a missing bucket on the first write to it."""
    with SeaweedS3(tmp_path_factory.mktemp("keyed-seaweed"), credentials=KEYED) as server:
        yield server
        server.discard()


@pytest.fixture(autouse=True)
def aws_test_credentials(monkeypatch):
    """SeaweedFS takes any key pair; never let a test reach real AWS credentials or config."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "flow-tests")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "flow-tests-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture
def bucket(seaweed, aws_test_credentials) -> str:
    return seaweed.create_bucket(f"flow-test-{os.getpid()}-{next(_names)}")


@pytest.fixture
def s3_env(flow_env, seaweed, bucket, monkeypatch) -> dict:
    """Flow configured for the S3 datastore on the test server (metadata stays local)."""
    env = {"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/flow",
           "METAFLOW_S3_ENDPOINT_URL": seaweed.endpoint_url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    flow_env.update(env)
    return env
