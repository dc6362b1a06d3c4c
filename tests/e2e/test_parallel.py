"""``@parallel`` and ``self.next(..., num_parallel=N)``, locally, as Metaflow 2.19 defines them: N
tasks started together (a gang) that read ``current.parallel``, a join over the gang, a gang
stopped as a whole when one of its tasks fails, retried as a whole, and resumed all-or-nothing."""

from __future__ import annotations

import re
import textwrap

import pytest
from flow_core import Run, namespace
from flow_core.testing import last_error, run_id_of

GANG = """
    import os
    import time

    from flow_core import FlowSpec, current, parallel, step


    def barrier(name, size):
        \"\"\"Wait until every node of the gang got here: a gang whose nodes ran one after the
        other would never get past it.\"\"\"
        folder = os.environ["GANG_DIR"]
        prefix = f"{current.run_id}-{name}-"
        open(os.path.join(folder, prefix + str(current.parallel.node_index)), "w").close()
        deadline = time.time() + 60
        while len([f for f in os.listdir(folder) if f.startswith(prefix)]) < size:
            if time.time() > deadline:
                raise RuntimeError("the gang never assembled")
            time.sleep(0.05)


    class GangFlow(FlowSpec):
        @step
        def start(self):
            self.base = 100
            self.next(self.train, num_parallel=3)

        @parallel
        @step
        def train(self):
            p = current.parallel
            print(f"node {p.node_index} of {p.num_nodes} at {p.main_ip}, control task {p.control_task_id}, "
                  f"task {current.task_id}")
            if os.environ.get("FAIL_NODE") == str(p.node_index):
                raise ValueError(f"node {p.node_index} broke")
            barrier("train", p.num_nodes)
            if os.environ.get("FAIL_LATE") == str(p.node_index):
                time.sleep(1)
                raise ValueError(f"node {p.node_index} broke late")
            self.node = p.node_index
            self.result = self.base + p.node_index
            self.next(self.join)

        @step
        def join(self, inputs):
            if os.environ.get("FAIL_JOIN"):
                raise ValueError("join broke")
            self.results = [inp.result for inp in inputs]
            print("join got", [inp.node for inp in inputs], self.results)
            self.next(self.end)

        @step
        def end(self):
            print("done", self.results)

    if __name__ == "__main__":
        GangFlow()
"""


@pytest.fixture
def gang(write_flow, tmp_path):
    folder = tmp_path / "gang"
    folder.mkdir()
    return write_flow("gang.py", GANG), {"GANG_DIR": str(folder)}


@pytest.fixture
def client_run(flow_env):
    namespace(None)
    yield lambda run_id: Run(f"GangFlow/{run_id}")
    namespace(None)


def _lines(stdout: str, step: str, text: str) -> list[str]:
    return [line for line in stdout.splitlines() if f"/{step}/" in line and text in line]


def test_a_gang_of_num_parallel_tasks_starts_together_and_a_join_gathers_it(gang, python_flow, client_run):
    path, env = gang
    # One worker slot: the gang still starts together, or its barrier would never open.
    result = python_flow(path, "run", "--max-workers", "1", env=env)
    assert result.returncode == 0, result.stderr
    said = [re.search(r"node (\d) of (\d) at ([^,]+), control task ([^,]+), task (\S+)", line).groups()
            for line in _lines(result.stdout, "train", "] node ")]
    assert sorted(s[0] for s in said) == ["0", "1", "2"]
    control = next(s[4] for s in said if s[0] == "0")  # node 0 is the control task
    assert {(s[1], s[2], s[3]) for s in said} == {("3", "127.0.0.1", control)}
    assert "join got [0, 1, 2] [100, 101, 102]" in result.stdout
    assert "done [100, 101, 102]" in result.stdout

    run = client_run(run_id_of(result.stdout))
    tasks = list(run["train"])
    assert len(tasks) == 3
    assert sorted(task.data.node for task in tasks) == [0, 1, 2]
    assert all(task.successful for task in tasks)
    assert run["join"].task.data.results == [100, 101, 102]


def test_check_and_show_describe_the_gang(gang, python_flow):
    path, _env = gang
    shown = python_flow(path, "show")
    assert shown.returncode == 0, shown.stderr
    assert "    => train (@parallel gang of num_parallel=3 tasks started together)" in shown.stdout
    assert "Step train  @parallel" in shown.stdout
    assert python_flow(path, "check").returncode == 0


def test_num_parallel_to_a_step_without_parallel_fails_check_with_file_and_line(write_flow, python_flow):
    source = GANG.replace("        @parallel\n", "")
    path = write_flow("gang.py", source)
    result = python_flow(path, "check")
    assert result.returncode == 1
    line = [n for n, text in enumerate(source.strip("\n").splitlines(), 1) if "num_parallel=3" in text][0]
    assert last_error(result) == (
        f"Error: {path}:{line}: step 'start' starts 'train' with num_parallel, but 'train' has no @parallel "
        "decorator; add @parallel above its @step")


def test_one_failed_node_stops_the_gang_and_fails_the_step(gang, python_flow, client_run):
    path, env = gang
    result = python_flow(path, "run", env={**env, "FAIL_NODE": "1"})
    assert result.returncode == 1
    assert "ValueError: node 1 broke" in result.stderr
    # The other two nodes wait at the barrier for node 1 until the runtime stops them.
    assert len(_lines(result.stderr, "train", "Task stopped")) == 2
    assert not _lines(result.stdout + result.stderr, "join", "Task is starting")
    error = last_error(result)
    assert "failed: raised ValueError: node 1 broke; the other tasks of its @parallel gang were stopped and " \
           "step 'train' failed" in error
    run = client_run(run_id_of(result.stdout))
    assert not run.successful
    assert len(list(run["train"])) == 3


def test_resume_reruns_a_gang_with_a_failed_task_and_reuses_a_gang_that_succeeded(gang, python_flow):
    path, env = gang
    first = python_flow(path, "run", env={**env, "FAIL_LATE": "2"})
    assert first.returncode == 1
    assert len(_lines(first.stdout, "train", "Task finished successfully")) == 2  # nodes 0 and 1 succeeded

    # Node 2 failed: the whole gang runs again, none of its tasks is reused; now the join fails.
    second = python_flow(path, "resume", "--origin-run-id", run_id_of(first.stdout), env={**env, "FAIL_JOIN": "1"})
    assert second.returncode == 1
    assert len(_lines(second.stdout, "start", "Reused")) == 1
    assert not _lines(second.stdout, "train", "Reused")
    assert len(_lines(second.stdout, "train", "Task is starting")) == 3
    assert len(_lines(second.stdout, "train", "Task finished successfully")) == 3

    # Every task of that gang succeeded: all three are reused, and only the join and end run.
    third = python_flow(path, "resume", "--origin-run-id", run_id_of(second.stdout), env=env)
    assert third.returncode == 0, third.stderr
    assert len(_lines(third.stdout, "train", "Reused")) == 3
    assert not _lines(third.stdout, "train", "Task is starting")
    assert "join got [0, 1, 2] [100, 101, 102]" in third.stdout


FARM_PLUGIN = """
    from flow_core.plugin_api import Backend, ComputeBackend, hookimpl

    class Farm(ComputeBackend):
        name = "farm"
        remote = True  # and no runs_gangs: it cannot start several machines together

        @classmethod
        def from_settings(cls, settings, backends):
            return cls()

        def launch(self, spec, events):
            raise AssertionError("nothing may run")

    @hookimpl
    def flow_compute_backends():
        return [Backend("farm", "flow_farm:Farm", "remote machines one task at a time")]
"""


def test_a_gang_on_remote_compute_that_cannot_start_one_is_refused_before_anything_runs(gang, flow_cli, tmp_path):
    path, env = gang
    site = tmp_path / "site"
    (site / "flow_farm-1.0.dist-info").mkdir(parents=True)
    (site / "flow_farm.py").write_text(textwrap.dedent(FARM_PLUGIN))
    (site / "flow_farm-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: flow-farm\nVersion: 1.0\n")
    (site / "flow_farm-1.0.dist-info" / "entry_points.txt").write_text("[flow.plugins]\nflow-farm = flow_farm\n")
    result = flow_cli("run", str(path), "--compute", "farm", env={**env, "PYTHONPATH": str(site)})
    assert result.returncode == 1
    assert "Task is starting" not in result.stdout
    assert last_error(result) == ("Error: step 'train' is @parallel, and the farm compute cannot start a gang's "
                                  "tasks together; run it on local compute or on AWS Batch (flow-compute-batch)")


RETRIED_GANG = """
    import time

    from flow_core import FlowSpec, current, parallel, retry, step


    class RetriedGang(FlowSpec):
        @step
        def start(self):
            self.next(self.train, num_parallel=3)

        @retry(times=1)
        @parallel
        @step
        def train(self):
            self.attempt = current.retry_count
            if current.retry_count == 0 and current.parallel.node_index == 1:
                raise ValueError("node 1 broke on its first attempt")
            time.sleep(1)
            self.next(self.join)

        @step
        def join(self, inputs):
            print("attempts", [inp.attempt for inp in inputs])
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        RetriedGang()
"""


def test_retry_runs_a_failed_gang_again_as_a_whole(write_flow, python_flow):
    result = python_flow(write_flow("retried.py", RETRIED_GANG), "run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(_lines(result.stderr, "train", "node 1 broke on its first attempt); retrying its @parallel gang")) == 1
    assert len(_lines(result.stderr, "train", "Task stopped: its @parallel gang is retried")) == 2, result.stderr
    # Every node ran its second attempt, and the join gathered those, not the first's.
    assert "attempts [1, 1, 1]" in result.stdout
    assert len(_lines(result.stdout, "train", "Task is starting (retry 1)")) == 3, result.stdout
