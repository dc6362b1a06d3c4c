"""Keeping a run's heartbeat while something of it runs.

A run still marked running whose heartbeat stopped is shown as crashed. The local runtime
beats for its whole run; a task started by an orchestrator beats while it runs, since no
runtime is alive to do it.
"""

from __future__ import annotations

import threading
from typing import Any

from flow_core.backends.metadata import MetadataBackend
from flow_core.errors import FlowError

HEARTBEAT_SECONDS = 10.0


class RunHeartbeat:
    """``with RunHeartbeat(metadata, flow, run):`` beats every few seconds in a thread."""

    def __init__(self, metadata: MetadataBackend, flow_name: str, run_id: str,
                 interval: float = HEARTBEAT_SECONDS):
        self.metadata = metadata
        self.flow_name = flow_name
        self.run_id = run_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="flow-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.metadata.heartbeat_run(self.flow_name, self.run_id)
            except FlowError:
                pass  # a missed heartbeat is not worth failing the run for

    def __enter__(self) -> "RunHeartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
