"""What a run prints: one line per task event, task output prefixed with its pathspec.

On a terminal, a live block under the scrolling output shows each step's task counts
(done / running / failed) and is redrawn in place; anywhere else (a log file, CI) the
output is plain lines with no escape codes, and a one-line summary every little while.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Sequence, TextIO

import attrs
import click

QUIET, NORMAL, VERBOSE = 0, 1, 2

#: Seconds between progress summary lines when the output is not a terminal.
PLAIN_PROGRESS_EVERY = 30.0

_UP_AND_CLEAR = "\x1b[{n}F\x1b[J"  # cursor to the start of the line n lines up, clear to the end


@attrs.define
class StepProgress:
    step: str
    done: int = 0
    running: int = 0
    failed: int = 0

    def describe(self) -> str:
        parts = [f"{self.done} done"]
        if self.running:
            parts.append(f"{self.running} running")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


class Console:
    def __init__(self, verbosity: int = NORMAL, out: TextIO | None = None, err: TextIO | None = None,
                 live: bool | None = None):
        self.verbosity = verbosity
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.live = _is_terminal(self.out) if live is None else live
        # Decided once, not per line as click.echo would: a thousand-task run prints thousands.
        self._plain = {id(stream): not _is_terminal(stream) for stream in (self.out, self.err)}
        self._lock = threading.Lock()
        self._second = -1
        self._second_text = ""
        self._block: list[str] = []  # the progress lines currently drawn under the output
        self._last_plain = time.monotonic()

    # -- writing ----------------------------------------------------------------------------

    def _write(self, stream: TextIO, text: str) -> None:
        if "\x1b" in text and self._plain.get(id(stream), True):
            text = click.unstyle(text)  # no colour codes in a log file
        with self._lock:
            self._erase_block()
            stream.write(text + "\n")
            stream.flush()
            self._draw_block()

    def _erase_block(self) -> None:
        if self._block:
            self.out.write(_UP_AND_CLEAR.format(n=len(self._block)))

    def _draw_block(self) -> None:
        if self._block:
            self.out.write("".join(line + "\n" for line in self._block))
            self.out.flush()

    def _stamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._second_text = second, time.strftime("%H:%M:%S", time.localtime(now))
        return f"{self._second_text}.{int(now % 1 * 1000):03d}"

    # -- messages ---------------------------------------------------------------------------

    def info(self, message: str) -> None:
        if self.verbosity >= NORMAL:
            self._write(self.out, message)

    def detail(self, message: str) -> None:
        """A line only --verbose prints: how the run is carried out, for when it surprises you."""
        if self.verbosity >= VERBOSE:
            self._write(self.out, message)

    def result(self, message: str) -> None:
        """A line even --quiet prints: the outcome the user ran the command for."""
        self._write(self.out, message)

    def error(self, message: str) -> None:
        self._write(self.err, click.style(message, fg="red"))

    def task_event(self, label: str, message: str, failed: bool = False) -> None:
        if failed:
            self._write(self.err, f"{self._stamp()} [{label}] " + click.style(message, fg="red"))
        elif self.verbosity >= NORMAL:
            self._write(self.out, f"{self._stamp()} [{label}] {message}")

    def task_output(self, label: str, stream: str, line: str) -> None:
        if self.verbosity >= NORMAL:
            self._write(self.err if stream == "stderr" else self.out, f"{self._stamp()} [{label}] {line}")

    # -- progress ---------------------------------------------------------------------------

    def progress(self, steps: Sequence[StepProgress]) -> None:
        """Show where the run is: redrawn in place on a terminal, an occasional line elsewhere."""
        if self.verbosity < NORMAL:
            return
        width = max((len(s.step) for s in steps), default=0)
        if self.live:
            with self._lock:
                self._erase_block()
                lines = [f"  {s.step:<{width}}  {s.describe()}" for s in steps]
                self._block = [click.style(line, fg="red") if s.failed else line for line, s in zip(lines, steps)]
                self._draw_block()
        elif time.monotonic() - self._last_plain >= PLAIN_PROGRESS_EVERY:
            self._last_plain = time.monotonic()
            self._write(self.out, "Progress: " + "; ".join(f"{s.step} {s.describe()}" for s in steps))

    def end_progress(self) -> None:
        """Leave the last progress block on screen as ordinary lines."""
        with self._lock:
            self._block = []
