from __future__ import annotations

import itertools
import os

import pytest
from flow_sched_sfn.testing import AslValidator


@pytest.fixture(scope="session")
def asl_validator(request, tmp_path_factory) -> AslValidator:
    """npm's asl-validator, installed once into pytest's cache folder (node and npm required);
    with -p no:cacheprovider, into the session's temporary folder."""
    cache = getattr(request.config, "cache", None)
    validator = AslValidator(cache.mkdir("flow-sched-sfn-asl-validator") if cache
                             else tmp_path_factory.mktemp("flow-sched-sfn-asl-validator"))
    validator.install()
    return validator


# -- real servers for the end-to-end tests ------------------------------------------------------

#: What jobs in the test image authenticate to SeaweedFS and moto with (both take any key pair).
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "flow-tests", "AWS_SECRET_ACCESS_KEY": "flow-tests-secret",
                    "AWS_DEFAULT_REGION": "us-east-1"}
SFN_ROLE = "arn:aws:iam::123456789012:role/flow-sfn"
EVENTS_ROLE = "arn:aws:iam::123456789012:role/flow-events"
_names = itertools.count(1)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    from flow_datastore_s3.testing import SeaweedS3

    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server
        server.discard()


@pytest.fixture(scope="session")
def service_url(tmp_path_factory):
    """The metadata service on PostgreSQL: a deployed flow's containers record their runs there."""
    from flow_metadata_service.service_process import shared_metadata_service

    with shared_metadata_service(tmp_path_factory.mktemp("service") / "service.log") as url:
        yield url


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory):
    from flow_compute_batch.testing import shared_docker_engine

    with shared_docker_engine(tmp_path_factory.mktemp("logs") / "dockerd.log") as engine:
        yield engine


@pytest.fixture(scope="session")
def task_image(docker_engine) -> str:
    """The jobs' image: Debian's Python and the third-party libraries of a task that uses the
    S3 datastore and the metadata service."""
    from flow_compute_batch.testing import TaskImage
    from flow_core.plugin_api import Backends, CodePackage

    backends = Backends.configured({"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DEFAULT_METADATA": "service",
                                    "METAFLOW_SERVICE_URL": "http://127.0.0.1:1"})
    requirements = CodePackage.build(__file__, backends, used=["flow-compute-batch", "flow-sched-sfn"]).requirements
    return TaskImage(docker_engine, requirements, TEST_CREDENTIALS, tag="flow-sfn-task:test").build()


@pytest.fixture(scope="session")
def moto_sfn(tmp_path_factory, docker_engine, seaweed, task_image):
    """moto running state machines, whose Batch runs each job in a container of the test engine."""
    from flow_sched_sfn.testing.moto_sfn import MotoSfnServer

    credentials = (TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"], TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    with MotoSfnServer(tmp_path_factory.mktemp("logs") / "moto-sfn.log", seaweed.endpoint_url,
                       s3_credentials=credentials, docker_host=docker_engine.host) as server:
        yield server


@pytest.fixture
def sfn_env(monkeypatch, flow_env, seaweed, moto_sfn, service_url, task_image) -> dict[str, str]:
    """This test's Flow deploying to Step Functions on moto, with a fresh job queue and bucket."""
    from flow_compute_batch.testing import create_job_queue

    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    aws = {**TEST_CREDENTIALS, **moto_sfn.client_environment(),
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    moto_sfn.reset()
    moto_sfn.enable_execution()
    bucket = seaweed.create_bucket(f"flow-deployed-{os.getpid()}-{next(_names)}")
    env = {
        **aws, "METAFLOW_BATCH_JOB_QUEUE": create_job_queue(), "METAFLOW_BATCH_CONTAINER_IMAGE": task_image,
        "METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/flow",
        "METAFLOW_S3_ENDPOINT_URL": seaweed.endpoint_url,
        "METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": service_url,
        "METAFLOW_SFN_IAM_ROLE": SFN_ROLE, "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE": EVENTS_ROLE,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    flow_env.update(env)
    return env
