"""Where Flow's behaviour must be Metaflow's, so that a flow written for Metaflow behaves the
same: crashed tasks keep their output, local retries happen at once, merge_artifacts belongs
to joins, and `self._current_step` names the step."""

from __future__ import annotations

import textwrap

from flow_core.testing import run_id_of


def _write(tmp_path, name: str, source: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def test_a_task_killed_by_a_segfault_keeps_what_it_printed(python_flow, tmp_path, flow_env):
    path = _write(tmp_path, "crash_flow.py", """
        import ctypes, sys, time
        from flow_core import FlowSpec, step


        class CrashFlow(FlowSpec):
            @step
            def start(self):
                print("stdout before the crash")
                print("stderr before the crash", file=sys.stderr)
                time.sleep(0.3)
                ctypes.string_at(0)  # a segfault, as a broken C extension would cause
                self.next(self.end)

            @step
            def end(self):
                pass


        if __name__ == "__main__":
            CrashFlow()
    """)
    result = python_flow(path, "run")
    assert result.returncode == 1
    assert "SIGSEGV" in result.stderr.strip().splitlines()[-1]

    from flow_core import Run, namespace

    namespace(None)
    (task,) = list(Run(f"CrashFlow/{run_id_of(result.stdout)}")["start"])
    assert task.finished and not task.successful
    assert "stdout before the crash" in task.stdout
    assert "stderr before the crash" in task.stderr
    assert "Fatal Python error: Segmentation fault" in task.stderr  # and where it happened
    assert "crash_flow.py" in task.stderr
    assert "SIGSEGV" in str(task.exception)


def test_a_local_retry_happens_at_once_whatever_minutes_between_retries_says(python_flow, tmp_path):
    path = _write(tmp_path, "retry_flow.py", """
        import os
        from flow_core import FlowSpec, current, retry, step


        class RetryFlow(FlowSpec):
            @retry(times=2)  # Metaflow's default: 2 minutes between retries, on remote compute only
            @step
            def start(self):
                if current.retry_count < 2:
                    raise RuntimeError(f"attempt {current.retry_count} fails")
                self.next(self.end)

            @step
            def end(self):
                print("made it")


        if __name__ == "__main__":
            RetryFlow()
    """)
    result = python_flow(path, "run", timeout=100)  # two 2-minute waits would take 240 s
    assert result.returncode == 0, result.stderr
    assert "made it" in result.stdout
    assert result.stderr.count("retrying") == 2


def test_merge_artifacts_outside_a_join_raises_and_current_step_names_the_step(python_flow, tmp_path):
    path = _write(tmp_path, "merge_flow.py", """
        from flow_core import FlowSpec, step


        class MergeFlow(FlowSpec):
            @step
            def start(self):
                print("current step:", self._current_step)
                self.merge_artifacts([])
                self.next(self.end)

            @step
            def end(self):
                pass


        if __name__ == "__main__":
            MergeFlow()
    """)
    result = python_flow(path, "run")
    assert result.returncode == 1
    assert "current step: start" in result.stdout
    assert "merge_artifacts can only be called in a join step, and step 'start' is not one" in result.stderr


def test_catch_records_module_qualified_types_and_covers_a_killed_process(python_flow, tmp_path):
    path = _write(tmp_path, "catch_flow.py", """
        import os, signal, time
        from flow_core import FlowSpec, catch, step, timeout


        class CatchFlow(FlowSpec):
            @catch(var="raised", print_exception=False)
            @step
            def start(self):
                raise KeyError("no such thing")
                self.next(self.slow)

            @catch(var="timed_out", print_exception=False)
            @timeout(seconds=1)
            @step
            def slow(self):
                time.sleep(30)
                self.next(self.killed)

            @catch(var="killed_by", print_exception=False)
            @step
            def killed(self):
                os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
                self.next(self.end)

            @step
            def end(self):
                print("raised:", self.raised.type, "|", self.raised.exception)
                print("timed out:", self.timed_out.type)
                print("killed:", self.killed_by.type, "|", self.killed_by.exception)


        if __name__ == "__main__":
            CatchFlow()
    """)
    result = python_flow(path, "run", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "raised: builtins.KeyError | 'no such thing'" in result.stdout
    assert "timed out: flow_core.TaskTimeout" in result.stdout
    assert "killed: flow_core.FailureHandledByCatch | step 'killed' failed on each of its 1 attempt(s)" in result.stdout

    from flow_core import FailureHandledByCatch, TaskTimeout

    assert TaskTimeout.__name__ == "TaskTimeout" and issubclass(FailureHandledByCatch, Exception)


def test_underscore_attributes_are_artifacts_as_in_metaflow(python_flow, tmp_path, records):
    """Metaflow stores every attribute a step sets but dunder ones, `self._x` included; later
    steps, joins (directly and through merge_artifacts) and the Client API read them back."""
    path = _write(tmp_path, "private_flow.py", """
        from flow_core import FlowSpec, step


        class PrivateFlow(FlowSpec):
            @step
            def start(self):
                self._threshold = 0.5
                self.items = [1, 2]
                self.next(self.each, foreach="items")

            @step
            def each(self):
                self._part = self.input * 10
                self._kind = "same in every branch"
                self.next(self.join)

            @step
            def join(self, inputs):
                print("parts:", sorted(i._part for i in inputs))
                self.merge_artifacts(inputs, exclude=["_part"])
                self.next(self.end)

            @step
            def end(self):
                print("seen:", self._threshold, self._kind)


        if __name__ == "__main__":
            PrivateFlow()
    """)
    result = python_flow(path, "run")
    assert result.returncode == 0, result.stderr
    assert "parts: [10, 20]" in result.stdout
    assert "seen: 0.5 same in every branch" in result.stdout
    run_id = run_id_of(result.stdout)
    assert records.artifact("PrivateFlow", run_id, "end", "_threshold") == 0.5
    from flow_core import Task, namespace
    namespace(None)
    (start,) = records.metadata.list_tasks("PrivateFlow", run_id, "start")
    task = Task(f"PrivateFlow/{run_id}/start/{start.task_id}")
    assert task.data._threshold == 0.5 and "_threshold" in [artifact.id for artifact in task]
    (each, _) = records.metadata.list_tasks("PrivateFlow", run_id, "each")
    assert not [a.id for a in Task(f"PrivateFlow/{run_id}/each/{each.task_id}") if a.id.startswith("_foreach")]


def test_an_artifact_changed_in_place_by_a_step_that_read_it_is_what_later_steps_and_the_client_see(
        python_flow, tmp_path):
    """Metaflow saves every artifact a step touched, so changing a loaded list or dict in place
    changes the artifact. A large one (pickled) and a small one (msgpack), left alone or changed."""
    path = _write(tmp_path, "in_place_flow.py", """
        from flow_core import FlowSpec, step


        class InPlaceFlow(FlowSpec):
            @step
            def start(self):
                self.table = {f"key-{i}": i for i in range(100_000)}
                self.kept = {f"key-{i}": i for i in range(100_000)}
                self.small = [1]
                self.next(self.change)

            @step
            def change(self):
                self.table["added"] = (1, 2)
                self.small.append(2)
                assert len(self.kept) == 100_000  # read, not changed
                self.next(self.end)

            @step
            def end(self):
                assert self.table["added"] == (1, 2) and type(self.table["added"]) is tuple
                assert self.small == [1, 2] and len(self.kept) == 100_000


        if __name__ == "__main__":
            InPlaceFlow()
    """)
    result = python_flow(path, "run")
    assert result.returncode == 0, result.stderr

    from flow_core import Run, namespace

    namespace(None)
    run = Run(f"InPlaceFlow/{run_id_of(result.stdout)}")
    assert run.data.table["added"] == (1, 2) and len(run.data.table) == 100_001
    assert run.data.small == [1, 2]
    start, change = run["start"].task, run["change"].task
    assert "added" not in start.data.table and start.data.small == [1]
    assert change["kept"].sha == start["kept"].sha and change["table"].sha != start["table"].sha


def test_what_a_step_in_its_own_process_leaves_in_a_reference_cycle_is_finalized_at_its_end(python_flow, tmp_path):
    """A step run as a process of its own (as on remote compute) ends as Python ends: what the
    step left alive, reference cycles included, is collected, so a file it never closed is
    still flushed."""
    marker = tmp_path / "written-at-exit.txt"
    path = _write(tmp_path, "cycle_flow.py", f"""
        from flow_core import FlowSpec, step

        kept = []


        class Holder:
            def __init__(self):
                self.me = self  # a reference cycle: only the garbage collector frees it
                self.out = open({str(marker)!r}, "w")
                self.out.write("flushed when collected")


        class CycleFlow(FlowSpec):
            @step
            def start(self):
                kept.append(Holder())
                self.next(self.end)

            @step
            def end(self):
                pass


        if __name__ == "__main__":
            CycleFlow()
    """)
    result = python_flow(path, "run", "--compute", "subprocess")
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "flushed when collected"
