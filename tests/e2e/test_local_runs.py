"""A flow runs end to end on the local backends, started either way, and fails cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from flow_core.testing import run_id_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

HELLO = EXAMPLES / "hello.py"


def test_hello_with_flow_run(flow_cli, records):
    result = flow_cli("run", str(HELLO))
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    assert f"[{run_id}/end/" in result.stdout
    assert "Hello, Flow! has 9 letters." in result.stdout
    (run,) = records.runs("HelloFlow")
    assert run.status == "succeeded" and run.run_id == run_id
    assert "user:tester" in run.system_tags
    assert records.artifact("HelloFlow", run_id, "end", "letters") == 9
    assert records.artifact("HelloFlow", run_id, "end", "greeting") == "Hello, Flow!"


def test_hello_with_python_file_run(python_flow, records):
    result = python_flow(HELLO, "run", "--tag", "first")
    assert result.returncode == 0, result.stderr
    assert "Hello, Flow! has 9 letters." in result.stdout
    (run,) = records.runs("HelloFlow")
    assert run.tags == {"first"}


def test_show_and_check_both_ways(flow_cli, python_flow):
    shown = flow_cli("show", str(HELLO))
    assert shown.returncode == 0 and "Step count" in shown.stdout and "=> end" in shown.stdout
    assert python_flow(HELLO, "show").stdout == shown.stdout
    checked = python_flow(HELLO, "check")
    assert checked.returncode == 0 and "looks good" in checked.stdout


def test_unknown_datastore_fails_before_running_with_one_line(flow_cli, flow_env):
    result = flow_cli("run", str(HELLO), env={"METAFLOW_DEFAULT_DATASTORE": "nosuch"})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'nosuch'" in lines[0] and "flow plugins" in lines[0]
    assert "Traceback" not in result.stderr and "Workflow starting" not in result.stdout
    assert not flow_env.root.exists()


def test_graph_error_is_one_line_with_file_and_line_and_nothing_runs(write_flow, flow_cli, flow_env):
    path = write_flow("broken.py", """
        from flow_core import FlowSpec, step

        class Broken(FlowSpec):
            @step
            def start(self):
                self.next(self.nowhere)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            Broken()
    """)
    for result in (flow_cli("run", str(path)),
                   subprocess.run([sys.executable, str(path), "run"], capture_output=True, text=True,
                                  env={**os.environ, **flow_env})):
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [
            f"Error: {path}:6: self.next in step 'start' points at 'nowhere', which is not a @step of Broken"
        ]
    assert not flow_env.root.exists()


def test_failing_step_names_task_and_exception(write_flow, flow_cli, records):
    path = write_flow("failing.py", """
        from flow_core import FlowSpec, step

        class Failing(FlowSpec):
            @step
            def start(self):
                self.x = 1
                self.next(self.boom)

            @step
            def boom(self):
                raise ValueError("the data looked wrong")
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    result = flow_cli("run", str(path))
    assert result.returncode == 1
    assert "ValueError: the data looked wrong" in result.stderr  # the task's own traceback, streamed
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"Error: run Failing/\d+ failed: task Failing/\d+/boom/\d+ failed: "
                        r"raised ValueError: the data looked wrong; `resume --origin-run-id \d+` continues it",
                        last), last
    (run,) = records.runs("Failing")
    assert run.status == "failed"
    assert not records.metadata.list_tasks("Failing", run.run_id, "end")


def test_values_round_trip_exactly_between_steps(write_flow, flow_cli, records):
    path = write_flow("values.py", """
        from flow_core import FlowSpec, step

        class Values(FlowSpec):
            @step
            def start(self):
                self.a_tuple = (1, "two", 3.0)
                self.a_set = {1, 2, 3}
                self.big = 2 ** 80
                self.nested = {"k": [1, 2, {"x": None}], "b": b"bytes"}
                self.next(self.check)

            @step
            def check(self):
                assert self.a_tuple == (1, "two", 3.0) and type(self.a_tuple) is tuple
                assert self.a_set == {1, 2, 3} and type(self.a_set) is set
                assert self.big == 2 ** 80
                self.big += 1
                self.next(self.end)

            @step
            def end(self):
                print("big is", self.big)
    """)
    result = flow_cli("run", str(path))
    assert result.returncode == 0, result.stderr
    assert f"big is {2 ** 80 + 1}" in result.stdout
    run_id = run_id_of(result.stdout)
    assert records.artifact("Values", run_id, "end", "a_set") == {1, 2, 3}
    assert records.artifact("Values", run_id, "end", "nested") == {"k": [1, 2, {"x": None}], "b": b"bytes"}


def test_two_runs_started_together_get_distinct_ids_and_own_artifacts(write_flow, flow_env, records):
    path = write_flow("tagged.py", """
        import os
        from flow_core import FlowSpec, step

        class Tagged(FlowSpec):
            @step
            def start(self):
                self.who = os.environ["WHO"]
                self.next(self.end)

            @step
            def end(self):
                print("I am", self.who)
    """)
    procs = [
        subprocess.Popen([sys.executable, "-m", "flow_core", "run", str(path)], env={**os.environ, **flow_env, "WHO": who},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for who in ("first", "second")
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    ids = {who: run_id_of(out) for who, (out, _err) in zip(("first", "second"), outputs)}
    assert ids["first"] != ids["second"]
    for who, run_id in ids.items():
        assert records.artifact("Tagged", run_id, "end", "who") == who


def test_step_command_runs_one_task_on_its_own(flow_cli, records, flow_env):
    """The compute contract: `flow step` with ids the metadata allocated, nothing else."""
    meta = records.metadata
    run = meta.new_run("HelloFlow", "tester")
    (start_id,) = meta.new_tasks("HelloFlow", run.run_id, "start")
    result = flow_cli("step", str(HELLO), "start", "--run-id", run.run_id, "--task-id", start_id, "--input-paths", "")
    assert result.returncode == 0, result.stderr
    assert f"HelloFlow run {run.run_id} starting" in result.stdout
    (count_id,) = meta.new_tasks("HelloFlow", run.run_id, "count")
    result = flow_cli("step", str(HELLO), "count", "--run-id", run.run_id, "--task-id", count_id,
                      "--input-paths", f"{run.run_id}/start/{start_id}")
    assert result.returncode == 0, result.stderr
    assert records.artifact("HelloFlow", run.run_id, "count", "letters") == 9
    assert records.artifact("HelloFlow", run.run_id, "count", "greeting") == "Hello, Flow!"
    task = meta.get_task("HelloFlow", run.run_id, "count", count_id)
    assert task.status == "succeeded"
