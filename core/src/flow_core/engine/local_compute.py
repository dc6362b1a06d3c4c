"""The default local compute: tasks forked from a warm fork server, a process each.

Every task still runs in its own process, with its own output and exit status, exactly as
on the portable path (`flow_core.backends.subprocess_compute`); it only skips starting an interpreter
and importing everything again. One I/O thread in the runtime reads every task's output
pipes and the fork server's messages, so a thousand tasks cost no thousand threads, and it
applies the tasks' relayed metadata writes in batches before reporting them finished.
"""

from __future__ import annotations

import itertools
import os
import queue
import selectors
import socket
import subprocess
import sys
import threading

import attrs

from flow_core.backends.compute import ComputeBackend, TaskEvents, TaskHandle, TaskSpec
from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.selection import Backends
from flow_core.backends.subprocess_compute import killed_reason
from flow_core.engine.fork_protocol import receive_message, send_message, stop_forked_task
from flow_core.engine.metadata_path import RelayedCalls, apply_relayed
from flow_core.errors import FlowError
from flow_core.plugin.settings import Settings

READ_SIZE = 65536


@attrs.define(eq=False)
class _ForkedTask:
    key: str
    spec: TaskSpec
    events: TaskEvents
    pipes: dict[int, str]  # read end -> stream name ("stdout", "stderr" or "metadata")
    relayed: RelayedCalls
    partial: dict[str, bytes] = attrs.Factory(dict)
    pid: int | None = None
    status: int | None = None
    reason: str | None = None
    stop_requested: bool = False

    def done(self) -> bool:
        return self.status is not None and not self.pipes


class ForkedTaskHandle(TaskHandle):
    def __init__(self, compute: "LocalCompute", task: _ForkedTask):
        self.compute = compute
        self.task = task

    def terminate(self) -> None:
        with self.compute._lock:
            self.task.stop_requested = True
            pid = self.task.pid
        if pid is not None and self.task.status is None:
            stop_forked_task(pid)


class LocalCompute(ComputeBackend):
    """Forks each task from a fork server started on the first launch of a run."""

    name = "local"

    def __init__(self, metadata: MetadataBackend) -> None:
        self.metadata = metadata
        self._relayed_calls: list[tuple[str, list]] = []
        self._finished: list[_ForkedTask] = []  # reported once their metadata is written
        self._lock = threading.Lock()
        self._server: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._tasks: dict[str, _ForkedTask] = {}
        self._keys = itertools.count(1)
        self._new_pipes: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe()
        self._io_thread: threading.Thread | None = None
        self._closed = False
        self._server_errors = b""  # what the fork server itself printed: why it died, if it did

    @classmethod
    def from_settings(cls, settings: Settings, backends: Backends) -> "LocalCompute":
        return cls(backends.metadata)

    # -- the runtime's side -------------------------------------------------------------------

    def _start_server(self, spec: TaskSpec) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**os.environ, **spec.environment, "PYTHONUNBUFFERED": "1"}
        self._server = subprocess.Popen(
            [sys.executable, "-m", "flow_core.engine.fork_server", str(theirs.fileno()), spec.flow_file,
             spec.flow_name],
            env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=[theirs.fileno()],
            start_new_session=True,  # Ctrl-C reaches the runtime, which stops tasks in order
        )
        theirs.close()
        self._sock = ours
        self._io_thread = threading.Thread(target=self._io_loop, name="flow-local-io", daemon=True)
        self._io_thread.start()
        return ours

    def launch(self, spec: TaskSpec, events: TaskEvents) -> TaskHandle:
        sock = self._sock or self._start_server(spec)
        key = str(next(self._keys))
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        metadata_read, metadata_write = os.pipe()
        task = _ForkedTask(key, spec, events, {out_read: "stdout", err_read: "stderr", metadata_read: "metadata"},
                           RelayedCalls(self._relayed_calls))
        with self._lock:
            self._tasks[key] = task
        self._new_pipes.put(task)
        os.write(self._wake_write, b"\0")
        message = {
            "op": "launch", "key": key, "env": dict(spec.environment),
            "task": {
                "flow_file": spec.flow_file, "flow_name": spec.flow_name, "step_name": spec.step_name,
                "run_id": spec.run_id, "task_id": spec.task_id, "input_paths": list(spec.input_paths),
                "split_index": spec.split_index, "retry_count": spec.retry_count,
                "max_user_code_retries": spec.max_user_code_retries, "tags": list(spec.tags),
                "decospecs": list(spec.decospecs),
            },
        }
        try:
            send_message(sock, message, [out_write, err_write, metadata_write])
        except OSError:
            with self._lock:
                task.status = 1
        finally:
            for fd in (out_write, err_write, metadata_write):
                os.close(fd)
        return ForkedTaskHandle(self, task)

    def close(self) -> None:
        self._closed = True
        if self._sock is not None:
            self._sock.shutdown(socket.SHUT_RDWR)  # the server stops leftover children and exits
        if self._server is not None:
            try:
                self._server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._server.kill()
        if self._io_thread is not None:
            os.write(self._wake_write, b"\0")
            self._io_thread.join(timeout=5)

    # -- the I/O thread -----------------------------------------------------------------------

    def _io_loop(self) -> None:
        selector = selectors.DefaultSelector()
        assert self._sock is not None
        selector.register(self._sock, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        assert self._server is not None and self._server.stderr is not None
        selector.register(self._server.stderr, selectors.EVENT_READ)
        server_alive = True
        while server_alive or self._tasks:
            while not self._new_pipes.empty():
                task = self._new_pipes.get()
                for fd in task.pipes:
                    selector.register(fd, selectors.EVENT_READ, task)
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is self._sock:
                    server_alive = self._on_message()
                    if not server_alive:
                        selector.unregister(self._sock)
                elif key.fd == self._wake_read:
                    os.read(self._wake_read, 4096)
                elif key.fileobj is self._server.stderr:
                    chunk = os.read(key.fd, READ_SIZE)
                    self._server_errors = (self._server_errors + chunk)[-4096:]
                    if not chunk:
                        selector.unregister(key.fileobj)
                else:
                    self._on_output(selector, key.fd, key.data)
            if not server_alive:
                self._fail_orphans()
            self._report_finished()
            if self._closed and not self._tasks:
                break
        selector.close()

    def _on_message(self) -> bool:
        try:
            message, _fds = receive_message(self._sock)  # type: ignore[arg-type]
        except OSError:
            message = None
        if message is None:
            return False
        with self._lock:
            task = self._tasks.get(message["key"])
        if task is None:
            return True
        if message["op"] == "started":
            with self._lock:
                task.pid = message["pid"]
                stop = task.stop_requested
            if stop:
                stop_forked_task(task.pid)
        elif message["op"] == "exited":
            task.status = message["status"]
            self._finish_if_done(task)
        return True

    def _on_output(self, selector: selectors.BaseSelector, fd: int, task: _ForkedTask) -> None:
        stream = task.pipes[fd]
        chunk = os.read(fd, READ_SIZE)
        if chunk and stream == "metadata":
            task.relayed.feed(chunk)
            return
        if chunk:
            data = task.partial.pop(stream, b"") + chunk
            *lines, rest = data.split(b"\n")
            for line in lines:
                task.events.output(task.spec, stream, line.decode("utf-8", "replace"))
            if rest:
                task.partial[stream] = rest
            return
        selector.unregister(fd)
        os.close(fd)
        del task.pipes[fd]
        rest = task.partial.pop(stream, b"")
        if rest:
            task.events.output(task.spec, stream, rest.decode("utf-8", "replace"))
        self._finish_if_done(task)

    def _finish_if_done(self, task: _ForkedTask) -> None:
        if task.done():
            with self._lock:
                self._tasks.pop(task.key, None)
            self._finished.append(task)

    def _report_finished(self) -> None:
        """Write the relayed metadata of this round in one batch, then report the tasks that
        ended: the runtime must never see a task finished before its record says so."""
        calls, self._relayed_calls[:] = list(self._relayed_calls), []
        failure = None
        try:
            apply_relayed(self.metadata, calls)
        except FlowError as exc:
            failure = f"its metadata could not be recorded: {exc}"
        finished, self._finished = self._finished, []
        for task in finished:
            status = task.status if task.status is not None else 1
            if failure and status == 0:
                status, task.reason = 1, failure
            task.events.finished(task.spec, status, task.reason or killed_reason(status))

    def _fail_orphans(self) -> None:
        """The fork server is gone: a task it never reported on has failed (its pipes close
        when the last process holding them ends)."""
        with self._lock:
            orphans = [t for t in self._tasks.values() if t.status is None]
        lines = self._server_errors.decode("utf-8", "replace").strip().splitlines()
        why = lines[-1].removeprefix("Error: ") if lines else "the fork server stopped"
        for task in orphans:
            task.status = 1
            task.reason = why
            self._finish_if_done(task)
