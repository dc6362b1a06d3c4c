"""What a user sees while a run runs: output, progress, logs, tags, `current`, Ctrl-C."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
from flow_core.testing import last_error, run_id_of

CHATTY = """
    import sys
    from flow_core import FlowSpec, step, current

    class Chatty(FlowSpec):
        @step
        def start(self):
            self.items = ["a", "b"]
            print("hello from start")
            print("a warning", file=sys.stderr)
            self.facts = dict(flow=current.flow_name, run=current.run_id, step=current.step_name,
                              task=current.task_id, retry=current.retry_count, pathspec=current.pathspec,
                              namespace=current.namespace, user=current.username, tags=sorted(current.tags),
                              running=current.is_running_flow, origin=current.origin_run_id,
                              production=current.is_production)
            self.next(self.each, foreach="items")

        @step
        def each(self):
            print("item", self.input)
            self.next(self.join)

        @step
        def join(self, inputs):
            self.next(self.end)

        @step
        def end(self):
            print("bye")
"""


def test_output_is_prefixed_and_logs_prints_it_back(write_flow, flow_cli, records):
    path = write_flow("chatty.py", CHATTY)
    result = flow_cli("run", str(path))
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    (start,) = records.metadata.list_tasks("Chatty", run_id, "start")
    assert f"[{run_id}/start/{start.task_id}] hello from start" in result.stdout
    assert f"[{run_id}/start/{start.task_id}] a warning" in result.stderr

    one = flow_cli("logs", str(path), f"{run_id}/start/{start.task_id}")
    assert one.returncode == 0 and one.stdout == "hello from start\n"
    err = flow_cli("logs", str(path), f"Chatty/{run_id}/start", "--stderr")
    assert err.stdout == "a warning\n"
    step = flow_cli("logs", str(path), f"{run_id}/each")
    each_ids = [t.task_id for t in records.metadata.list_tasks("Chatty", run_id, "each")]
    assert step.stdout == "".join(f"[{run_id}/each/{t}]\nitem {x}\n" for t, x in zip(each_ids, "ab"))
    whole = flow_cli("logs", str(path), run_id)
    assert "hello from start" in whole.stdout and "bye" in whole.stdout

    missing = flow_cli("logs", str(path), "999")
    assert missing.returncode != 0 and last_error(missing) == f"Error: run Chatty/999 does not exist in local@{records.metadata.root}"


def test_current_tags_and_system_tags(write_flow, flow_cli, records):
    result = flow_cli("run", str(write_flow("chatty.py", CHATTY)), "--tag", "exp-1", "--tag", "nightly")
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    (start,) = records.metadata.list_tasks("Chatty", run_id, "start")
    assert records.artifact("Chatty", run_id, "start", "facts") == dict(
        flow="Chatty", run=run_id, step="start", task=start.task_id, retry=0,
        pathspec=f"Chatty/{run_id}/start/{start.task_id}", namespace="user:tester", user="tester",
        tags=["exp-1", "nightly"], running=True, origin=None, production=False)
    run = records.run("Chatty", run_id)
    assert run.tags == {"exp-1", "nightly"}
    assert "user:tester" in run.system_tags and "runtime:local" in run.system_tags
    assert any(t.startswith("python_version:") for t in run.system_tags)
    assert any(t.startswith("flow_core_version:") for t in run.system_tags)


def _run_in_terminal(args: list[str], env: dict) -> str:
    """Run a command with a pseudo-terminal as its output; return everything it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_progress_is_live_on_a_terminal_and_plain_elsewhere(write_flow, flow_env):
    path = write_flow("chatty.py", CHATTY)
    env = {**os.environ, **flow_env, "TERM": "xterm"}
    shown = _run_in_terminal([sys.executable, "-m", "flow_core", "run", str(path)], env)
    assert "\x1b[" in shown  # the block is redrawn in place
    assert "  each   2 done" in shown and "  end    1 done" in shown
    assert "  each   0 done, 1 running" in shown or "  each   0 done, 2 running" in shown

    plain = subprocess.run([sys.executable, "-m", "flow_core", "run", str(path)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0
    assert "\x1b[" not in plain.stdout + plain.stderr
    assert "Task finished successfully." in plain.stdout


def test_quiet_prints_only_the_result(write_flow, flow_cli):
    result = flow_cli("--quiet", "run", str(write_flow("chatty.py", CHATTY)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [result.stdout.strip().splitlines()[-1]]
    assert result.stdout.startswith("Done! Run Chatty/")


def test_verbose_says_which_backends_run_the_tasks(write_flow, flow_cli, flow_env):
    result = flow_cli("--verbose", "run", str(write_flow("chatty.py", CHATTY)), "--max-workers", "3")
    assert result.returncode == 0, result.stderr
    assert f"Datastore {flow_env.root}, metadata local@{flow_env.root}, compute local, up to 3 tasks" \
        in result.stdout
    assert "/start/" in result.stdout and "on local, after " in result.stdout
    quiet_enough = flow_cli("run", str(write_flow("chatty2.py", CHATTY)))
    assert "Datastore " not in quiet_enough.stdout


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("compute, linger", [("local", False), ("subprocess", False), ("subprocess", True)],
                         ids=["local", "subprocess", "a-finished-task-still-exiting"])
def test_ctrl_c_stops_every_task_promptly_and_the_run_resumes(write_flow, flow_env, records, compute, linger):
    """With ``linger``, the quick task has recorded its success but its process is still
    exiting (an atexit handler) when Ctrl-C reaches the whole process group and kills it: its
    attempt stays a success, and resume reuses it."""
    path = write_flow("sleepy.py", """
        import atexit, os, time
        from flow_core import FlowSpec, step

        class Sleepy(FlowSpec):
            @step
            def start(self):
                self.items = [0, 1, 2]
                self.next(self.work, foreach="items")

            @step
            def work(self):
                if self.input == 0 and os.environ.get("LINGER"):
                    atexit.register(time.sleep, 120)  # runs after the task recorded its end
                elif self.input > 0 and not os.environ.get("FAST"):
                    time.sleep(120)
                self.square = self.input ** 2
                self.next(self.join)

            @step
            def join(self, inputs):
                self.total = sum(i.square for i in inputs)
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    env = {**os.environ, **flow_env, **({"LINGER": "1"} if linger else {})}
    proc = subprocess.Popen([sys.executable, "-m", "flow_core", "run", str(path), "--max-workers", "3",
                             "--compute", compute],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the quick task is done and the slow ones run
        runs = records.runs("Sleepy")
        tasks = records.metadata.list_tasks("Sleepy", runs[0].run_id, "work") if runs else []
        if sum(t.status == "succeeded" for t in tasks) == 1 and sum(t.attempt == 0 for t in tasks) == 3:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("the run never got going: " + "".join(proc.communicate()))
    if linger:
        time.sleep(0.5)  # well inside the quick task's lingering exit
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    started = time.time()
    out, err = proc.communicate(timeout=60)
    assert time.time() - started < 15
    assert proc.returncode != 0
    run_id = run_id_of(out)
    assert f"run Sleepy/{run_id} was interrupted" in err.strip().splitlines()[-1]
    tasks = records.metadata.list_tasks("Sleepy", run_id, "work")
    assert sorted(t.status for t in tasks) == ["failed", "failed", "succeeded"]  # nothing left "running"
    pids = [int(f.value) for t in tasks
            for f in records.metadata.list_metadata("Sleepy", run_id, "work", t.task_id) if f.field == "pid"]
    assert len(pids) == 3 and not [pid for pid in pids if _alive(pid)]
    assert records.run("Sleepy", run_id).status == "failed"

    resumed = subprocess.run([sys.executable, "-m", "flow_core", "resume", str(path), "--origin-run-id", run_id],
                             env={**env, "FAST": "1"}, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    new_id = run_id_of(resumed.stdout)
    assert records.artifact("Sleepy", new_id, "end", "total") == 0 + 1 + 4
    assert resumed.stdout.count("Reused Sleepy/") == 2  # start and the one finished work task


def test_dump_prints_artifacts_of_a_step_or_task(write_flow, flow_cli, python_flow, records):
    path = write_flow("chatty.py", CHATTY + '\n    if __name__ == "__main__":\n        Chatty()\n')
    run_id = run_id_of(flow_cli("run", str(path)).stdout)
    (start,) = records.metadata.list_tasks("Chatty", run_id, "start")
    one = python_flow(path, "dump", f"{run_id}/start/{start.task_id}", "--include", "items")
    assert one.returncode == 0, one.stderr
    assert one.stdout == "items: ['a', 'b']\n"
    each = flow_cli("dump", str(path), f"Chatty/{run_id}/each", "--max-value-size", "3")
    ids = [t.task_id for t in records.metadata.list_tasks("Chatty", run_id, "each")]
    assert f"[{run_id}/each/{ids[0]}]" in each.stdout and f"[{run_id}/each/{ids[1]}]" in each.stdout
    assert "items: ['a... (7 more characters)" in each.stdout
    bad = flow_cli("dump", str(path), f"{run_id}/nosuch")
    assert bad.returncode != 0 and last_error(bad) == f"Error: step Chatty/{run_id}/nosuch does not exist (no task of it ever started)"
