"""The metadata service in a child process, for tests and benchmarks: started on a free port
of 127.0.0.1, ready when ``/health`` answers, stopped on demand."""

from __future__ import annotations

import shutil
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

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


_session: dict = {"users": 0, "stack": None, "url": None}


@contextmanager
def shared_metadata_service(log_path: Path) -> Iterator[str]:
    """The URL of a metadata service on a fresh PostgreSQL, one for the whole test session
    however many test modules ask (each conftest's session fixture is its own): started by
    the first, stopped after the last. The database's folder is outside pytest's temporary
    folders, which the server's unprivileged user could not enter."""
    from flow_metadata_service.migrations import migrate_database
    from flow_metadata_service.postgres_server import PostgresServer

    if _session["users"] == 0:
        with ExitStack() as stack:
            folder = tempfile.mkdtemp(prefix="flow-pg-")
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            postgres = stack.enter_context(PostgresServer(folder))
            migrate_database(postgres.url)
            _session["url"] = stack.enter_context(ServiceProcess(postgres.url, log_path)).url
            _session["stack"] = stack.pop_all()
    _session["users"] += 1
    try:
        yield _session["url"]
    finally:
        _session["users"] -= 1
        if _session["users"] == 0:
            _session["stack"].close()
