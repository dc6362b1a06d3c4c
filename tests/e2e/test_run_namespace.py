"""``run --namespace`` (and ``resume --namespace``), as Metaflow spells it: the Client API's
namespace inside the run's steps changes; the run's own tags and ``current.namespace`` do not."""

from __future__ import annotations

import json

from flow_core import Runner
from flow_core.testing import run_id_of

SHARED = """
    from flow_core import FlowSpec, step

    class SharedModel(FlowSpec):
        @step
        def start(self):
            self.weights = [1, 2, 3]
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        SharedModel()
"""

READER = """
    import json
    import os
    from flow_core import FlowSpec, Run, current, get_namespace, step

    class Reader(FlowSpec):
        @step
        def start(self):
            print("SEEN " + json.dumps({"namespace": get_namespace(), "current": current.namespace}))
            self.weights = Run("SharedModel/" + os.environ["SHARED_RUN"]).data.weights
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        Reader()
"""


def _seen(output: str) -> dict:
    (line,) = [line for line in output.splitlines() if "SEEN " in line]
    return json.loads(line.split("SEEN ", 1)[1])


def test_run_namespace_changes_what_the_steps_see_and_not_the_runs_tags(write_flow, python_flow, flow_env):
    from flow_core import Run, namespace

    shared = python_flow(write_flow("shared.py", SHARED), "run", env={"METAFLOW_USER": "alice"})
    assert shared.returncode == 0, shared.stderr
    env = {"SHARED_RUN": run_id_of(shared.stdout)}
    reader = write_flow("reader.py", READER)

    # In its own namespace (user:tester), the step cannot see alice's run.
    plain = python_flow(reader, "run", "--tag", "nightly", env=env)
    assert plain.returncode != 0
    assert "SharedModel/" in plain.stdout + plain.stderr and "is not in the namespace 'user:tester'" in \
        plain.stdout + plain.stderr
    assert _seen(plain.stdout) == {"namespace": "user:tester", "current": "user:tester"}

    chosen = python_flow(reader, "run", "--tag", "nightly", "--namespace", "user:alice", env=env)
    assert chosen.returncode == 0, chosen.stderr
    assert _seen(chosen.stdout) == {"namespace": "user:alice", "current": "user:tester"}

    everything = python_flow(reader, "run", "--tag", "nightly", "--namespace=", env=env)
    assert everything.returncode == 0, everything.stderr
    assert _seen(everything.stdout) == {"namespace": None, "current": "user:tester"}

    # The runs are tagged as any run of tester's: the option only changed what the steps read.
    namespace(None)
    runs = {name: Run(f"Reader/{run_id_of(result.stdout)}")
            for name, result in (("plain", plain), ("chosen", chosen), ("everything", everything))}
    assert runs["chosen"].data.weights == [1, 2, 3] and runs["everything"].data.weights == [1, 2, 3]
    assert runs["chosen"].tags == runs["everything"].tags == runs["plain"].tags
    assert "nightly" in runs["chosen"].tags and "user:tester" in runs["chosen"].tags
    assert not any("alice" in tag for run in runs.values() for tag in run.tags)

    # resume takes it too: the failed plain run, resumed in alice's namespace, now succeeds.
    resumed = python_flow(reader, "resume", "--origin-run-id", run_id_of(plain.stdout), "--namespace",
                          "user:alice", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert _seen(resumed.stdout) == {"namespace": "user:alice", "current": "user:tester"}


def test_the_runner_passes_user_namespace_as_metaflows_runner_does(write_flow, python_flow, flow_env, monkeypatch):
    shared = python_flow(write_flow("shared.py", SHARED), "run", env={"METAFLOW_USER": "alice"})
    assert shared.returncode == 0, shared.stderr
    reader = str(write_flow("reader.py", READER))
    env = {"SHARED_RUN": run_id_of(shared.stdout)}
    with Runner(reader, show_output=False, env=env) as runner:
        failed = runner.run()
        assert failed.status == "failed" and "is not in the namespace 'user:tester'" in failed.stdout + failed.stderr
        result = runner.run(user_namespace="user:alice")
        assert result.status == "successful", result.stderr
        assert result.run.data.weights == [1, 2, 3]
        assert _seen(result.stdout)["namespace"] == "user:alice"
        globally = runner.run(user_namespace="")
        assert globally.status == "successful" and _seen(globally.stdout)["namespace"] is None
        resumed = runner.resume(origin_run_id=failed.run.id, user_namespace="user:alice")
        assert resumed.status == "successful" and resumed.run.data.weights == [1, 2, 3]


def test_step_takes_namespace_as_metaflows_step_does(write_flow, python_flow, flow_cli, flow_env):
    """An orchestrator running one task with ``step --namespace``, as Metaflow's runtime passes it."""
    shared = python_flow(write_flow("shared.py", SHARED), "run", env={"METAFLOW_USER": "alice"})
    assert shared.returncode == 0, shared.stderr
    reader = str(write_flow("reader.py", READER))
    env = {"SHARED_RUN": run_id_of(shared.stdout)}
    init = flow_cli("init", reader, "--run-id", "orchestrated")
    assert init.returncode == 0, init.stderr
    task = ["step", reader, "start", "--run-id", "orchestrated", "--input-paths", "orchestrated/_parameters/params"]
    refused = flow_cli(*task, "--task-id", "first", env=env)
    assert refused.returncode != 0 and "is not in the namespace 'user:tester'" in refused.stdout + refused.stderr
    done = flow_cli(*task, "--task-id", "second", "--namespace", "user:alice", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _seen(done.stdout) == {"namespace": "user:alice", "current": "user:tester"}
