from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest
from flow_core.testing.servers import ChildServer, free_port, http_answers

#: What the tests authenticate to moto with (it takes any key pair unless auth is on).
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "flow-tests", "AWS_SECRET_ACCESS_KEY": "flow-tests-secret",
                    "AWS_DEFAULT_REGION": "us-east-1"}


class MotoServer(ChildServer):
    """``moto.server`` on a free loopback port. With ``unauthenticated_calls``, moto checks
    IAM permissions after that many requests (the ones a test needs to set the stage)."""

    name = "moto server"
    grace_seconds = 10.0

    def __init__(self, log_file: Path, unauthenticated_calls: int | None = None):
        self.log_path = Path(log_file)
        self.unauthenticated_calls = unauthenticated_calls
        self.port = free_port()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> MotoServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        env.update(TEST_CREDENTIALS)
        if self.unauthenticated_calls is not None:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.unauthenticated_calls)
        self.launch([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)], env=env)
        self.wait_until(lambda: http_answers(f"{self.endpoint_url}/moto-api/", timeout=2), timeout,
                        where=self.endpoint_url, interval=0.2)
        return self

    def reset(self) -> None:
        """Forget every secret (between tests)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    with MotoServer(tmp_path_factory.mktemp("logs") / "moto.log") as server:
        yield server


@pytest.fixture
def point_at(monkeypatch, flow_env):
    """``point_at(endpoint_url, **extra)``: see `_point_at`."""
    return lambda endpoint_url, **extra: _point_at(monkeypatch, flow_env, endpoint_url, **extra)


def _point_at(monkeypatch, flow_env, endpoint_url: str, **extra: str) -> dict[str, str]:
    """Point boto3 (here and in the tasks) at ``endpoint_url`` for every AWS service, so that
    nothing reaches real AWS; Flow itself stays local."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    env = {**TEST_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint_url, "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint_url,
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", **extra}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    flow_env.update(env)
    return env


@pytest.fixture
def aws_env(flow_env, moto, monkeypatch) -> dict[str, str]:
    """A fresh moto and a default secrets region (eu-west-1) other than boto3's (us-east-1)."""
    moto.reset()
    return _point_at(monkeypatch, flow_env, moto.endpoint_url, METAFLOW_AWS_SECRETS_MANAGER_DEFAULT_REGION="eu-west-1")


def _create_secret(name: str, value: str | bytes | dict, region: str = "eu-west-1") -> str:
    import boto3

    client = boto3.client("secretsmanager", region_name=region)
    if isinstance(value, bytes):
        return client.create_secret(Name=name, SecretBinary=value)["ARN"]
    text = json.dumps(value) if isinstance(value, dict) else value
    return client.create_secret(Name=name, SecretString=text)["ARN"]


@pytest.fixture
def create_secret(aws_env):
    """``create_secret(name, value, region="eu-west-1")`` creates a secret as an admin would
    (a dict as JSON, bytes as a binary secret) and returns its ARN."""
    return _create_secret


@pytest.fixture
def moto_with_iam(tmp_path, flow_env, monkeypatch):
    """A moto of its own that checks IAM permissions after three requests: enough to create a
    user with no permission, its access key, and a secret; the tests then act as that user."""
    import boto3

    with MotoServer(tmp_path / "moto-iam.log", unauthenticated_calls=3) as server:
        _point_at(monkeypatch, flow_env, server.endpoint_url, METAFLOW_AWS_SECRETS_MANAGER_DEFAULT_REGION="eu-west-1")
        boto3.client("iam").create_user(UserName="nobody")
        key = boto3.client("iam").create_access_key(UserName="nobody")["AccessKey"]
        _create_secret("flow-tests/guarded", {"user": "ana"})
        _point_at(monkeypatch, flow_env, server.endpoint_url, METAFLOW_AWS_SECRETS_MANAGER_DEFAULT_REGION="eu-west-1",
                  AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
        yield server
