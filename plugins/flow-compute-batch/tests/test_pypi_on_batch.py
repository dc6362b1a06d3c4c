"""@pypi on Batch (flow-env): a container whose image lacks the step's package builds the
step's environment from the datastore alone, with no package index it could reach."""

from __future__ import annotations

import boto3
from flow_core import Flow, namespace
from flow_core.testing import run_id_of

#: `humanize` is in neither the image nor this workspace; the join runs here, in its own
#: environment, so one run shows both places.
PYPI_FLOW = '''
from flow_core import FlowSpec, batch, environment, pypi, pypi_base, step

NO_INDEX = {"UV_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
            "UV_OFFLINE": "1"}


@pypi_base(packages={"humanize": "4.9.0"})
class PypiOnBatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.remote)

    @environment(vars=NO_INDEX)
    @batch(cpu=1, memory=512)
    @step
    def remote(self):
        import sys
        import humanize
        self.remote_version = humanize.__version__
        self.remote_python = sys.executable
        self.words = humanize.intword(12_300_000)
        self.next(self.end)

    @pypi(packages={"humanize": "4.10.0"})
    @step
    def end(self):
        import humanize
        self.local_version = humanize.__version__


if __name__ == "__main__":
    PypiOnBatchFlow()
'''


def test_a_pypi_step_on_batch_gets_its_packages_from_the_datastore(batch_env, flow_cli, flow_env, write_flow,
                                                                   docker_engine, task_image, tmp_path):
    flow_file = write_flow("pypi_on_batch.py", PYPI_FLOW)
    cache = {"METAFLOW_ENVIRONMENT_CACHE": str(tmp_path / "environments")}
    result = flow_cli("--environment=pypi", "run", str(flow_file), env=cache, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    # The container said where its environment came from.
    assert "from the datastore" in result.stdout, result.stdout

    namespace(None)
    run = Flow("PypiOnBatchFlow")[run_id_of(result.stdout)]
    remote = run["remote"].task
    assert remote.data.remote_version == "4.9.0" and remote.data.words == "12.3 million"
    assert remote.data.remote_python.startswith("/tmp/flow-environments/")
    assert remote.metadata_dict["environment"].startswith("pypi:")
    assert run["end"].task.data.local_version == "4.10.0"

    # The image itself has no humanize: only the datastore could have brought it...
    probe = docker_engine.docker("run", "--rm", task_image, "python3", "-c", "import humanize",
                                 check=False, text=True)
    assert probe.returncode != 0 and "No module named 'humanize'" in probe.stderr
    # ...where the wheel is, under its SHA-256.
    bucket, _, prefix = batch_env["METAFLOW_DATASTORE_SYSROOT_S3"][len("s3://"):].partition("/")
    s3 = boto3.client("s3", endpoint_url=batch_env["METAFLOW_S3_ENDPOINT_URL"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/environments/")["Contents"]]
    assert any(k.endswith("/humanize-4.9.0-py3-none-any.whl") for k in keys), keys
