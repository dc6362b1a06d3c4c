"""The Client API on a task's attempts: an earlier attempt opened with ``Task(…, attempt=N)``,
and a running attempt's output read while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from flow_core import Flow, Task, client
from flow_core.errors import NotFound
from flow_core.testing import run_id_of

RETRIED = '''
from flow_core import FlowSpec, current, retry, step

class RetriedFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=1, minutes_between_retries=0)
    @step
    def flaky(self):
        print(f"attempt {current.retry_count} begins")
        if current.retry_count == 0:
            raise ValueError("the first try always fails")
        self.answer = 42
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    RetriedFlow()
'''

HELD = '''
import os, sys, time
from flow_core import FlowSpec, step

class HeldLogFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.hold)

    @step
    def hold(self):
        print("waiting for the release file")
        print("a warning while waiting", file=sys.stderr)
        while not os.path.exists(os.environ["RELEASE_FILE"]):
            time.sleep(0.05)
        print("released")
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    HeldLogFlow()
'''


@pytest.fixture
def fresh_namespace(flow_env):
    client.default_namespace()
    yield
    client.default_namespace()


def test_an_earlier_attempt_has_its_own_logs_exception_metadata_and_no_artifacts(write_flow, flow_cli,
                                                                                  fresh_namespace):
    result = flow_cli("run", str(write_flow("retried.py", RETRIED)))
    assert result.returncode == 0, result.stderr
    latest = Flow("RetriedFlow")[run_id_of(result.stdout)]["flaky"].task
    assert latest.current_attempt == 1 and latest.successful and latest.data.answer == 42
    assert latest.stdout == "attempt 1 begins\n" and latest.exception is None

    first = Task(latest.pathspec, attempt=0)
    assert repr(first) == f"Task('{latest.pathspec}', attempt=0)" and first != latest
    assert first.current_attempt == 0 and first.finished and not first.successful
    assert first.stdout == "attempt 0 begins\n"
    assert first.exception.type == "builtins.ValueError" and "always fails" in first.exception.exception
    assert "Traceback" in first.stderr and list(first) == [] and "answer" not in first.data
    assert first.metadata and {f.attempt for f in first.metadata} == {0}

    second = Task(latest.pathspec, attempt="1")  # a string of digits, as Metaflow's int() takes
    assert second.successful and second.data.answer == 42 and second.stdout == latest.stdout
    assert {f.attempt for f in second.metadata} == {1}


def test_an_attempt_that_never_ran_is_empty_and_a_bad_number_is_refused(write_flow, flow_cli, fresh_namespace):
    result = flow_cli("run", str(write_flow("retried.py", RETRIED)))
    task = Flow("RetriedFlow")[run_id_of(result.stdout)]["flaky"].task
    never = Task(task.pathspec, attempt=4)  # as Metaflow's: "not yet" and "never" look alike
    assert never.current_attempt == 4 and not never.finished and not never.successful
    assert never.stdout == "" and list(never) == [] and never.exception is None
    for bad in (-1, "two", 1.5):
        with pytest.raises(NotFound, match="cannot exist; attempts are numbered 0, 1, 2"):
            Task(task.pathspec, attempt=bad)


@pytest.mark.parametrize("compute", ["local", "subprocess"])
def test_a_running_tasks_output_is_read_while_it_runs(write_flow, flow_env, tmp_path, compute, fresh_namespace):
    release = tmp_path / "release"
    flow_file = write_flow("held.py", HELD)
    process = subprocess.Popen([sys.executable, "-m", "flow_core", "run", str(flow_file), "--compute", compute],
                               env={**os.environ, **flow_env, "RELEASE_FILE": str(release)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        task = _running_task("HeldLogFlow", "hold")
        while "waiting for the release file" not in task.stdout:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.1)
        # Read while the step still waits for the file: it cannot have ended.
        assert not Task(task.pathspec).finished
        assert task.stdout == "waiting for the release file\n"
        assert task.stderr == "a warning while waiting\n"
        assert list(task.loglines("stdout"))[0][1] == "waiting for the release file"
        release.write_text("go")
        assert process.wait(timeout=120) == 0
        done = Task(task.pathspec)
        assert done.finished and done.stdout == "waiting for the release file\nreleased\n"
        leftovers = [p for p in flow_env.root.rglob("*.live")]
        assert leftovers == []  # the committed index holds the logs; the live copies are gone
    finally:
        release.write_text("go")
        process.wait(timeout=120)


def _running_task(flow_name: str, step_name: str) -> Task:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            run = Flow(flow_name).latest_run
            if run is not None and step_name in run:
                return run[step_name].task
        except NotFound:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no task of {flow_name}'s step {step_name} started")
