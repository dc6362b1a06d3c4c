"""A forked task's output, kept by the runtime instead of copied inside the task.

A task forked by the local fork server writes its stdout and stderr straight into pipes that
the runtime reads anyway, to print each line on the console. So the runtime keeps what it
reads, and when the step is over the task asks for it back over its channel to the runtime
(the socket its metadata records travel on) and stores it in its index as any task does.
Output from C extensions and subprocesses is kept as well as ``print``'s, in the order written.

The task then needs no pipes, no copying thread and no stream wrappers of its own
(`flow_core.engine.output_capture` is what a task started as a process of its own uses). On a
fork-per-task design those cost as much as the rest of a short task's bookkeeping: every
object they touch is a page the task copies from the fork server, and a second thread makes
each such copy dearer still (``benchmarks/task_profile.py``).

Since the runtime holds the output, it also saves a long task's output so far as the task's
live logs, on the schedule a task saving its own follows (`flow_core.engine.live_log_saver`),
so readers see the same either way.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any

import attrs

from flow_core.backends.storage import StorageBackend
from flow_core.datastore.live_logs import remove_live_logs, save_live_logs
from flow_core.engine.fork_protocol import read_frame, write_frame
from flow_core.engine.live_log_saver import save_delay
from flow_core.engine.output_capture import flush_python_streams

#: The call a task sends on its channel for its output; the runtime answers with one frame,
#: ``[stdout, stderr, live_saved]``.
OUTPUT_REQUEST = "return_output"
#: The most of one stream handed back (a frame holds at most 4 GiB); beyond it, the end.
MAX_RETURNED_BYTES = 1 << 30


class RelayedOutput:
    """``with RelayedOutput(...) as logs:`` around a forked task's step; afterwards
    ``logs.stdout`` and ``logs.stderr`` hold what the runtime read of each stream, and
    `remove_live` drops the live copies once the attempt's index holds them."""

    def __init__(self, channel_fd: int, storage: StorageBackend, pathspec: str, attempt: int) -> None:
        self.channel_fd = channel_fd
        self.storage = storage
        self.pathspec = pathspec
        self.attempt = attempt
        self.stdout = b""
        self.stderr = b""
        self.live_saved = False  #: whether the runtime saved live copies (`remove_live` drops them)

    def __enter__(self) -> RelayedOutput:
        # Each line leaves as it is printed, in one write: for the console, and so that a task
        # killed right after a print (a segfault in C code) has not left it in a buffer.
        flush_python_streams()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.reconfigure(line_buffering=True, write_through=False)  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):  # not a text stream of ours: left as it is
                pass
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        flush_python_streams()
        # Everything written so far is in the pipes before the request is on the channel, so
        # the runtime's answer holds all of it; what a background process the step left
        # running writes later is not the task's.
        try:
            write_frame(self.channel_fd, [OUTPUT_REQUEST, []])
            stdout, stderr, live_saved = read_frame(self.channel_fd)
        except (OSError, EOFError, ValueError, TypeError):
            return  # the runtime is gone: nobody is left to read this attempt's logs either
        self.stdout, self.stderr, self.live_saved = bytes(stdout), bytes(stderr), bool(live_saved)

    def remove_live(self) -> None:
        if self.live_saved:
            remove_live_logs(self.storage, self.pathspec, self.attempt)


@attrs.define(eq=False)
class KeptOutput:
    """What the runtime read of one task's output, by stream."""

    chunks: dict[str, list[bytes]] = attrs.Factory(lambda: {"stdout": [], "stderr": []})
    pieces: int = 0  #: grows with every chunk: a cheap "anything new?" for the live-log thread

    def add(self, stream: str, chunk: bytes) -> None:
        self.chunks[stream].append(chunk)
        self.pieces += 1

    def so_far(self) -> dict[str, bytes]:
        """Safe to call from another thread while chunks arrive (a list is copied whole)."""
        return {stream: b"".join(chunks[:]) for stream, chunks in self.chunks.items()}

    def answer(self, live_saved: bool) -> list[Any]:
        joined = self.so_far()
        for stream, data in joined.items():
            if len(data) > MAX_RETURNED_BYTES:
                dropped = len(data) - MAX_RETURNED_BYTES
                joined[stream] = f"[the first {dropped} bytes are not kept]\n".encode() + data[dropped:]
        return [joined["stdout"], joined["stderr"], live_saved]


@attrs.define(eq=False)
class _Watched:
    pathspec: str
    attempt: int
    output: KeptOutput
    started: float
    due: float
    seen: int = 0
    saved: bool = False
    saving: bool = False


class LiveLogKeeper:
    """Saves each running forked task's output so far as its live logs, from one thread for
    the whole run, only when the task wrote something since the last save."""

    def __init__(self, storage: StorageBackend, shortest: float, longest: float) -> None:
        self.storage = storage
        self.shortest = shortest
        self.longest = longest
        self._watched: dict[KeptOutput, _Watched] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, pathspec: str, attempt: int, output: KeptOutput) -> None:
        if self.shortest <= 0:  # live logs are off
            return
        now = time.monotonic()
        due = now + self.shortest
        with self._changed:
            # The thread waits for the first save due; it needs waking only if this one is sooner.
            wake = all(due < watched.due for watched in self._watched.values())
            self._watched[output] = _Watched(pathspec, attempt, output, now, due)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="flow-live-logs", daemon=True)
                self._thread.start()
            elif wake:
                self._changed.notify()

    def stop(self, output: KeptOutput) -> bool:
        """Stop saving the task's output, waiting out its save in progress (so none lands
        after the task removed its live copies); whether any was saved."""
        with self._changed:
            watched = self._watched.pop(output, None)
            while watched is not None and watched.saving:
                self._changed.wait()
        return watched is not None and watched.saved

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _due(self) -> list[_Watched] | None:
        """Wait until a save is due; None once closed."""
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                due = [w for w in self._watched.values() if w.due <= now]
                if due:
                    return due
                self._changed.wait(min((w.due for w in self._watched.values()), default=now + 60) - now)
        return None

    def _loop(self) -> None:
        while (due := self._due()) is not None:
            for watched in due:
                with self._changed:
                    if self._watched.get(watched.output) is not watched:
                        continue  # stopped meanwhile
                    watched.saving = True
                try:
                    self._save(watched)
                finally:
                    with self._changed:
                        watched.saving = False
                        now = time.monotonic()
                        watched.due = now + save_delay(now - watched.started, self.shortest, self.longest)
                        self._changed.notify_all()

    def _save(self, watched: _Watched) -> None:
        pieces = watched.output.pieces
        if pieces == watched.seen:
            return
        try:
            save_live_logs(self.storage, watched.pathspec, watched.attempt, watched.output.so_far())
            watched.seen, watched.saved = pieces, True
        except Exception:  # noqa: BLE001 -- tried again at the next tick; the run goes on
            pass
