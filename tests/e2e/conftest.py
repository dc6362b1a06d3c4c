from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flow_core.backends.local_metadata import LocalMetadata
from flow_core.backends.local_storage import LocalStorage
from flow_core.datastore.task_store import FlowDataStore

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture
def python_flow(flow_env):
    """``python_flow(file, "run", ...)``: the ``python myflow.py …`` way of starting a flow."""

    def run(flow_file, *args: str, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(flow_file), *args],
            env={**os.environ, **flow_env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
        )

    return run


class LocalRecords:
    """Reads back what runs stored under the test's local root."""

    def __init__(self, root: Path):
        self.metadata = LocalMetadata(root)
        self.datastore = FlowDataStore(LocalStorage(root))

    def runs(self, flow_name: str):
        return self.metadata.list_runs(flow_name)

    def artifact(self, flow_name: str, run_id: str, step_name: str, name: str):
        (task,) = self.metadata.list_tasks(flow_name, run_id, step_name)
        return self.datastore.open_task(flow_name, run_id, step_name, task.task_id).load(name)

    def artifacts(self, flow_name: str, run_id: str, step_name: str, name: str) -> list:
        """The artifact of every task of a step, in task order."""
        return [self.datastore.open_task(flow_name, run_id, step_name, t.task_id).load(name)
                for t in self.metadata.list_tasks(flow_name, run_id, step_name)]

    def run(self, flow_name: str, run_id: str):
        return self.metadata.get_run(flow_name, run_id)

    def task_store(self, flow_name: str, run_id: str, step_name: str):
        (task,) = self.metadata.list_tasks(flow_name, run_id, step_name)
        return self.datastore.open_task(flow_name, run_id, step_name, task.task_id)


@pytest.fixture
def records(flow_env) -> LocalRecords:
    return LocalRecords(flow_env.root)

