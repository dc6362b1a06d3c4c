"""What a failed run tells the user: the cause of the failure, even when the task could not
record it, and how to continue the run."""

from __future__ import annotations

import re

import pytest
from flow_core.testing import last_error, run_id_of

UNREACHABLE = """
    import os, sys
    from flow_core import FlowSpec, step

    class Unreachable(FlowSpec):
        @step
        def start(self):
            self.next(self.fetch)

        @step
        def fetch(self):
            if not os.environ.get("REACHABLE"):
                # What a task prints when its datastore fails it, before it can record anything.
                print("fetching the inputs")
                print("Error: cannot reach S3 at http://127.0.0.1:9/ to read data/ab/abcdef", file=sys.stderr)
                print("", file=sys.stderr)
                sys.exit(1)
            self.fetched = True
            self.next(self.end)

        @step
        def end(self):
            pass
"""


@pytest.mark.parametrize("compute", ["local", "subprocess"])
def test_a_task_that_could_not_record_its_failure_is_reported_by_its_last_error_line(write_flow, flow_cli,
                                                                                        records, compute):
    path = write_flow("unreachable.py", UNREACHABLE)
    failed = flow_cli("run", str(path), "--compute", compute)
    assert failed.returncode == 1
    run_id = run_id_of(failed.stdout)
    assert re.fullmatch(
        rf"Error: run Unreachable/{run_id} failed: task Unreachable/{run_id}/fetch/\d+ failed: "
        rf"cannot reach S3 at http://127\.0\.0\.1:9/ to read data/ab/abcdef; "
        rf"`resume --origin-run-id {run_id}` continues it", last_error(failed)), last_error(failed)
    assert "exited with status" not in failed.stderr

    resumed = flow_cli("resume", str(path), "--origin-run-id", run_id, env={"REACHABLE": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert records.artifact("Unreachable", run_id_of(resumed.stdout), "fetch", "fetched") is True


def test_a_task_that_dies_without_an_error_line_is_reported_by_its_last_words(write_flow, flow_cli):
    path = write_flow("crashing.py", """
        import sys
        from flow_core import FlowSpec, step

        class Crashing(FlowSpec):
            @step
            def start(self):
                print("loading the model", file=sys.stderr)
                print("the GPU fell off the bus", file=sys.stderr)
                print("   ", file=sys.stderr)
                sys.exit(3)
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    failed = flow_cli("run", str(path))
    assert failed.returncode == 1
    assert "/start/" in last_error(failed)
    assert "failed: exited with status 3: the GPU fell off the bus; `resume --origin-run-id" in last_error(failed)


def test_a_failed_run_says_resume_continues_it(write_flow, flow_cli):
    path = write_flow("failing.py", """
        from flow_core import FlowSpec, step

        class Failing(FlowSpec):
            @step
            def start(self):
                raise ValueError("the data looked wrong")
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    failed = flow_cli("run", str(path))
    run_id = run_id_of(failed.stdout)
    assert last_error(failed).endswith(
        f"failed: raised ValueError: the data looked wrong; `resume --origin-run-id {run_id}` continues it")
