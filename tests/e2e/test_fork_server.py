"""Tasks forked from the warm fork server keep the isolation of a fresh process each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from flow_core import Flow
from flow_core.backends.selection import Backends
from flow_core.engine import local_compute
from flow_core.engine.task_prelude import TaskPreludes
from flow_core.model.graph import FlowGraph
from flow_core.model.loader import load_flow_class
from flow_core.testing import last_error, run_id_of
from flow_core.testing.compute import CONFORMANCE_FLOW, ComputeHarness

ISOLATION = """
    import os, random, subprocess, sys, threading
    from flow_core import FlowSpec, step, environment

    COUNTER = {"n": 0}  # module state: every task must see it as the file left it

    class Isolation(FlowSpec):
        @step
        def start(self):
            self.items = list(range(4))
            self.next(self.each, foreach="items")

        @environment(vars={"ONLY_HERE": "yes"})
        @step
        def each(self):
            self.threads_seen = threading.active_count()  # the step's own, and no framework thread
            self.items_seen = list(self.items)
            self.items.append("changed by task %d" % self.input)  # must not reach a sibling
            COUNTER["n"] += 1
            self.counter = COUNTER["n"]
            self.pid = os.getpid()
            self.draw = random.random()
            # threads and child processes inside a forked task work as in any process
            results = []
            workers = [threading.Thread(target=lambda i=i: results.append(i * i)) for i in range(8)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            self.thread_results = sorted(results)
            self.child_output = subprocess.run([sys.executable, "-c", "print('child says hi')"],
                                               capture_output=True, text=True).stdout.strip()
            print("task", self.input, "done")
            self.next(self.join)

        @step
        def join(self, inputs):
            self.counters = [i.counter for i in inputs]
            self.pids = [i.pid for i in inputs]
            self.draws = [i.draw for i in inputs]
            self.threads = [i.thread_results for i in inputs]
            self.children = [i.child_output for i in inputs]
            self.threads_seen = [i.threads_seen for i in inputs]
            self.items_seen = [i.items_seen for i in inputs]
            self.inputs = [i.input for i in inputs]
            self.leaked = os.environ.get("ONLY_HERE")
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_forked_tasks_are_isolated_processes(write_flow, flow_cli, records):
    result = flow_cli("run", str(write_flow("isolation.py", ISOLATION)))
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)

    def end(name):
        return records.artifact("Isolation", run_id, "end", name)

    assert end("counters") == [1, 1, 1, 1]  # no task saw another's module state
    assert len(set(end("pids"))) == 4  # a process each
    assert len(set(end("draws"))) == 4  # random state is not shared across forks
    assert end("threads") == [[i * i for i in range(8)]] * 4
    assert end("children") == ["child says hi"] * 4
    assert end("leaked") is None  # @environment of one step does not reach the next
    # The server may hold the parent's list for its children; each still gets its own.
    assert end("items_seen") == [[0, 1, 2, 3]] * 4
    assert end("inputs") == [0, 1, 2, 3]
    assert end("threads_seen") == [1] * 4  # Flow starts no thread of its own in a forked task
    for index in range(4):
        assert f"] task {index} done" in result.stdout


OUTPUT = """
    import os, subprocess, sys
    from flow_core import FlowSpec, step

    class Chatty(FlowSpec):
        @step
        def start(self):
            print("from print")
            os.system("echo from a shell")  # the shell writes to the task's fd 1 itself
            os.write(1, b"from os.write\\n")
            subprocess.run([sys.executable, "-c", "import sys; sys.stdout.write('x' * 300000 + '\\\\n')"])
            print("to stderr", file=sys.stderr)
            print("last, no newline", end="")
            self.next(self.end)

        @step
        def end(self):
            # Left running, holding the task's stdout and stderr: not the task's to wait for,
            # whether it keeps quiet or never stops writing.
            quiet = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            spam = "import sys\\nwhile True: sys.stdout.buffer.write(b'spam\\\\n' * 250000)"
            subprocess.Popen([sys.executable, "-c", spam])
            with open(os.environ["BACKGROUND_PID_FILE"], "w") as pid_file:
                pid_file.write(str(quiet.pid))
"""


def test_a_forked_tasks_logs_hold_everything_it_wrote_in_order(write_flow, flow_cli, tmp_path):
    pid_file = tmp_path / "background.pid"
    result = flow_cli("run", str(write_flow("chatty.py", OUTPUT)), env={"BACKGROUND_PID_FILE": str(pid_file)})
    background = int(pid_file.read_text())
    try:
        assert result.returncode == 0, result.stderr
        assert _alive(background)  # the run ended while the process its end step left behind runs on
        run = Flow("Chatty")[run_id_of(result.stdout)]
        task = run["start"].task
        assert task.stdout == ("from print\nfrom a shell\nfrom os.write\n" + "x" * 300000 + "\n"
                               + "last, no newline")
        assert task.stderr == "to stderr\n"
        assert set(run["end"].task.stdout.splitlines()) <= {"spam"}
        for line in ("from print", "from a shell", "from os.write", "to stderr", "last, no newline"):
            assert f"[{run.id}/start/" in result.stdout + result.stderr
            assert f"] {line}" in result.stdout + result.stderr
    finally:
        os.kill(background, signal.SIGKILL)


def test_the_fork_server_reads_a_foreach_list_once_for_every_task_of_the_foreach(write_flow, flow_cli, monkeypatch):
    flow_file = write_flow("isolation.py", ISOLATION)
    result = flow_cli("run", str(flow_file))
    assert result.returncode == 0, result.stderr
    run = Flow("Isolation")[run_id_of(result.stdout)]
    parent = f"{run.id}/start/{run['start'].task.id}"
    flow_cls = load_flow_class(str(flow_file), "Isolation")
    backends = Backends.configured()
    preludes = TaskPreludes(flow_cls, FlowGraph(flow_cls, str(flow_file)), backends)
    task = {"step_name": "each", "input_paths": [parent]}
    assert preludes.prepare(task, {}).opened_parents == {}  # a parent asked for once is left to its task

    store = preludes.prepare(task, {}).opened_parents[parent]  # the second ask: a foreach's parent

    def no_reading(*args, **kwargs):
        raise AssertionError("a forked task read the foreach's list from the datastore again")

    for method in ("get", "get_many", "get_buffer", "open_reader"):
        monkeypatch.setattr(backends.storage, method, no_reading)
    assert store.load("items") == [0, 1, 2, 3]


FORKED_FROM_RUNTIME = """
    import os, sys
    from flow_core import FlowSpec, step

    IMPORTED_BY = os.getpid()  # module code runs anew in the fork server, as in a new interpreter

    class Forked(FlowSpec):
        @step
        def start(self):
            server = os.getppid()
            self.imported_by_server = IMPORTED_BY == server
            with open(f"/proc/{server}/cmdline", "rb") as cmdline:
                self.server_cmdline = cmdline.read().split(b"\\0")
            self.server_argv0 = os.path.basename(sys.argv[0])
            self.own_session = os.getsid(server) == server
            self.stdin = os.readlink("/proc/self/fd/0")
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        Forked()
"""


def test_the_fork_server_is_forked_from_the_runtime_and_behaves_as_one_started_anew(write_flow, flow_cli,
                                                                                      python_flow, records):
    path = write_flow("forked.py", FORKED_FROM_RUNTIME)
    for result, runtime_argv in ((flow_cli("run", str(path)), [sys.executable, "-m", "flow_core", "run", str(path)]),
                                 (python_flow(path, "run"), [sys.executable, str(path), "run"])):
        assert result.returncode == 0, result.stderr

        def start(name):
            return records.artifact("Forked", run_id_of(result.stdout), "start", name)

        # Forked from the runtime: no interpreter started, nothing imported twice...
        assert start("server_cmdline")[:len(runtime_argv)] == [os.fsencode(arg) for arg in runtime_argv]
        # ...yet what the flow's code can see is as in a server started anew.
        assert start("imported_by_server") is True
        assert start("server_argv0") == "fork_server.py"
        assert start("own_session") is True
        assert start("stdin") == os.devnull


def test_a_flow_file_that_fails_to_import_in_the_fork_server_fails_the_run_cleanly(write_flow, flow_cli):
    path = write_flow("moody.py", """
        import sys
        from flow_core import FlowSpec, step

        if "fork_server" in sys.argv[0]:
            raise ImportError("only the runtime may import me")

        class Moody(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    failed = flow_cli("run", str(path))
    assert failed.returncode == 1
    assert "the fork server could not load" in failed.stderr and "only the runtime may import me" in failed.stderr
    assert "/start/" in last_error(failed) and "Traceback" not in failed.stderr
    assert flow_cli("run", str(path), "--compute", "subprocess").returncode == 0  # the portable path is unaffected


STRANDED = """
    import os, subprocess, time
    from pathlib import Path
    from flow_core import FlowSpec, step

    class Stranded(FlowSpec):
        @step
        def start(self):
            self.items = [0, 1]
            self.next(self.work, foreach="items")

        @step
        def work(self):
            if not os.environ.get("FAST"):
                helper = subprocess.Popen(["sleep", "120"])  # something the task started itself
                marks = Path(os.environ["MARKS"])
                (marks / f"{self.input}.tmp").write_text(f"{os.getpid()} {os.getppid()} {helper.pid}")
                (marks / f"{self.input}.tmp").rename(marks / str(self.input))
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
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_fork_server_fails_the_run_at_once_and_leaves_no_task_behind(write_flow, flow_env, records,
                                                                              tmp_path):
    path = write_flow("stranded.py", STRANDED)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, **flow_env, "MARKS": str(marks)}
    proc = subprocess.Popen([sys.executable, "-m", "flow_core", "run", str(path), "--max-workers", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len([p for p in marks.iterdir() if not p.name.endswith(".tmp")]) < 2:
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError("the tasks never got going: " + "".join(proc.communicate()))
        time.sleep(0.1)
    pids = [tuple(map(int, (marks / str(i)).read_text().split())) for i in range(2)]
    (server,) = {parent for _task, parent, _helper in pids}
    os.kill(server, signal.SIGKILL)
    started = time.time()
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the run did not notice its fork server died") from None
    assert time.time() - started < 10  # noticed at once, not when the tasks end by themselves
    assert proc.returncode == 1
    run_id = run_id_of(out)
    last = err.strip().splitlines()[-1]
    assert f"run Stranded/{run_id} failed: task Stranded/{run_id}/work/" in last
    assert f"the fork server (pid {server}) died" in last and "its tasks were stopped" in last
    assert f"`resume --origin-run-id {run_id}` continues it" in last
    deadline = time.time() + 5  # the tasks and what they started are gone, not orphaned
    while any(_alive(pid) for task, _parent, helper in pids for pid in (task, helper)) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for task, _parent, helper in pids for pid in (task, helper) if _alive(pid)]
    assert [t.status for t in records.metadata.list_tasks("Stranded", run_id, "work")] == ["failed", "failed"]
    assert records.run("Stranded", run_id).status == "failed"

    resumed = subprocess.run([sys.executable, "-m", "flow_core", "resume", str(path), "--origin-run-id", run_id],
                             env={**env, "FAST": "1"}, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert records.artifact("Stranded", run_id_of(resumed.stdout), "join", "total") == 0 + 1
    assert "Reused Stranded/" in resumed.stdout


def test_a_retry_after_the_fork_server_died_runs_on_a_new_one(write_flow, flow_cli, records):
    path = write_flow("phoenix.py", """
        import os, signal, time
        from flow_core import FlowSpec, current, retry, step

        class Phoenix(FlowSpec):
            @step
            def start(self):
                self.next(self.rise)

            @retry(times=1, minutes_between_retries=0)
            @step
            def rise(self):
                self.server = os.getppid()
                if current.retry_count == 0:
                    os.kill(self.server, signal.SIGKILL)
                    time.sleep(120)
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    result = flow_cli("run", str(path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "its tasks were stopped); retrying." in result.stderr
    (task,) = records.metadata.list_tasks("Phoenix", run_id_of(result.stdout), "rise")
    assert task.attempt == 1 and task.status == "succeeded"


def test_a_task_the_runtime_never_heard_of_does_not_outlive_its_fork_server(flow_env, write_flow, monkeypatch):
    """A task forked a moment before its server died was never named to the runtime: the
    kernel stops it (Linux), since nobody else can."""
    monkeypatch.setattr(local_compute, "stop_forked_task", lambda *args: None)  # the runtime cannot stop it
    with Backends.configured() as backends:
        harness = ComputeHarness(backends, "local", write_flow("conformance.py", CONFORMANCE_FLOW), 60)
        spec = harness.spec(harness.new_run("sleep", 120))
        harness.launch(spec)
        harness.wait_started(spec)
        (pid,) = [int(f.value) for f in backends.metadata.list_metadata(spec.flow_name, spec.run_id, "start",
                                                                         spec.task_id) if f.field == "pid"]
        try:
            with open(f"/proc/{pid}/stat") as stat:
                server = int(stat.read().rsplit(")", 1)[1].split()[1])
            os.kill(server, signal.SIGKILL)
            finish = harness.wait(spec, timeout=30)
            assert finish.returncode != 0 and f"the fork server (pid {server}) died" in finish.reason
            deadline = time.time() + 5
            while _alive(pid) and time.time() < deadline:
                time.sleep(0.1)
            assert not _alive(pid)
        finally:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
