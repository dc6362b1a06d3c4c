"""``flow ui`` on a team's backends: the metadata service (PostgreSQL) and S3 (SeaweedFS),
both started here on 127.0.0.1, with the same pages as on the local folder."""

from __future__ import annotations

import pytest
from flow_datastore_s3.testing import SeaweedS3
from flow_metadata_service.service_process import shared_metadata_service

from .conftest import UIEnv, UIServer


@pytest.fixture(scope="module")
def remote_env(tmp_path_factory) -> UIEnv:
    with shared_metadata_service(tmp_path_factory.mktemp("service") / "service.log") as url, \
            SeaweedS3(tmp_path_factory.mktemp("seaweed")) as seaweed:
        bucket = seaweed.create_bucket("flow-ui-tests")
        env = UIEnv(tmp_path_factory.mktemp("remote"))
        env.env.update({
            "METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": url,
            "METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/flow",
            "METAFLOW_S3_ENDPOINT_URL": seaweed.endpoint_url,
            "AWS_ACCESS_KEY_ID": "flow-tests", "AWS_SECRET_ACCESS_KEY": "flow-tests-secret",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"})
        yield env


def test_service_and_s3(remote_env):
    shapes = remote_env.flow("run", "shapes.py", "--max-workers", "2")
    broken = remote_env.flow("run", "broken.py", check=False)
    ui = UIServer(remote_env)
    try:
        # The service is shared by the session's tests: other flows' runs are listed too.
        listing = ui.json("/api/runs")
        ours = [r["pathspec"] for r in listing["runs"] if r["flow"] in ("BrokenFlow", "ShapesFlow")]
        assert ours == [f"BrokenFlow/{broken}", f"ShapesFlow/{shapes}"]
        run = ui.json(f"/api/flows/ShapesFlow/{shapes}")
        assert {s["name"]: s["counts"]["done"] for s in run["steps"]}["each"] == 3
        assert run["edges"]["start"] == ["left", "right"] and len(run["timeline"]["attempts"]) == 10
        failed = ui.json(f"/api/flows/BrokenFlow/{broken}")
        assert next(s for s in failed["steps"] if s["name"] == "explode")["counts"]["failed"] == 1
        end = next(t["pathspec"] for t in run["tasks"] if t["step"] == "end")
        status, page = ui.get(f"/flows/{end}")
        assert status == 200 and "the shapes are done" in page and "dtype float32" in page
        assert ui.get(f"/flows/ShapesFlow/{shapes}/../../../etc/passwd")[0] == 404
    finally:
        assert "Traceback" not in ui.stop()
