"""Resume: reuse the origin's successful tasks without copying, re-run the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from flow_core.testing import last_error, run_id_of

PIPELINE = """
    import os, time
    from flow_core import FlowSpec, step, current

    class Pipeline(FlowSpec):
        @step
        def start(self):
            self.data = list(range(200_000))  # big enough to notice if it were copied
            self.items = [1, 2, 3, 4]
            self.next(self.square, foreach="items")

        @step
        def square(self):
            if os.environ.get("BREAK_ITEM") == str(self.input):
                raise RuntimeError(f"item {self.input} is broken")
            time.sleep(float(os.environ.get("SLOW", "0")) * self.input)
            self.value = self.input ** 2
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(i.value for i in inputs)
            self.next(self.end)

        @step
        def end(self):
            self.origin = current.origin_run_id
            print("total", self.total)

    if __name__ == "__main__":
        Pipeline()
"""


def _data_blobs(flow_env) -> set:
    return {p.name for p in (flow_env.root / "data").rglob("*") if p.is_file()}


def test_resume_after_a_failure_reuses_successful_tasks_without_copying(write_flow, flow_cli, records, flow_env):
    path = write_flow("pipeline.py", PIPELINE)
    failed = flow_cli("run", str(path), env={"BREAK_ITEM": "3"})
    assert failed.returncode == 1
    assert "item 3 is broken" in last_error(failed)
    origin = run_id_of(failed.stdout)
    blobs_before = _data_blobs(flow_env)

    resumed = flow_cli("resume", str(path))  # default origin: the user's latest run
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming Pipeline/{origin}" in resumed.stdout
    run_id = run_id_of(resumed.stdout)
    assert records.artifact("Pipeline", run_id, "end", "total") == 1 + 4 + 9 + 16
    assert records.artifact("Pipeline", run_id, "end", "origin") == origin
    assert records.run("Pipeline", run_id).origin_run_id == origin
    # start and the square tasks that succeeded were reused; only item 3 (and what follows) ran again
    reused = [line for line in resumed.stdout.splitlines() if "Reused" in line]
    assert len(reused) == 1 + sum(1 for line in failed.stdout.splitlines()
                                  if "/square/" in line and "finished successfully" in line)
    assert "Task is starting" not in next(line for line in resumed.stdout.splitlines() if "/start/" in line)
    # reuse points at the same content: the big artifact has one key and no new data blob
    origin_start = records.task_store("Pipeline", origin, "start").artifact_records()["data"]
    new_start = records.task_store("Pipeline", run_id, "start").artifact_records()["data"]
    assert origin_start.key == new_start.key
    new_blobs = _data_blobs(flow_env) - blobs_before
    assert origin_start.key not in new_blobs
    assert all(records.datastore.storage.root.joinpath("data", b[:2], b).stat().st_size < 10_000 for b in new_blobs)


def test_resume_from_a_step_reruns_it_and_everything_after(write_flow, python_flow, records):
    path = write_flow("pipeline.py", PIPELINE)
    first = python_flow(path, "run")
    assert first.returncode == 0, first.stderr
    origin = run_id_of(first.stdout)
    resumed = python_flow(path, "resume", "join", "--origin-run-id", origin)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("Reused Pipeline/") == 1 + 4
    assert "/join/" in resumed.stdout and "Task is starting" in resumed.stdout
    new_id = run_id_of(resumed.stdout)
    assert records.artifact("Pipeline", new_id, "end", "total") == 30
    logs = python_flow(path, "logs", f"{new_id}/end")
    assert logs.returncode == 0 and logs.stdout == "total 30\n"


def test_resume_errors_are_one_line(write_flow, flow_cli):
    path = write_flow("pipeline.py", PIPELINE)
    nothing = flow_cli("resume", str(path))
    assert nothing.returncode != 0
    assert last_error(nothing) == "Error: there is no earlier run of Pipeline to resume; start one with `run`"
    assert flow_cli("run", str(path)).returncode == 0
    bad_step = flow_cli("resume", str(path), "nosuchstep")
    assert last_error(bad_step) == "Error: Pipeline has no step 'nosuchstep' to resume from"
    bad_run = flow_cli("resume", str(path), "--origin-run-id", "777")
    assert last_error(bad_run) == "Error: run Pipeline/777 does not exist; check --origin-run-id"


@pytest.mark.parametrize("compute", ["local", "subprocess"])
def test_kill_9_of_the_runtime_mid_foreach_resumes_to_the_undisturbed_result(write_flow, flow_cli, records, flow_env,
                                                                             compute):
    path = write_flow("pipeline.py", PIPELINE)
    undisturbed = flow_cli("run", str(path))
    assert undisturbed.returncode == 0, undisturbed.stderr
    expected = records.artifact("Pipeline", run_id_of(undisturbed.stdout), "end", "total")

    run_id_file = flow_env.root.parent / "run-id"
    proc = subprocess.Popen(
        [sys.executable, "-m", "flow_core", "run", str(path), "--max-workers", "1", "--run-id-file", str(run_id_file),
         "--compute", compute],
        env={**os.environ, **flow_env, "SLOW": "1.5"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once some, not all, square tasks are done
        if run_id_file.exists():
            tasks = records.metadata.list_tasks("Pipeline", run_id_file.read_text(), "square")
            if sum(t.status == "succeeded" for t in tasks) >= 1:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError("the run never reached the foreach")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    crashed = run_id_file.read_text()
    assert records.run("Pipeline", crashed).status == "running"  # nobody got to say otherwise
    assert records.metadata.list_tasks("Pipeline", crashed, "end") == []

    resumed = flow_cli("resume", str(path), "--origin-run-id", crashed)
    assert resumed.returncode == 0, resumed.stderr
    assert "Reused Pipeline/" in resumed.stdout
    assert records.artifact("Pipeline", run_id_of(resumed.stdout), "end", "total") == expected


def test_resuming_a_finished_run_counts_its_reused_tasks_exactly(python_flow, tmp_path):
    path = tmp_path / "three_steps.py"
    path.write_text(
        "from flow_core import FlowSpec, step\n\n"
        "class ThreeSteps(FlowSpec):\n"
        "    @step\n    def start(self):\n        self.next(self.middle)\n\n"
        "    @step\n    def middle(self):\n        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n"
        "if __name__ == '__main__':\n    ThreeSteps()\n")
    first = run_id_of(python_flow(path, "run").stdout)
    resumed = python_flow(path, "resume", "--origin-run-id", first)
    assert resumed.returncode == 0, resumed.stderr
    assert f"finished 0 tasks (3 reused from run {first})" in resumed.stdout
