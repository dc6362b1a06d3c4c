"""Capturing a task's output while it still reaches the console.

The capture is at the file-descriptor level, so output from C extensions and from
subprocesses the step starts is kept too, not only what Python's ``print`` writes.
"""

from __future__ import annotations

import os
import sys
import threading


class _Tee:
    def __init__(self, fd: int):
        self.fd = fd
        self.chunks: list[bytes] = []

    def start(self) -> None:
        _flush_python_streams()
        self.saved = os.dup(self.fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, self.fd)
        os.close(write_end)
        self.read_end = read_end
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self.read_end, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.chunks.append(chunk)
            view = memoryview(chunk)
            while view:
                written = os.write(self.saved, view)
                view = view[written:]

    def stop(self) -> bytes:
        _flush_python_streams()
        os.dup2(self.saved, self.fd)
        # A background process the step left running may hold the pipe open: don't wait forever.
        self.thread.join(timeout=2.0)
        if self.thread.is_alive():
            os.close(self.read_end)
            self.thread.join(timeout=1.0)
        else:
            os.close(self.read_end)
        os.close(self.saved)
        return b"".join(self.chunks)


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass


class OutputCapture:
    """``with OutputCapture() as logs: ...`` then ``logs.stdout`` and ``logs.stderr`` (bytes)."""

    def __init__(self) -> None:
        self.stdout = b""
        self.stderr = b""

    def __enter__(self) -> "OutputCapture":
        self._tees = {"stdout": _Tee(1), "stderr": _Tee(2)}
        for tee in self._tees.values():
            tee.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stdout = self._tees["stdout"].stop()
        self.stderr = self._tees["stderr"].stop()
