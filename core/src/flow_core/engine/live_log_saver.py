"""Saving a running task's output to the datastore while it runs, from inside the task.

The task itself saves (not the runtime that started it), so live logs work the same on every
compute: a subprocess, a Batch container. A task forked by the local fork server is the
exception: the runtime holds its output (`flow_core.engine.relayed_output`) and saves it on
the same schedule. The schedule is Metaflow's
(its ``mflog.update_delay``): frequent at first, when someone is likely watching a task they
just started, then slowing along a sigmoid to the longest interval after about twenty
minutes, so that a day-long task does not write its whole log every second. A save happens
only when the task wrote something since the last one, and never fails the task.

A task that ends before the first interval starts no thread and writes nothing: the thread
that copies its output anyway wakes once at the first interval and starts the saver's.
"""

from __future__ import annotations

import math
import threading
import time
from types import TracebackType

from flow_core.backends.storage import StorageBackend
from flow_core.datastore.live_logs import remove_live_logs, save_live_logs
from flow_core.engine.output_capture import Later, OutputCapture
from flow_core.errors import ConfigError
from flow_core.plugin.settings import LIVE_LOGS_MAX_INTERVAL, LIVE_LOGS_MIN_INTERVAL, Settings

#: How long the end of a task waits for a save in progress (a slow remote store) to finish.
STOP_WAIT_SECONDS = 10.0


def save_delay(seconds_since_start: float, shortest: float, longest: float) -> float:
    """The wait before the next save: ``shortest`` for the first ten minutes or so, then
    rising along a sigmoid (half-way at 15 minutes) to ``shortest + longest``."""
    rise = 1.0 / (1.0 + math.exp(9.0 - 0.01 * seconds_since_start))
    return shortest + rise * longest


def interval_seconds(settings: Settings, name: str) -> float:
    text = settings.get(name) or "0"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} is {text!r}, which is not a number of seconds; set it to one such as 1 or 30")
    return value


class LiveLogSaver:
    """``with LiveLogSaver(...) as live, OutputCapture(later=live.schedule()) as logs:``
    around a task's step: saves what the capture holds, on Metaflow's schedule, whenever it
    grew. Its thread starts only once the first interval has passed (the capture's copying
    thread starts it), and stops when the block ends. `remove` drops the copies once the
    attempt's index holds the final logs."""

    def __init__(self, storage: StorageBackend, pathspec: str, attempt: int, settings: Settings):
        self.storage = storage
        self.pathspec = pathspec
        self.attempt = attempt
        self.shortest = interval_seconds(settings, LIVE_LOGS_MIN_INTERVAL)
        self.longest = interval_seconds(settings, LIVE_LOGS_MAX_INTERVAL)
        self.saved = False  #: whether any live copy was written (then `remove` has work)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    def __enter__(self) -> LiveLogSaver:
        return self

    def schedule(self) -> Later | None:
        """When the capture starts the saving (None: live logs are off)."""
        self._started = time.monotonic()
        return (self.shortest, self._start) if self.shortest > 0 else None

    def _start(self, capture: OutputCapture) -> None:
        with self._lock:
            if not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, args=(capture,), name="flow-live-logs",
                                                daemon=True)
                self._thread.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(STOP_WAIT_SECONDS)

    def _loop(self, capture: OutputCapture) -> None:
        seen = 0
        while True:
            pieces = capture.pieces()
            if pieces != seen:
                try:
                    save_live_logs(self.storage, self.pathspec, self.attempt, capture.so_far())
                    seen = pieces
                    self.saved = True
                except Exception:  # noqa: BLE001 -- a failed save is tried again at the next tick; the task goes on
                    pass
            if self._stop.wait(save_delay(time.monotonic() - self._started, self.shortest, self.longest)):
                return

    def remove(self) -> None:
        if self.saved:
            remove_live_logs(self.storage, self.pathspec, self.attempt)


class CapturedOutput:
    """``with CapturedOutput(...) as logs:`` around the step of a task started as a process of
    its own: its output captured inside it (`OutputCapture`), with live logs while it runs.
    Afterwards ``logs.stdout`` and ``logs.stderr``; `remove_live` once the index holds them.
    A forked task uses `flow_core.engine.relayed_output.RelayedOutput` instead."""

    def __init__(self, storage: StorageBackend, pathspec: str, attempt: int, settings: Settings):
        self._saver = LiveLogSaver(storage, pathspec, attempt, settings)
        self._capture: OutputCapture | None = None
        self.stdout = b""
        self.stderr = b""

    def __enter__(self) -> CapturedOutput:
        self._capture = OutputCapture(later=self._saver.schedule())
        self._capture.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._capture is not None
        try:
            self._capture.__exit__(exc_type, exc, tb)
        finally:
            self._saver.__exit__(exc_type, exc, tb)
        self.stdout, self.stderr = self._capture.stdout, self._capture.stderr

    def remove_live(self) -> None:
        self._saver.remove()
