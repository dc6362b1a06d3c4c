"""The metadata service in a child process, for tests and benchmarks: started on a free port
of 127.0.0.1, ready when ``/health`` answers, stopped on demand."""

from __future__ import annotations

import sys
from pathlib import Path

from flow_core.testing.servers import ChildServer, free_port, http_answers


class ServiceProcess(ChildServer):
    name = "the metadata service"

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

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        args = [sys.executable, "-m", "flow_core", "metadata-service", "serve", "--database-url", self.database_url,
                "--port", str(self.port), "--workers", str(self.workers)]
        if self.auth_key:
            args += ["--auth-key", self.auth_key]
        if self.access_log:
            args.append("--access-log")
        if self.pool_size:
            args += ["--pool-size", str(self.pool_size)]
        self.launch(args)
        self.wait_until(lambda: http_answers(self.url + "/health"), timeout, where=self.url)
        return self
