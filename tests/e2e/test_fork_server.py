"""Tasks forked from the warm fork server keep the isolation of a fresh process each."""

from __future__ import annotations

from flow_core.testing import last_error, run_id_of

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
    for index in range(4):
        assert f"] task {index} done" in result.stdout


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
