from __future__ import annotations

import itertools
import os

import pytest
from flow_compute_batch.testing import MotoServer, TaskImage, create_job_queue, shared_docker_engine
from flow_core.plugin_api import Backends, CodePackage
from flow_datastore_s3.testing import SeaweedS3

#: What jobs in the test image authenticate to SeaweedFS with (it takes any key pair).
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "flow-tests", "AWS_SECRET_ACCESS_KEY": "flow-tests-secret",
                    "AWS_DEFAULT_REGION": "us-east-1"}
_names = itertools.count(1)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server
        server.discard()


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory):
    with shared_docker_engine(tmp_path_factory.mktemp("logs") / "dockerd.log") as engine:
        yield engine


@pytest.fixture(scope="session")
def task_image(docker_engine) -> str:
    """The jobs' image: Debian's Python and the third-party libraries of a task on S3."""
    backends = Backends.configured({"METAFLOW_DEFAULT_DATASTORE": "s3"})
    requirements = CodePackage.build(__file__, backends, used=["flow-compute-batch"]).requirements
    return TaskImage(docker_engine, requirements, TEST_CREDENTIALS).build()


@pytest.fixture(scope="session")
def moto_containers(tmp_path_factory, docker_engine, task_image):
    """moto whose Batch runs each job in a container of the test engine."""
    with MotoServer(tmp_path_factory.mktemp("logs") / "moto-docker.log", docker_host=docker_engine.host) as server:
        yield server


@pytest.fixture(scope="session")
def moto_simple(tmp_path_factory):
    """moto in Batch's no-container mode: every job succeeds at once."""
    with MotoServer(tmp_path_factory.mktemp("logs") / "moto-simple.log") as server:
        yield server


@pytest.fixture(scope="session")
def moto_failing(tmp_path_factory):
    """moto in Batch's no-container mode, where every job fails."""
    with MotoServer(tmp_path_factory.mktemp("logs") / "moto-failing.log", fail_jobs=True) as server:
        yield server


def configure(monkeypatch, flow_env, seaweed, moto: MotoServer, **extra: str) -> dict[str, str]:
    """Point this test's Flow at Batch on ``moto`` (with a fresh job queue) and at a fresh
    bucket on SeaweedFS; metadata stays local."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    aws = {**TEST_CREDENTIALS, **moto.client_environment(),
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    moto.reset()
    bucket = seaweed.create_bucket(f"flow-batch-{os.getpid()}-{next(_names)}")
    env = {
        **aws, "METAFLOW_BATCH_JOB_QUEUE": create_job_queue(),
        "METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/flow",
        "METAFLOW_S3_ENDPOINT_URL": seaweed.endpoint_url, **extra,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    flow_env.update(env)
    return env


@pytest.fixture
def batch_env(flow_env, seaweed, moto_containers, task_image, monkeypatch) -> dict[str, str]:
    """Batch running real containers of the test image."""
    return configure(monkeypatch, flow_env, seaweed, moto_containers, METAFLOW_BATCH_CONTAINER_IMAGE=task_image)


@pytest.fixture
def simple_env(flow_env, seaweed, moto_simple, monkeypatch) -> dict[str, str]:
    """Batch in no-container mode: every job succeeds at once, running nothing."""
    return configure(monkeypatch, flow_env, seaweed, moto_simple)


@pytest.fixture
def failing_env(flow_env, seaweed, moto_failing, monkeypatch) -> dict[str, str]:
    """Batch in no-container mode, where every job fails."""
    return configure(monkeypatch, flow_env, seaweed, moto_failing)
