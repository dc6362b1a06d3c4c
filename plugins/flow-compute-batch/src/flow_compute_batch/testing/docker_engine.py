"""A Docker engine of the tests' own, kept off every network but the host's loopback.

``--bridge=none --iptables=false --ip-forward=false`` stops dockerd from creating a bridge,
touching the firewall or routing: containers can only use the host's network (moto runs them
with ``network_mode=host``), so everything stays on 127.0.0.1. ``--host-gateway-ip`` gives
moto's ``host.docker.internal`` entry the loopback address instead of a bridge's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from flow_core.testing.servers import ChildServer


class DockerEngine(ChildServer):
    name = "dockerd"

    def __init__(self, log_file: Path):
        self.log_path = Path(log_file)
        # Short paths: containerd's sockets live under the exec root, and a socket path
        # must fit in 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="flow-docker-", dir="/tmp"))
        self.socket = self.root / "docker.sock"

    @property
    def host(self) -> str:
        """The DOCKER_HOST value that reaches this engine."""
        return f"unix://{self.socket}"

    def start(self, timeout: float = 60.0) -> DockerEngine:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise RuntimeError("dockerd is not installed; scripts/test installs Debian's docker.io")
        if os.geteuid() != 0:
            raise RuntimeError("the Batch container tests start their own dockerd, which needs root")
        self.launch([dockerd, "--bridge=none", "--iptables=false", "--ip-forward=false", "--ip6tables=false",
                     "--host-gateway-ip=127.0.0.1", "--data-root", str(self.root / "data"),
                     "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "docker.pid"),
                     "-H", self.host], start_new_session=True)
        self.wait_until(lambda: self.docker("version", check=False).returncode == 0, timeout, where=self.host,
                        interval=0.3)
        return self

    def docker(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Run the docker CLI against this engine; with ``check``, fail with what it printed."""
        result = subprocess.run(["docker", "-H", self.host, *args], capture_output=True, **kwargs)
        if check and result.returncode != 0:
            error = result.stderr if isinstance(result.stderr, str) else result.stderr.decode(errors="replace")
            raise RuntimeError(f"docker {args[0]} failed: {error.strip()}")
        return result

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)


_shared: list[DockerEngine] = []
_users = [0]


@contextmanager
def shared_docker_engine(log_file: Path) -> Iterator[DockerEngine]:
    """One engine for the whole test session, whichever plugins' tests ask for it (each
    conftest's session fixture is its own): started by the first, stopped after the last."""
    if not _shared:
        _shared.append(DockerEngine(log_file).start())
    _users[0] += 1
    try:
        yield _shared[0]
    finally:
        _users[0] -= 1
        if _users[0] == 0:
            _shared.pop().stop()
