"""The metadata service in a child process, for tests and benchmarks: started on a free port
of 127.0.0.1, ready when ``/health`` answers, stopped (or restarted) on demand."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .child_server import ChildServer
from .postgres_server import free_port


class ServiceProcess(ChildServer):
    def __init__(self, database_url: str, log_path: Path, auth_key: str | None = None, workers: int = 1,
                 access_log: bool = False, pool_size: int | None = None):
        self.database_url = database_url
        self.log_path = Path(log_path)
        self.auth_key = auth_key
        self.workers = workers
        self.access_log = access_log
        self.pool_size = pool_size
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "ServiceProcess":
        args = [sys.executable, "-m", "flow_core", "metadata-service", "serve", "--database-url", self.database_url,
                "--port", str(self.port), "--workers", str(self.workers)]
        if self.auth_key:
            args += ["--auth-key", self.auth_key]
        if self.access_log:
            args.append("--access-log")
        if self.pool_size:
            args += ["--pool-size", str(self.pool_size)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the metadata service exited at start; see {self.log_path}")
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1)
                return self
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the metadata service did not answer on {self.url} within {timeout:.0f}s")
