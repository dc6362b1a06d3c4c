"""Capturing a task's output while it still reaches the console, inside the task: what a
task started as a process of its own uses (``flow step``: a subprocess, a Batch container). A
task forked by the local fork server leaves it to the runtime (`flow_core.engine.relayed_output`).

The capture is at the file-descriptor level, so output from C extensions and from
subprocesses the step starts is kept too, not only what Python's ``print`` writes. One
thread copies both streams (a task is short-lived; a thread each would double the cost).

What Python itself writes (``print``, tracebacks) does not wait for that thread: each line
goes straight on to the console (the runtime, which keeps it) as it is printed. A task killed
by a signal -- a segfault in C code right after a ``print`` -- dies before the copying thread
runs again, and what it printed last must not die with it (Metaflow's tasks run unbuffered
for the same reason).
"""

from __future__ import annotations

import _thread
import faulthandler
import io
import os
import selectors
import sys
import time
from typing import Callable

STREAMS = {"stdout": 1, "stderr": 2}
#: The longest the end of a task waits for its output to be copied out (a safety net: a
#: background process writing without pause would otherwise keep the pipe from running dry).
MAX_DRAIN_SECONDS = 120.0
_WAKE = object()


def flush_python_streams() -> None:
    """Flush sys.stdout and sys.stderr, whatever the step made of them (replaced, closed)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass


class _WriteThrough(io.RawIOBase):
    """Where a task's ``sys.stdout``/``sys.stderr`` write while captured: kept, and written
    on to the console at once. Once the capture ends it writes to the stream's own descriptor,
    for anything (a logging handler) that kept hold of it."""

    def __init__(self, chunks: list[bytes], name: str, console_fd: int) -> None:
        super().__init__()
        self._chunks: list[bytes] | None = chunks
        self._name = name
        self._fd = console_fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return STREAMS[self._name]

    def write(self, data: bytes) -> int:  # type: ignore[override]
        data = bytes(data)
        if self._chunks is not None:
            self._chunks.append(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        return len(data)

    def detach_capture(self) -> None:
        self._chunks = None
        self._fd = STREAMS[self._name]


def _line_buffered(stream: object, raw: _WriteThrough) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding=getattr(stream, "encoding", None) or "utf-8",
                            errors=getattr(stream, "errors", None) or "strict", line_buffering=True)


class _CopyingThread:
    """The thread that copies a capture's pipes, started with `_thread` rather than
    `threading.Thread`: threading's bookkeeping (its registry, the Event it waits on until
    the new thread runs) costs a short task more than the copying. It also keeps the copying
    out of ``threading.enumerate()``, where a step has no business meeting it."""

    def __init__(self, target: Callable[[], None]) -> None:
        self._running = _thread.allocate_lock()
        self._running.acquire()

        def run() -> None:
            try:
                target()
            finally:
                self._running.release()

        _thread.start_new_thread(run, ())

    def join(self, timeout: float) -> None:
        if self._running.acquire(timeout=timeout):
            self._running.release()

    def is_alive(self) -> bool:
        return self._running.locked()


#: ``(seconds, callback)``: have the copying thread call ``callback(capture)`` once, that many
#: seconds after the capture starts, if it is still running then. It is what lets a task start
#: a thread of its own only if it lives that long: most tasks end sooner, and starting a
#: thread costs more than the rest of the capture.
Later = tuple[float, Callable[["OutputCapture"], None]]


class OutputCapture:
    """``with OutputCapture() as logs: ...`` then ``logs.stdout`` and ``logs.stderr`` (bytes)."""

    def __init__(self, later: Later | None = None) -> None:
        self.stdout = b""
        self.stderr = b""
        self._later = later  #: with its delay turned into a `time.monotonic()` deadline on entering

    def __enter__(self) -> "OutputCapture":
        flush_python_streams()
        self._saved: dict[str, int] = {}
        self._reads: dict[int, str] = {}
        self._chunks: dict[str, list[bytes]] = {name: [] for name in STREAMS}
        for name, fd in STREAMS.items():
            self._saved[name] = os.dup(fd)
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            self._reads[read_end] = name
        # A crash in C code kills the process before the pump copies what is left in the pipe:
        # the Python traceback of a segfault goes straight to the real stderr instead.
        self._faults_were_on = faulthandler.is_enabled()
        faulthandler.enable(file=self._saved["stderr"])
        self._python_streams = self._write_through()
        self._ending = False  #: set once the step is over: stop when the pipes run dry
        if self._later is not None:
            seconds, callback = self._later
            self._later = (time.monotonic() + seconds, callback)
        self._wake_read, self._wake_write = os.pipe()
        self._thread = _CopyingThread(self._pump)
        return self

    def _call_if_due(self) -> float | None:
        """Run the ``later`` callback if its time came; the seconds until it is due, or None."""
        if self._later is None or self._ending:
            return None
        due, callback = self._later
        left = due - time.monotonic()
        if left > 0:
            return left
        self._later = None
        try:
            callback(self)
        except Exception:  # noqa: BLE001 -- the copying must go on whatever the callback does
            pass
        return None

    def pieces(self) -> int:
        """How many pieces of output were captured so far: it grows with every write, so a
        thread polling it knows cheaply whether there is anything new."""
        return sum(len(chunks) for chunks in self._chunks.values())

    def so_far(self) -> dict[str, bytes]:
        """What each stream has captured so far; safe to call from another thread while the
        capture runs (the lists only grow, and a copy of one is taken whole)."""
        return {name: b"".join(chunks[:]) for name, chunks in self._chunks.items()}

    def _write_through(self) -> dict[str, tuple[object, io.TextIOWrapper, _WriteThrough]]:
        """Point ``sys.stdout``/``sys.stderr`` (when they are the process's fds 1 and 2) at
        line-buffered writers that keep each line and pass it on at once."""
        replaced = {}
        for name, fd in STREAMS.items():
            stream = getattr(sys, name)
            try:
                if stream.fileno() != fd:
                    continue
            except (AttributeError, ValueError, OSError):
                continue
            raw = _WriteThrough(self._chunks[name], name, self._saved[name])
            wrapper = _line_buffered(stream, raw)
            setattr(sys, name, wrapper)
            replaced[name] = (stream, wrapper, raw)
        return replaced

    def _pump(self) -> None:
        try:
            self._copy_until_done()
        except (OSError, ValueError):  # __exit__ gave up waiting and closed the pipes
            pass

    def _copy_until_done(self) -> None:
        """Copy until every pipe reaches EOF or, once the step is over, runs dry: what the task
        wrote is in the pipe by then, and a writer still holding it open is a background
        process the step left running, whose later output is not the task's."""
        with selectors.DefaultSelector() as selector:
            for read_end in self._reads:
                selector.register(read_end, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ, _WAKE)
            open_ends = len(self._reads)
            while open_ends:
                ready = selector.select(timeout=0 if self._ending else self._call_if_due())
                if not ready and self._ending:
                    return
                for key, _ in ready:
                    if key.data is _WAKE:
                        os.read(self._wake_read, 64)
                        continue
                    try:
                        chunk = os.read(key.fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        selector.unregister(key.fd)
                        open_ends -= 1
                        continue
                    name = self._reads[key.fd]
                    self._chunks[name].append(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(self._saved[name], view):]

    def __exit__(self, *exc_info: object) -> None:
        flush_python_streams()
        for name, (original, wrapper, raw) in self._python_streams.items():
            raw.detach_capture()
            if getattr(sys, name) is wrapper:
                setattr(sys, name, original)
        faulthandler.disable()
        if self._faults_were_on:
            faulthandler.enable()
        for name, fd in STREAMS.items():
            os.dup2(self._saved[name], fd)  # closes our pipe's last write end: the pump sees EOF
        # Everything the step wrote is in the pipes now. The pump copies it all, however long
        # a slow console takes; it stops early only on pipes a background process keeps open.
        self._thread.join(timeout=0.2)
        if self._thread.is_alive():
            self._ending = True
            os.write(self._wake_write, b"\0")
            self._thread.join(timeout=MAX_DRAIN_SECONDS)
        for read_end in self._reads:
            os.close(read_end)
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        for fd in (*self._saved.values(), self._wake_read, self._wake_write):
            os.close(fd)
        self.stdout = b"".join(self._chunks["stdout"])
        self.stderr = b"".join(self._chunks["stderr"])
