"""@retry, @catch, @timeout, @resources, @environment and `run --with`."""

from __future__ import annotations

import os
import textwrap

import pytest
from flow_core.testing import last_error, run_id_of

DECORATED = """
    import os, time
    from flow_core import FlowSpec, step, current, retry, catch, timeout, resources, environment

    class Decorated(FlowSpec):
        @retry(times=2, minutes_between_retries=0)
        @environment(vars={"GREETING": "bonjour"})
        @step
        def start(self):
            self.greeting = os.environ["GREETING"]
            self.succeeded_on = current.retry_count
            print("attempt", current.retry_count)
            if current.retry_count < 2:
                raise RuntimeError(f"flaky attempt {current.retry_count}")
            self.next(self.slow)

        @catch(var="slow_failure")
        @timeout(seconds=1)
        @step
        def slow(self):
            time.sleep(60)
            self.next(self.risky)

        @catch(var="risky_failure", print_exception=False)
        @step
        def risky(self):
            self.before = "kept"
            raise ValueError("bad row 7")
            self.next(self.end)

        @step
        def end(self):
            print("caught", self.risky_failure)
"""


@pytest.mark.parametrize("compute", ["local", "subprocess"])
def test_retry_catch_timeout_and_environment(write_flow, flow_cli, records, compute):
    result = flow_cli("run", str(write_flow("decorated.py", DECORATED)), "--compute", compute)
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    assert records.artifact("Decorated", run_id, "start", "greeting") == "bonjour"
    assert records.artifact("Decorated", run_id, "start", "succeeded_on") == 2
    (start,) = records.metadata.list_tasks("Decorated", run_id, "start")
    assert start.attempt == 2
    # every attempt keeps its own log
    for attempt in range(3):
        log = records.datastore.open_task("Decorated", run_id, "start", start.task_id, attempt).log("stdout")
        assert log == f"attempt {attempt}\n".encode()
    assert "RuntimeError: flaky attempt 0" in result.stderr
    slow_failure = records.artifact("Decorated", run_id, "end", "slow_failure")
    assert "timed out after 1 second" in str(slow_failure)
    assert str(records.artifact("Decorated", run_id, "end", "risky_failure")) == "ValueError: bad row 7"
    assert "caught ValueError: bad row 7" in result.stdout
    assert records.artifact("Decorated", run_id, "risky", "before") == "kept"


def test_retries_run_out_and_the_last_error_is_reported(write_flow, flow_cli, records):
    path = write_flow("always.py", """
        from flow_core import FlowSpec, step, retry

        class Always(FlowSpec):
            @retry(times=1, minutes_between_retries=0)
            @step
            def start(self):
                raise KeyError("no such column")
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    result = flow_cli("run", str(path))
    assert result.returncode == 1
    assert "raised KeyError: 'no such column'" in last_error(result)
    assert result.stderr.count("KeyError: 'no such column'") >= 2  # both attempts' tracebacks were streamed
    (run,) = records.runs("Always")
    (task,) = records.metadata.list_tasks("Always", run.run_id, "start")
    assert (task.attempt, task.status) == (1, "failed")


def test_with_attaches_a_decorator_to_every_step(write_flow, flow_cli, records):
    path = write_flow("flaky.py", """
        from flow_core import FlowSpec, step, current

        class Flaky(FlowSpec):
            @step
            def start(self):
                if current.retry_count == 0:
                    raise RuntimeError("first try fails")
                self.next(self.end)

            @step
            def end(self):
                if current.retry_count == 0:
                    raise RuntimeError("first try fails")
                self.tries = current.retry_count
    """)
    assert flow_cli("run", str(path)).returncode == 1
    result = flow_cli("run", str(path), "--with", "retry:times=1,minutes_between_retries=0")
    assert result.returncode == 0, result.stderr
    assert records.artifact("Flaky", run_id_of(result.stdout), "end", "tries") == 1


def test_unknown_decorator_in_with_is_a_clear_error(write_flow, flow_cli):
    path = write_flow("plain.py", """
        from flow_core import FlowSpec, step

        class Plain(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    result = flow_cli("run", str(path), "--with", "nosuchdeco")
    assert result.returncode != 0
    assert "nosuchdeco" in last_error(result) and "Traceback" not in result.stderr


PARALLEL = """
    import time
    from flow_core import FlowSpec, step, resources

    class Parallel(FlowSpec):
        @step
        def start(self):
            self.items = [0, 1, 2]
            self.next(self.{step}, foreach="items")

        @step
        def light(self):
            self.span = (time.time(), time.sleep(1.5), time.time())
            self.next(self.join)

        @resources(cpu=2, memory=1000)
        @step
        def heavy(self):
            self.span = (time.time(), time.sleep(1.5), time.time())
            self.next(self.join)

        @step
        def join(self, inputs):
            self.spans = [(i.span[0], i.span[2]) for i in inputs]
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def _overlaps(spans) -> int:
    """Most spans running at one moment."""
    return max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)


def test_max_workers_and_resources_cpu_limit_how_many_tasks_run_at_once(write_flow, flow_cli, records):
    # `light` never uses `heavy`, and vice versa; the graph check only needs both reachable.
    light = write_flow("light.py", PARALLEL.replace("{step}", "light").replace(
        "        @resources(cpu=2, memory=1000)\n        @step\n        def heavy", "        def heavy"))
    result = flow_cli("run", str(light), "--max-workers", "2")
    assert result.returncode == 0, result.stderr
    assert _overlaps(records.artifact("Parallel", run_id_of(result.stdout), "join", "spans")) == 2

    heavy = write_flow("heavy.py", PARALLEL.replace("{step}", "heavy").replace(
        "        @step\n        def light", "        def light"))
    result = flow_cli("run", str(heavy), "--max-workers", "2")
    assert result.returncode == 0, result.stderr
    assert _overlaps(records.artifact("Parallel", run_id_of(result.stdout), "join", "spans")) == 1
    run_id = run_id_of(result.stdout)
    task = records.metadata.list_tasks("Parallel", run_id, "heavy")[0]
    fields = {f.field: f.value for f in records.metadata.list_metadata("Parallel", run_id, "heavy", task.task_id)}
    assert fields["requested-cpu"] == "2" and fields["requested-memory"] == "1000"



def test_without_max_workers_a_run_starts_one_more_task_at_once_than_there_are_cores(write_flow, flow_cli, records):
    cores = os.cpu_count() or 1
    path = write_flow("light.py", PARALLEL.replace("{step}", "light").replace(
        "[0, 1, 2]", f"list(range({cores + 2}))").replace(
        "        @resources(cpu=2, memory=1000)\n        @step\n        def heavy", "        def heavy"))
    result = flow_cli("run", str(path), "--max-num-splits", "1000")
    assert result.returncode == 0, result.stderr
    assert _overlaps(records.artifact("Parallel", run_id_of(result.stdout), "join", "spans")) == cores + 1

SHOUT_PLUGIN = """
    from flow_core.plugin_api import StepDecorator, hookimpl

    class Shout(StepDecorator):
        name = "shout"
        defaults = {"word": "HEY"}

        def task_pre_step(self, ctx):
            print(self.attributes["word"], "from", ctx.step_name)

    @hookimpl
    def flow_step_decorators():
        return [Shout]
"""


def test_a_plugin_contributes_a_step_decorator(write_flow, flow_cli, tmp_path):
    site = tmp_path / "site"
    (site / "flow_shout-1.0.dist-info").mkdir(parents=True)
    (site / "flow_shout.py").write_text(textwrap.dedent(SHOUT_PLUGIN))
    (site / "flow_shout-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: flow-shout\nVersion: 1.0\n")
    (site / "flow_shout-1.0.dist-info" / "entry_points.txt").write_text("[flow.plugins]\nflow-shout = flow_shout\n")
    path = write_flow("loud.py", """
        from flow_core import FlowSpec, step, shout

        class Loud(FlowSpec):
            @shout(word="HELLO")
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    env = {"PYTHONPATH": str(site)}
    result = flow_cli("run", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert "] HELLO from start" in result.stdout and "from end" not in result.stdout
    everywhere = flow_cli("run", str(path), "--with", "shout", env=env)
    assert everywhere.returncode == 0, everywhere.stderr
    assert "] HELLO from start" in everywhere.stdout and "] HEY from end" in everywhere.stdout
    listed = flow_cli("plugins", env=env)
    assert "flow-shout" in listed.stdout and "shout" in listed.stdout
