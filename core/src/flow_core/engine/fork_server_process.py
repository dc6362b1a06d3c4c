"""Starting the fork server by forking the runtime itself.

A fork server started as a new interpreter spends a few hundred milliseconds importing what
the runtime has already imported, and every local run waits for it before its first task.
Forked from the runtime instead, it starts with all of that in memory and only loads the
user's flow file and its backends, while the runtime records the run.

That fork is safe only while the runtime has no thread of its own, so the local compute
does it from `ComputeBackend.prepare`, which the runtime calls before it starts any; later
(a retry after the server died, a second interpreter) the server is started as a new
interpreter, as before. The forked server behaves as the started one does: a session of its
own, stdin from /dev/null, its stderr to a pipe the runtime reads for its last words, the
runtime's environment with the run's task environment on top, the started server's
``sys.argv``, and the user's flow module imported afresh rather than shared with the runtime.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, NoReturn

from flow_core.engine.fork_protocol import end_forked_child


class ForkedServerProcess:
    """What the local compute needs of a `subprocess.Popen`, for a server forked from here."""

    def __init__(self, pid: int, stderr: IO[bytes]) -> None:
        self.pid = pid
        self.stderr = stderr
        self.returncode: int | None = None
        self._reaping = threading.Lock()  # the I/O thread and the runtime's thread both wait

    def poll(self) -> int | None:
        with self._reaping:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:  # reaped by someone else: its status is lost
                    self.returncode = -1
                else:
                    if pid:
                        self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.001
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"fork server {self.pid}", timeout or 0)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        return code

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def can_fork_server() -> bool:
    """Whether this process may fork the server now: it has no thread but this one."""
    return threading.active_count() == 1


def fork_server(theirs: socket.socket, ours: socket.socket, flow_file: str, flow_name: str,
                environment: Mapping[str, str]) -> ForkedServerProcess:
    """Fork the server, serving on ``theirs``; ``ours`` is the runtime's end, which the
    server closes."""
    err_read, err_write = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # or what they hold would be written twice
        stream.flush()
    pid = os.fork()
    if pid == 0:
        _become_server(theirs, ours, err_read, err_write, flow_file, flow_name, environment)  # never returns
    os.close(err_write)
    return ForkedServerProcess(pid, os.fdopen(err_read, "rb", buffering=0))


def _become_server(theirs: socket.socket, ours: socket.socket, err_read: int, err_write: int, flow_file: str,
                   flow_name: str, environment: Mapping[str, str]) -> NoReturn:
    def serve() -> int:
        from flow_core.engine import fork_server  # not the runtime's to import

        runtime = os.getppid()
        os.setsid()  # Ctrl-C reaches the runtime, which stops tasks in order
        arm = fork_server.parent_death_signal()
        if arm is not None:
            arm()
            if os.getppid() != runtime:
                return 1
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a new interpreter
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        ours.close()
        os.close(err_read)
        os.dup2(err_write, 2)
        os.close(err_write)
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.close(stdin)
        os.environ.update({**environment, "PYTHONUNBUFFERED": "1"})
        _unbuffered_output()
        _forget_flow_module(flow_file)
        arguments = [str(theirs.detach()), flow_file, flow_name]
        sys.argv = [fork_server.__file__, *arguments]  # what the flow's code sees in a started server
        fork_server.main(arguments)
        return 0

    end_forked_child(serve)


def _unbuffered_output() -> None:
    """sys.stdout and sys.stderr as PYTHONUNBUFFERED makes them in a new interpreter: what
    the server prints is out at once, and nothing waits in a buffer its children would copy."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        setattr(sys, name, io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), write_through=True,
                                            encoding=getattr(old, "encoding", None) or "utf-8",
                                            errors=getattr(old, "errors", None) or "strict"))


def _forget_flow_module(flow_file: str) -> None:
    """Drop the runtime's copy of the user's module, so the server imports the file anew, as a
    server started as a new interpreter would: the runtime's copy may have been changed
    by what ran in the runtime (parameter defaults, configs)."""
    path = os.path.abspath(flow_file)
    for name, module in list(sys.modules.items()):
        if name != "__main__" and getattr(module, "__file__", None) == path:
            del sys.modules[name]
