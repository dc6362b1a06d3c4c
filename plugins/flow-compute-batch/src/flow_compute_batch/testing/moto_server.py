"""moto in server mode, reached over HTTP with boto3 exactly as AWS would be."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

from flow_core.testing.servers import ChildServer, free_port, http_answers


class MotoServer(ChildServer):
    """One ``moto.server`` process. With ``docker_host`` its Batch runs every job in a
    container of that engine on the host's network; without, Batch's no-container mode
    marks each job succeeded at once (or failed, with ``fail_jobs``)."""

    name = "moto server"
    grace_seconds = 10.0

    def __init__(self, log_file: Path, docker_host: str | None = None, fail_jobs: bool = False):
        self.log_path = Path(log_file)
        self.docker_host = docker_host
        self.fail_jobs = fail_jobs
        self.port = free_port()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_environment(self) -> dict[str, str]:
        """What points boto3's clients at this server: every service but S3 (whose client
        Flow gives its own endpoint), so that nothing can reach real AWS by mistake."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url,
                **{f"AWS_ENDPOINT_URL_{service}": self.endpoint_url for service in ("BATCH", "CLOUDWATCH_LOGS", "IAM")}}

    def start(self, timeout: float = 60.0) -> MotoServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        env.update(AWS_ACCESS_KEY_ID="moto", AWS_SECRET_ACCESS_KEY="moto", AWS_DEFAULT_REGION="us-east-1")
        if self.docker_host:
            # Containers share the host's network, so a job reaches S3 and moto on 127.0.0.1
            # and no bridge network is ever created.
            env.update(DOCKER_HOST=self.docker_host, MOTO_DOCKER_NETWORK_MODE="host")
        if self.fail_jobs:
            env["MOTO_SIMPLE_BATCH_FAIL_AFTER"] = "0"
        env.update(self.launch_environment())
        self.launch([*self.launch_command(), "-H", "127.0.0.1", "-p", str(self.port)], env=env)
        self.wait_until(lambda: http_answers(f"{self.endpoint_url}/moto-api/", timeout=2), timeout,
                        where=self.endpoint_url, interval=0.2)
        if not self.docker_host:
            self._post("/moto-api/config", {"batch": {"use_docker": False}})
        return self

    def launch_command(self) -> list[str]:
        """What starts the server, before moto.server's own ``-H``/``-p``: a subclass may run
        a launcher that prepares moto in the server's process and then hands over to it."""
        return [sys.executable, "-m", "moto.server"]

    def launch_environment(self) -> dict[str, str]:
        """Extra environment variables for the server's process (none here)."""
        return {}

    def _post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(f"{self.endpoint_url}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def hold_job_states(self, seconds: float | None) -> None:
        """Keep each Batch job in every state (SUBMITTED, PENDING, RUNNABLE, STARTING) for
        ``seconds``, as real Batch does for a while; None moves them on at once again."""
        if seconds is None:
            self._post("/moto-api/state-manager/unset-transition", {"model_name": "batch::job"})
        else:
            self._post("/moto-api/state-manager/set-transition",
                       {"model_name": "batch::job", "transition": {"progression": "time", "seconds": seconds}})

    def reset(self) -> None:
        """Forget every resource (between tests)."""
        self._post("/moto-api/reset", {})


def create_job_queue(name: str = "flow-tests") -> str:
    """An unmanaged compute environment and a job queue on it, as an AWS admin would set
    them up; boto3 finds the server through the AWS_ENDPOINT_URL_* variables."""
    import boto3

    iam = boto3.client("iam")
    batch = boto3.client("batch")
    role = iam.create_role(RoleName=f"{name}-service-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"},
                       "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"{name}-env", type="UNMANAGED", state="ENABLED", serviceRole=role,
    )["computeEnvironmentArn"]
    batch.create_job_queue(jobQueueName=name, state="ENABLED", priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}])
    return name
