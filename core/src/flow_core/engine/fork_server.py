"""The warm process local tasks fork from.

Starting a Python interpreter and importing flow-core, the plugins and the user's module
costs a few hundred milliseconds; forking a process that already did costs about one. The
fork server is started once per run, imports everything, and then forks one child per task.
It is single-threaded on purpose: only a process without threads can fork safely, which is
why the runtime (it has threads) does not fork tasks itself.

It talks to the runtime over a ``SOCK_SEQPACKET`` Unix socket, one msgpack message per
packet: the runtime sends ``launch`` with the task's arguments and, as passed file
descriptors, the pipes the child's stdout and stderr go to and its channel to the runtime
(its metadata writes, `flow_core.engine.metadata_path`, and the request for its output,
`flow_core.engine.relayed_output`); the server answers
``started`` (with the child's pid, for Ctrl-C) and ``exited`` (with its exit status). When
the runtime goes away, the server stops its children and exits; when the server dies, the
runtime stops the children it was told of, and on Linux the kernel stops the others.
"""

from __future__ import annotations

import ctypes
import faulthandler
import gc
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from flow_core.backends.selection import Backends
from flow_core.engine.fork_protocol import end_forked_child, receive_message, send_message, stop_forked_task
from flow_core.engine.metadata_path import MetadataRelay
from flow_core.engine.task import TaskArguments, TaskRunner
from flow_core.engine.task_prelude import Prelude, TaskPreludes
from flow_core.errors import FlowError
from flow_core.model.graph import FlowGraph
from flow_core.model.loader import load_flow_class

PR_SET_PDEATHSIG = 1


def parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a function a child calls to be sent SIGTERM when its parent dies: a task
    forked a moment before the server died was never named to the runtime, which could not
    stop it otherwise."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


class ForkServer:
    def __init__(self, sock: socket.socket, flow_file: str, flow_name: str):
        self.sock = sock
        self.pid = os.getpid()
        self.children: dict[int, str] = {}  # pid -> the runtime's key for the task
        self._arm_parent_death = parent_death_signal()
        self._warm_up(flow_file, flow_name)

    def _warm_up(self, flow_file: str, flow_name: str) -> None:
        """Import and build everything a task needs, once, so each child starts ready."""
        self.flow_cls = load_flow_class(flow_file, flow_name)
        self.graph = FlowGraph(self.flow_cls, flow_file)
        self.backends = Backends.configured()
        self.backends.registry.backend_class("metadata", self.backends.settings.backend_name("metadata"))
        self.backends.step_decorators  # imports the decorator modules of every plugin
        self.backends.storage.warm_up()
        self.preludes = TaskPreludes(self.flow_cls, self.graph, self.backends)

    def serve(self) -> None:
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd hears it
        self._wake_fds = (wake_read, wake_write)
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(wake_read, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self.sock:
                        message, fds = receive_message(self.sock)
                        if message is None:
                            return
                        self._launch(message, fds)
                    else:
                        os.read(wake_read, 4096)
                self._reap()
        finally:
            for pid in self.children:
                stop_forked_task(pid)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            key = self.children.pop(pid, None)
            if key is not None:
                send_message(self.sock, {"op": "exited", "key": key, "status": os.waitstatus_to_exitcode(status)})

    def _launch(self, message: dict[str, Any], fds: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        prelude = self.preludes.prepare(message["task"], message["env"])
        # Children must not copy the warm objects' pages by merely garbage-collecting them.
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            self._child(message, fds, prelude)  # never returns
        for fd in fds:
            os.close(fd)
        self.children[pid] = message["key"]
        send_message(self.sock, {"op": "started", "key": message["key"], "pid": pid})

    def _child(self, message: dict[str, Any], fds: list[int], prelude: Prelude) -> NoReturn:
        end_forked_child(lambda: self._run_child(message, fds, prelude))

    def _run_child(self, message: dict[str, Any], fds: list[int], prelude: Prelude) -> int:
        if self._arm_parent_death is not None:
            self._arm_parent_death()
            if os.getppid() != self.pid:  # the server died before that took effect
                return 1
        gc.enable()
        os.setsid()  # its own process group: stopping it stops what it started too
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        out_fd, err_fd, channel_fd = fds
        os.set_inheritable(channel_fd, False)  # a shell the step starts must not hold it open
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        for fd in (out_fd, err_fd, *self._wake_fds):
            os.close(fd)
        self.sock.close()
        os.environ.update(prelude.env_changes)
        return self._run_task(message["task"], prelude, channel_fd)

    def _run_task(self, task: dict[str, Any], prelude: Prelude, channel_fd: int) -> int:
        numpy = sys.modules.get("numpy")
        if numpy is not None:  # forked children would otherwise draw the same numbers
            numpy.random.seed()
        args = TaskArguments(**{k: tuple(v) if isinstance(v, list) else v for k, v in task.items()})
        try:
            backends = prelude.backends
            if backends is None:
                backends = Backends(self.backends.settings.with_environ(os.environ), self.backends.registry,
                                    storage=self.backends.storage)
            runner = TaskRunner(args, backends, MetadataRelay(channel_fd), flow_cls=self.flow_cls, graph=self.graph,
                                decorators=prelude.decorators, opened_parents=prelude.opened_parents,
                                output_channel=channel_fd)
            return runner.run()
        except FlowError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1


def main(argv: list[str]) -> None:
    fd, flow_file, flow_name = int(argv[0]), argv[1], argv[2]
    sock = socket.socket(fileno=fd)
    try:
        server = ForkServer(sock, flow_file, flow_name)
    except BaseException as exc:  # the runtime reports the tasks as failed; say why here
        print(f"Error: the fork server could not load {flow_file}: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    gc.disable()  # the server allocates little between forks; see _launch
    # A child's fd 2 is its task's stderr: a crash in C code prints its Python traceback there.
    faulthandler.enable()
    server.serve()


if __name__ == "__main__":
    main(sys.argv[1:])
