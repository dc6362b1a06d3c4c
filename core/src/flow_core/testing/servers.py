"""Real servers as child processes, for the tests and benchmarks of Flow and its plugins.

Plugins start real servers (S3, PostgreSQL, their own HTTP services, moto, dockerd) rather
than mocks. What every such server needs is here, once: free ports on the loopback address
only, a start that waits until the server answers and fails with the tail of its log when it
dies or hangs, and a stop that terminates, waits, then kills::

    from flow_core.testing.servers import ChildServer, free_port, http_answers

    class EchoServer(ChildServer):
        name = "echo server"

        def __init__(self, log_path):
            self.log_path = log_path
            self.port = free_port()

        def start(self, timeout=30.0):
            self.launch(["echo-server", "--port", str(self.port)])
            self.wait_until(lambda: http_answers(f"http://127.0.0.1:{self.port}/"), timeout)
            return self

    with EchoServer(tmp_path / "echo.log") as server:
        ...
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["LOOPBACK", "ChildServer", "ServerStartError", "free_port", "free_ports", "http_answers",
           "log_tail", "stop_process", "wait_until_ready"]

LOOPBACK = "127.0.0.1"
MAX_PORT = 65535

_Server = TypeVar("_Server", bound="ChildServer")


class ServerStartError(RuntimeError):
    """A test server exited or never answered; the message carries its log's last lines."""


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_ports(count: int, twins: Sequence[int] = ()) -> list[int]:
    """``count`` distinct ports free on the loopback address. With ``twins``, each port ``p``
    also has ``p + offset`` free for every offset (SeaweedFS puts gRPC at port + 10000)."""
    ports: list[int] = []
    taken: set[int] = set()
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        family = [port, *(port + offset for offset in twins)]
        if max(family) <= MAX_PORT and taken.isdisjoint(family) and all(_bindable(p) for p in family):
            ports.append(port)
            taken.update(family)
    return ports


def free_port() -> int:
    """One port free on the loopback address (for a server, or for a URL nothing answers)."""
    return free_ports(1)[0]


def http_answers(url: str, timeout: float = 1.0, any_status: bool = False) -> bool:
    """Whether ``url`` answers with a success; with ``any_status``, whether it answers at all."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
        return True
    except urllib.error.HTTPError:
        return any_status
    except OSError:
        return False


def log_tail(log: Path | None, lines: int = 30) -> str:
    """The last lines of a server's log, to put in the error that says it failed."""
    if log is None:
        return ""
    try:
        with open(log, "rb") as file:
            file.seek(0, 2)
            file.seek(max(0, file.tell() - 16384))
            text = file.read().decode(errors="replace")
    except OSError:
        return f"\n(its log {log} cannot be read)"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"\nlast lines of {log}:\n{tail}" if tail else f"\n(its log {log} is empty)"


def wait_until_ready(ready: Callable[[], bool], timeout: float, *, process: subprocess.Popen | None = None,
                     log: Path | None = None, what: str = "the server", interval: float = 0.1) -> None:
    """Poll ``ready()`` until it is true. Raises `ServerStartError` with the log's tail at once
    when ``process`` exits, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise ServerStartError(f"{what} exited at start (exit code {process.returncode}){log_tail(log)}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServerStartError(f"{what} did not answer within {timeout:.0f}s{log_tail(log)}")
        time.sleep(interval)


def stop_process(process: subprocess.Popen | None, grace: float = 30.0) -> None:
    """SIGTERM, up to ``grace`` seconds for the server's own shutdown, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ChildServer:
    """A server in a child process, its output appended to ``log_path``. A subclass sets
    ``name`` and ``log_path`` and writes `start` with `launch` and `wait_until`; `stop` and
    ``with`` come from here."""

    name = "the server"
    grace_seconds = 30.0
    process: subprocess.Popen | None = None
    log_path: Path

    def start(self: _Server, timeout: float = 60.0) -> _Server:
        raise NotImplementedError

    def launch(self, args: Sequence[str], **popen: Any) -> subprocess.Popen:
        """Start the process, stdout and stderr appended to the log, stdin closed."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, **popen)
        return self.process

    def wait_until(self, ready: Callable[[], bool], timeout: float, where: str = "",
                   interval: float = 0.1) -> None:
        """Wait for ``ready()``; if the server dies or hangs instead, stop it and raise."""
        what = f"{self.name} on {where}" if where else self.name
        try:
            wait_until_ready(ready, timeout, process=self.process, log=self.log_path, what=what, interval=interval)
        except ServerStartError:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.process, self.grace_seconds)
        self.process = None

    def discard(self) -> None:
        """Kill the server at once, for a fixture's teardown when its data goes too: a clean
        shutdown buys nothing then, and SeaweedFS takes ~12 s for one after a few tests."""
        stop_process(self.process, grace=0)
        self.process = None

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
