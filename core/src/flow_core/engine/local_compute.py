"""The default local compute: tasks forked from a warm fork server, a process each.

Every task still runs in its own process, with its own output and exit status, exactly as
on the portable path (`flow_core.backends.subprocess_compute`); it only skips starting an interpreter
and importing everything again. One I/O thread in the runtime reads every task's output
pipes and the fork server's messages, so a thousand tasks cost no thousand threads, and it
applies the tasks' relayed metadata writes in batches before reporting them finished. It
keeps what each task prints and hands it back when the task asks for its logs
(`flow_core.engine.relayed_output`).

The fork server's socket closes the moment the server dies, so its death is noticed at once:
its running tasks (whose parent it was) are stopped, not left to run unwatched, and reported
failed with the reason. A later launch (a retry) starts a new fork server.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import queue
import selectors
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import traceback

import attrs

from flow_core.backends.compute import ComputeBackend, TaskEvents, TaskHandle, TaskSpec
from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.selection import Backends
from flow_core.backends.subprocess_compute import killed_reason
from flow_core.engine.fork_protocol import receive_message, send_message, stop_forked_task, write_frame
from flow_core.engine.fork_server_process import ForkedServerProcess, can_fork_server, fork_server
from flow_core.engine.live_log_saver import interval_seconds
from flow_core.engine.metadata_path import RelayedCalls, apply_relayed
from flow_core.engine.relayed_output import OUTPUT_REQUEST, KeptOutput, LiveLogKeeper
from flow_core.errors import FlowError
from flow_core.plugin.settings import LIVE_LOGS_MAX_INTERVAL, LIVE_LOGS_MIN_INTERVAL, Settings

READ_SIZE = 65536
#: Once the fork server is gone: seconds its tasks get to end on SIGTERM before SIGKILL, and
#: seconds after which the runtime stops waiting for their output pipes to close.
ORPHAN_KILL_AFTER = 2.0
ORPHAN_GIVE_UP_AFTER = 4.0
#: The longest a task's start record waits to share a transaction with the records of tasks
#: that end (a short task's start and end then cost one transaction, not two). It never waits
#: past the task's first line of output or its end.
RECORD_STARTS_WITHIN = 0.5
CHANNEL = "channel"


@attrs.define(eq=False)
class _Server:
    """One fork server process and the runtime's end of its socket."""

    process: subprocess.Popen | ForkedServerProcess
    sock: socket.socket
    errors: bytes = b""  # what the server itself printed: why it died, if it did
    stderr_open: bool = True
    gone: str | None = None  # why it is gone, once the I/O thread noticed
    gone_at: float = 0.0


@attrs.define(eq=False)
class _ForkedTask:
    key: str
    spec: TaskSpec
    events: TaskEvents
    server: _Server
    pipes: dict[int, str]  # our end -> "stdout", "stderr" or "channel" (its records, its request for its output)
    relayed: RelayedCalls
    output: KeptOutput | None = attrs.Factory(KeptOutput)  # None once handed back
    partial: dict[str, bytes] = attrs.Factory(dict)
    pid: int | None = None
    status: int | None = None
    exited: bool = False  # the server reported the exit status
    reason: str | None = None
    stop_requested: bool = False
    killed: bool = False  # SIGKILLed after its server died

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
    """Forks each task from a fork server: forked from the runtime when the runtime prepares
    the run, or else started on the first launch."""

    name = "local"

    def __init__(self, metadata: MetadataBackend, live_logs: LiveLogKeeper | None = None) -> None:
        self.metadata = metadata
        self._live_logs = live_logs
        self._relayed_calls: list[tuple[str, list]] = []
        self._calls_waiting_since: float | None = None
        self._unrecorded: str | None = None  # why records written early, with output, failed
        self._finished: list[_ForkedTask] = []  # reported once their metadata is written
        self._lock = threading.Lock()
        self._current: dict[str, _Server] = {}  # the one new tasks go to, by interpreter
        self._servers: list[_Server] = []  # every one this compute started
        self._tasks: dict[str, _ForkedTask] = {}
        self._keys = itertools.count(1)
        self._new: queue.SimpleQueue = queue.SimpleQueue()  # tasks and servers for the I/O thread
        self._wake_read, self._wake_write = os.pipe()
        self._io_thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, backends: Backends) -> "LocalCompute":
        live_logs = LiveLogKeeper(backends.storage, interval_seconds(settings, LIVE_LOGS_MIN_INTERVAL),
                                  interval_seconds(settings, LIVE_LOGS_MAX_INTERVAL))
        return cls(backends.metadata, live_logs)

    # -- the runtime's side -------------------------------------------------------------------

    def prepare(self, spec: TaskSpec) -> None:
        """Fork the run's fork server from the runtime now (see
        `flow_core.engine.fork_server_process`), when it serves this interpreter and the
        runtime has no thread yet."""
        with self._lock:
            if spec.python != sys.executable or spec.python in self._current or not can_fork_server():
                return
            self._current[spec.python] = self._start_server(spec, fork=True)

    def _start_server(self, spec: TaskSpec, fork: bool = False) -> _Server:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process: subprocess.Popen | ForkedServerProcess
        if fork:
            process = fork_server(theirs, ours, spec.flow_file, spec.flow_name, spec.environment)
        else:
            process = subprocess.Popen(
                [spec.python, "-m", "flow_core.engine.fork_server", str(theirs.fileno()), spec.flow_file,
                 spec.flow_name],
                env={**os.environ, **spec.environment, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE, pass_fds=[theirs.fileno()],
                start_new_session=True,  # Ctrl-C reaches the runtime, which stops tasks in order
            )
        theirs.close()
        server = _Server(process, ours)
        self._servers.append(server)
        self._new.put(server)
        if self._io_thread is None:
            self._io_thread = threading.Thread(target=self._io_loop, name="flow-local-io", daemon=True)
            self._io_thread.start()
        else:
            os.write(self._wake_write, b"\0")
        return server

    def launch(self, spec: TaskSpec, events: TaskEvents) -> TaskHandle:
        key = str(next(self._keys))
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        channel, channel_theirs = ours.detach(), theirs.detach()
        with self._lock:
            # A step with an interpreter of its own (@pypi) gets a fork server of that interpreter.
            server = self._current.get(spec.python)
            if server is None or server.gone is not None:  # the first task, or its server died
                server = self._current[spec.python] = self._start_server(spec)
            task = _ForkedTask(key, spec, events, server,
                               {out_read: "stdout", err_read: "stderr", channel: CHANNEL},
                               RelayedCalls(self._relayed_calls))
            self._tasks[key] = task
        if self._live_logs is not None:
            self._live_logs.watch(f"{spec.flow_name}/{spec.run_id}/{spec.step_name}/{spec.task_id}",
                                  spec.retry_count, task.output)
        # No need to wake the I/O thread: the server's answer (or its socket closing) will,
        # and the thread takes the task's pipes on then. Until then they just fill.
        self._new.put(task)
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
            send_message(server.sock, message, [out_write, err_write, channel_theirs])
        except OSError as exc:
            with self._lock:  # if the server died, noticing it gives the task that reason instead
                task.status = 1
                task.reason = task.reason or (
                    server.gone or f"the fork server (pid {server.process.pid}) could not take the task: {exc}")
            os.write(self._wake_write, b"\0")  # no answer will come to wake the I/O thread
        finally:
            for fd in (out_write, err_write, channel_theirs):
                os.close(fd)
        return ForkedTaskHandle(self, task)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            servers = [server for server in self._current.values() if server.gone is None]
        for server in servers:
            try:
                server.sock.shutdown(socket.SHUT_RDWR)  # the server stops leftover children and exits
            except OSError:
                pass
        for server in servers:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
        if self._io_thread is not None:
            os.write(self._wake_write, b"\0")
            self._io_thread.join(timeout=5)
        for each in self._servers:
            each.process.poll()  # reap a dead one
            if self._io_thread is None or not self._io_thread.is_alive():
                each.sock.close()
        if self._live_logs is not None:
            self._live_logs.close()

    # -- the I/O thread -----------------------------------------------------------------------

    def _io_loop(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_read, selectors.EVENT_READ, None)
        try:
            self._serve_io(selector)
        except Exception as exc:  # a bug here must fail the tasks, not hang the run
            traceback.print_exc()
            with self._lock:
                stuck, self._tasks = list(self._tasks.values()), {}
            finished, self._finished = self._finished, []
            for task in stuck:
                for fd in task.pipes:  # a task waiting for its output gets EOF and goes on
                    with contextlib.suppress(OSError):
                        os.close(fd)
                task.pipes.clear()
            for task in [*finished, *stuck]:
                task.events.finished(task.spec, 1, f"the local compute's I/O thread failed: {exc!r}")
        finally:
            selector.close()

    def _serve_io(self, selector: selectors.BaseSelector) -> None:
        while True:
            self._register_new(selector)
            timeout = 0.2 if self._stranded() else 1.0
            if self._calls_waiting_since is not None:
                timeout = min(timeout, RECORD_STARTS_WITHIN)
            ready = selector.select(timeout=timeout)
            # Channels first: a task's records written before its output are read before it.
            ready.sort(key=lambda event: not (isinstance(event[0].data, _ForkedTask)
                                               and event[0].data.pipes.get(event[0].fd) == CHANNEL))
            for key, _ in ready:
                data = key.data
                if data is None:
                    os.read(self._wake_read, 4096)
                elif isinstance(data, _ForkedTask):
                    if key.fd in data.pipes:
                        self._on_output(selector, key.fd, data)
                elif key.fileobj is data.sock:
                    if not self._on_message(selector, data):
                        selector.unregister(data.sock)
                        self._on_server_gone(selector, data)
                elif data.stderr_open:  # not drained already by _on_server_gone in this round
                    self._read_server_errors(selector, data)
            self._stop_stranded(selector)
            self._report_finished()
            with self._lock:
                if self._closed and not self._tasks:
                    return

    def _register_new(self, selector: selectors.BaseSelector) -> None:
        while not self._new.empty():
            item = self._new.get()
            if isinstance(item, _Server):
                selector.register(item.sock, selectors.EVENT_READ, item)
                assert item.process.stderr is not None
                selector.register(item.process.stderr, selectors.EVENT_READ, item)
            else:
                for fd in item.pipes:
                    selector.register(fd, selectors.EVENT_READ, item)

    def _read_server_errors(self, selector: selectors.BaseSelector, server: _Server) -> None:
        assert server.process.stderr is not None
        chunk = os.read(server.process.stderr.fileno(), READ_SIZE)
        server.errors = (server.errors + chunk)[-4096:]
        if not chunk:
            selector.unregister(server.process.stderr)
            server.process.stderr.close()
            server.stderr_open = False

    def _on_message(self, selector: selectors.BaseSelector, server: _Server) -> bool:
        try:
            message, _fds = receive_message(server.sock)
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
            task.exited = True
            self._let_go(selector, task)
            self._finish_if_done(task)
        return True

    def _let_go(self, selector: selectors.BaseSelector, task: _ForkedTask) -> None:
        """The task's process ended: read what its pipes and channel still hold (all it
        wrote), then close them. A background process the step left running may hold them
        open; what it writes later is not the task's, and the task must not wait for it."""
        self._register_new(selector)
        for fd in list(task.pipes):
            self._drain(selector, fd, task)
            if fd in task.pipes:
                self._close_pipe(selector, fd, task)

    def _drain(self, selector: selectors.BaseSelector, fd: int, task: _ForkedTask) -> None:
        """Read what one of the task's pipes holds now, and no more: a writer that never
        pauses (a background process) must not keep the I/O thread here."""
        left = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        while left > 0 and fd in task.pipes:
            left -= self._on_output(selector, fd, task, min(left, READ_SIZE)) or left

    def _on_server_gone(self, selector: selectors.BaseSelector, server: _Server) -> None:
        """The server's socket closed: it died (or, at the end of the run, stopped). Stop the
        tasks it had not reported on: they are running with nobody to report their end."""
        why = self._why_gone(selector, server)
        with self._lock:
            server.gone, server.gone_at = why, time.monotonic()
            orphans = [t for t in self._tasks.values() if t.server is server and not t.exited]
            for task in orphans:
                task.status = 1 if task.status is None else task.status
                task.reason = why
        for task in orphans:
            if task.pid is not None:
                stop_forked_task(task.pid)
            self._finish_if_done(task)

    def _why_gone(self, selector: selectors.BaseSelector, server: _Server) -> str:
        try:  # it is gone or going: wait for its last words and its exit status
            server.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        if server.stderr_open:
            assert server.process.stderr is not None
            os.set_blocking(server.process.stderr.fileno(), False)
            try:
                while server.stderr_open:
                    self._read_server_errors(selector, server)
            except BlockingIOError:
                pass
        lines = server.errors.decode("utf-8", "replace").strip().splitlines()
        errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
        if errors:
            return errors[-1]
        if self._closed:
            return "the fork server stopped at the end of the run"
        code = server.process.returncode
        if code is None:
            how = "closed its connection"
        elif code < 0:
            how = f"killed by {signal.Signals(-code).name}"
        else:
            how = f"exit status {code}"
        return f"the fork server (pid {server.process.pid}) died ({how}); its tasks were stopped"

    def _stranded(self) -> list[_ForkedTask]:
        """Tasks whose server is gone and whose output pipes are still open."""
        with self._lock:
            return [t for t in self._tasks.values() if t.server.gone is not None and t.pipes]

    def _stop_stranded(self, selector: selectors.BaseSelector) -> None:
        """SIGKILL a stranded task that ignored SIGTERM; in the end, stop waiting for its pipes
        (a task forked a moment before its server died was never named to the runtime)."""
        now = time.monotonic()
        for task in self._stranded():
            waited = now - task.server.gone_at
            if waited >= ORPHAN_KILL_AFTER and task.pid is not None and not task.killed:
                task.killed = True
                stop_forked_task(task.pid, signal.SIGKILL)
            if waited >= ORPHAN_GIVE_UP_AFTER:
                for fd in list(task.pipes):
                    self._close_pipe(selector, fd, task)
                self._finish_if_done(task)

    def _on_output(self, selector: selectors.BaseSelector, fd: int, task: _ForkedTask, size: int = READ_SIZE) -> int:
        """Read one chunk from one of the task's pipes; its size (0: the pipe closed)."""
        stream = task.pipes[fd]
        try:
            chunk = os.read(fd, size)
        except OSError:  # the task's end of the channel reset: as good as closed
            chunk = b""
        if chunk and stream == CHANNEL:
            if task.relayed.feed(chunk, (OUTPUT_REQUEST,)):
                self._answer_output(selector, fd, task)
        elif chunk:
            if self._relayed_calls:  # whoever sees the output may look for the task's record
                self._unrecorded = self._record_relayed() or self._unrecorded
            if task.output is not None:
                task.output.add(stream, chunk)
            data = task.partial.pop(stream, b"") + chunk
            *lines, rest = data.split(b"\n")
            for line in lines:
                task.events.output(task.spec, stream, line.decode("utf-8", "replace"))
            if rest:
                task.partial[stream] = rest
        else:
            self._close_pipe(selector, fd, task)
            self._finish_if_done(task)
        return len(chunk)

    def _answer_output(self, selector: selectors.BaseSelector, channel: int, task: _ForkedTask) -> None:
        """The task's step is over and it asks for its output: read what its pipes still
        hold (all it wrote before asking is there by now), then send it all back."""
        for fd, stream in list(task.pipes.items()):
            if stream != CHANNEL:
                self._drain(selector, fd, task)
        output, task.output = task.output, None  # what comes later is a background process's
        if output is None:
            return
        live_saved = self._live_logs.stop(output) if self._live_logs is not None else False
        try:
            write_frame(channel, output.answer(live_saved))
        except OSError:  # the task died meanwhile; its end is reported as usual
            pass

    def _close_pipe(self, selector: selectors.BaseSelector, fd: int, task: _ForkedTask) -> None:
        stream = task.pipes.pop(fd)
        selector.unregister(fd)
        os.close(fd)
        rest = task.partial.pop(stream, b"")
        if rest:
            task.events.output(task.spec, stream, rest.decode("utf-8", "replace"))

    def _finish_if_done(self, task: _ForkedTask) -> None:
        if task.done():
            with self._lock:
                if self._tasks.pop(task.key, None) is None:
                    return
            if self._live_logs is not None and task.output is not None:
                self._live_logs.stop(task.output)
            self._finished.append(task)

    def _record_relayed(self) -> str | None:
        """Write the relayed metadata calls collected so far in one batch; why not, if it failed."""
        self._calls_waiting_since = None
        calls, self._relayed_calls[:] = list(self._relayed_calls), []
        try:
            apply_relayed(self.metadata, calls)
        except FlowError as exc:
            return f"its metadata could not be recorded: {exc}"
        return None

    def _report_finished(self) -> None:
        """Write the relayed metadata in one batch, then report the tasks that ended: the
        runtime must never see a task finished before its record says so. Records of tasks
        that only started wait a little for company (`RECORD_STARTS_WITHIN`)."""
        now = time.monotonic()
        if self._relayed_calls and self._calls_waiting_since is None:
            self._calls_waiting_since = now
        if not self._finished and (self._calls_waiting_since is None
                                   or now - self._calls_waiting_since < RECORD_STARTS_WITHIN):
            return
        failure = self._record_relayed() or self._unrecorded
        self._unrecorded = None
        finished, self._finished = self._finished, []
        for task in finished:
            status = task.status if task.status is not None else 1
            if failure and status == 0:
                status, task.reason = 1, failure
            task.events.finished(task.spec, status, task.reason or killed_reason(status))
