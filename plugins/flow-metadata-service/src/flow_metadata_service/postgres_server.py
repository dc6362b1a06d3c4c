"""A throwaway PostgreSQL server for tests and benchmarks.

The binaries come from the `pgserver` wheel (PostgreSQL built for manylinux, in this package's
dev group) or, failing that, from the machine's own PostgreSQL. The server listens on a free
port of 127.0.0.1 only, trusts local connections, and keeps everything in one folder.
PostgreSQL refuses to run as root, so as root it runs as ``nobody``.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from flow_core.testing.servers import ChildServer, free_port

UNPRIVILEGED_USER = "nobody"


def postgres_bin_dir() -> Path:
    """The folder holding `initdb` and `postgres`."""
    candidates = []
    if os.environ.get("FLOW_POSTGRES_BIN"):
        candidates.append(Path(os.environ["FLOW_POSTGRES_BIN"]))
    spec = importlib.util.find_spec("pgserver")  # found, not imported: importing it has side effects
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "pginstall" / "bin" for p in spec.submodule_search_locations]
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    raise RuntimeError("no PostgreSQL server binaries found: install pgserver (it is in this package's "
                       "dev group) or set FLOW_POSTGRES_BIN to a folder holding initdb and postgres")


class PostgresServer(ChildServer):
    """``with PostgresServer(folder) as pg: pg.url`` -- initialised, started, and stopped after.
    Stopping is PostgreSQL's fast shutdown (SIGINT): it ends the clients' sessions and stops.
    SIGTERM would be its smart shutdown, which waits for every client to disconnect, so a
    service holding pooled connections would keep the database up for as long as it runs."""

    name = "PostgreSQL"

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.log_path = self.folder / "postgres.log"
        self.port = port or free_port()
        self._user = UNPRIVILEGED_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run_as(self) -> dict:
        if self._user is None:
            return {}
        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _own(self, path: Path) -> None:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, timeout: float = 60.0) -> PostgresServer:
        bin_dir = postgres_bin_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        self._own(self.folder)
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C", "LC_ALL": "C"}
        if not (self.data / "PG_VERSION").exists():
            subprocess.run([str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                            "-E", "UTF8", "--no-sync"], check=True, capture_output=True, env=env,
                           cwd=self.folder, **self._run_as())
        self.log_path.touch()
        self._own(self.log_path)
        self.launch([str(bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1",
                     "-k", str(self.folder), "-c", "max_connections=200", "-c", "fsync=on"],
                    env=env, cwd=self.folder, **self._run_as())
        pg_isready = [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]

        def accepting() -> bool:
            return subprocess.run(pg_isready, capture_output=True, env=env, check=False).returncode == 0

        self.wait_until(accepting, timeout, where=f"127.0.0.1:{self.port}")
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=self.grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
