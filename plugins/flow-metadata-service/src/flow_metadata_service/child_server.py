"""What the throwaway servers of tests and benchmarks share: a child process that is
started, stopped within a grace period (then killed), and restarted in place."""

from __future__ import annotations

import subprocess


class ChildServer:
    process: subprocess.Popen | None = None
    grace_seconds = 30.0

    def start(self) -> "ChildServer":
        raise NotImplementedError

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
