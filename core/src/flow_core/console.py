"""What a run prints: one line per task event, task output prefixed with its pathspec."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

import click

QUIET, NORMAL, VERBOSE = 0, 1, 2


class Console:
    def __init__(self, verbosity: int = NORMAL, out: TextIO | None = None, err: TextIO | None = None):
        self.verbosity = verbosity
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._lock = threading.Lock()

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            stream.write(text + "\n")
            stream.flush()

    @staticmethod
    def _stamp() -> str:
        now = time.time()
        return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"

    def info(self, message: str) -> None:
        if self.verbosity >= NORMAL:
            self._write(self.out, message)

    def detail(self, message: str) -> None:
        if self.verbosity >= VERBOSE:
            self._write(self.out, click.style(message, dim=True))

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
