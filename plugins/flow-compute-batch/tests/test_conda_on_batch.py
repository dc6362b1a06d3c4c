"""@conda on Batch (flow-env): a container whose image has neither the step's conda package
nor py-rattler links the package from the datastore alone and runs the step with the
package's command on PATH."""

from __future__ import annotations

import boto3
from flow_core import Flow, namespace
from flow_core.testing import run_id_of

CONDA_FLOW = '''
import shutil
import subprocess
import sys

from flow_core import FlowSpec, batch, conda, environment, step

NO_INDEX = {"UV_OFFLINE": "1", "UV_INDEX_URL": "http://127.0.0.1:9/simple"}


class CondaOnBatchFlow(FlowSpec):
    @environment(vars=NO_INDEX)
    @conda(packages={"flowtool": "1.0"})
    @batch(cpu=1, memory=512)
    @step
    def start(self):
        self.tool_path = shutil.which("flowtool")
        self.tool_output = subprocess.run(["flowtool"], capture_output=True, text=True, check=True).stdout.strip()
        self.remote_python = sys.executable
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CondaOnBatchFlow()
'''


def test_a_conda_step_on_batch_gets_its_packages_from_the_datastore(batch_env, flow_cli, flow_env, write_flow,
                                                                    docker_engine, task_image, tmp_path):
    from flow_env.testing.conda_channel import make_channel

    channel = make_channel(tmp_path / "channel", {"flowtool": ("1.0",)})
    flow_file = write_flow("conda_on_batch.py", CONDA_FLOW)
    settings = {"METAFLOW_CONDA_CHANNELS": channel.as_uri(),
                "METAFLOW_ENVIRONMENT_CACHE": str(tmp_path / "environments")}
    result = flow_cli("--environment=conda", "run", str(flow_file), env=settings, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "from the datastore" in result.stdout, result.stdout

    namespace(None)
    run = Flow("CondaOnBatchFlow")[run_id_of(result.stdout)]
    task = run["start"].task
    assert task.data.tool_output == "flowtool 1.0"
    # It ran in the container, in the environment built there, whose bin/ held the command.
    assert task.data.remote_python.startswith("/tmp/flow-environments/"), task.data.remote_python
    env_prefix = task.data.remote_python.rsplit("/bin/", 1)[0]
    assert task.data.tool_path == f"{env_prefix}/bin/flowtool"
    assert task.metadata_dict["environment"].startswith("conda:")

    # The image itself has no flowtool: only the datastore could have brought it...
    probe = docker_engine.docker("run", "--rm", task_image, "sh", "-c", "command -v flowtool",
                                 check=False, text=True)
    assert probe.returncode != 0 and not probe.stdout.strip()
    # ...where the conda package is, under its SHA-256, next to the py-rattler that linked it.
    bucket, _, prefix = batch_env["METAFLOW_DATASTORE_SYSROOT_S3"][len("s3://"):].partition("/")
    s3 = boto3.client("s3", endpoint_url=batch_env["METAFLOW_S3_ENDPOINT_URL"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/environments/packages/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert any(k.endswith("/flowtool-1.0-0.tar.bz2") for k in keys), keys
    assert any(k.rsplit("/", 1)[-1].startswith("py_rattler-") for k in keys), keys
