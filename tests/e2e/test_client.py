"""The Client API, against runs made in the test."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flow_core import DataArtifact, Flow, Metaflow, Run, Step, Task, client
from flow_core.errors import NotFound
from flow_core.testing import run_id_of

FANOUT = Path(__file__).resolve().parents[2] / "examples" / "fanout.py"


@pytest.fixture
def fresh_namespace(flow_env):
    client.default_namespace()
    yield
    client.default_namespace()


@pytest.fixture(scope="module")
def fanout_runs(tmp_path_factory):
    """Runs shared by the read-only tests: alice's fan-out (twice, one failing), bob's fan-out."""
    root = tmp_path_factory.mktemp("client") / "root"
    base = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
    base.update(METAFLOW_DATASTORE_SYSROOT_LOCAL=str(root), METAFLOW_HOME=str(root.parent / "home"))

    def run(user: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(FANOUT), *args], env={**base, "METAFLOW_USER": user},
                              capture_output=True, text=True, timeout=300)

    first = run("alice", "run", "--tag", "first")
    assert first.returncode == 0, first.stderr
    failing = run("alice", "run", "--sentences", "5")  # not a list: split fails
    assert failing.returncode == 1
    bobs = run("bob", "run", "--sentences", '["bob was here"]')
    assert bobs.returncode == 0, bobs.stderr
    return {"root": root, "alice": run_id_of(first.stdout), "failed": run_id_of(failing.stdout),
            "bob": run_id_of(bobs.stdout)}


@pytest.fixture
def as_alice(fanout_runs, monkeypatch, fresh_namespace):
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(fanout_runs["root"]))
    monkeypatch.setenv("METAFLOW_USER", "alice")
    client.default_namespace()
    return fanout_runs


def test_navigating_from_metaflow_down_to_artifacts(as_alice):
    assert [f.pathspec for f in Metaflow()] == ["FanOutFlow"]
    flow = Flow("FanOutFlow")
    assert flow.id == "FanOutFlow" and isinstance(flow.created_at, datetime.datetime)
    assert [r.id for r in flow] == [as_alice["failed"], as_alice["alice"]]  # newest first, alice's only
    run = flow.latest_successful_run
    assert run == flow[as_alice["alice"]] == Run(f"FanOutFlow/{as_alice['alice']}")
    assert run.successful and run.finished and run.finished_at >= run.created_at
    assert run.parent == flow and run.pathspec == f"FanOutFlow/{run.id}"
    assert run.data.total == 9 and run.data.per_sentence == [4, 2, 3]
    steps = [s.id for s in run]  # most recently started first, as Metaflow lists them
    assert steps[0] == "end" and steps[-1] == "start"
    assert {s.id for s in run} == {"start", "split", "count", "gather", "describe", "join", "end"}
    assert "count" in run and "nosuch" not in run

    count = run["count"]
    assert isinstance(count, Step) and count.parent == run
    tasks = list(count)
    assert [t.index for t in tasks] == [0, 1, 2]
    assert [t.data.sentence for t in tasks] == ["the quick brown fox", "jumps over", "the lazy dog"]
    assert [t.stdout for t in tasks] == ["sentence 0: 4 words\n", "sentence 1: 2 words\n", "sentence 2: 3 words\n"]
    assert all(t.successful and t.finished and t.stderr == "" and t.exception is None for t in tasks)
    task = tasks[1]
    assert Task(task.pathspec) == task and count[task.id] == task and task.parent == count
    artifact = task["words"]
    assert isinstance(artifact, DataArtifact) and artifact.data == 2 and artifact.id == "words"
    assert task.artifacts.words.sha == artifact.sha and "words" in task.data and "nope" not in task.data
    assert {a.id for a in task} >= {"sentence", "words", "sentences", "items"}
    assert task.metadata_dict["foreach-index"] == "1" and task.metadata_dict["attempt"] == "0"
    assert run["start"].task.index is None
    # equal values share one content key, whatever task stored them
    assert run["end"].task["total"].sha == run["gather"].task["total"].sha


def test_tags_and_the_user_tags_system_tags_split(as_alice):
    run = Run(f"FanOutFlow/{as_alice['alice']}")
    assert run.user_tags == {"first"}
    assert {"user:alice", "runtime:local"} <= run.system_tags
    assert run.tags == run.user_tags | run.system_tags
    assert [r.id for r in Flow("FanOutFlow").runs("first")] == [as_alice["alice"]]
    assert list(Flow("FanOutFlow").runs("never-used")) == []


def test_a_failed_run_and_its_failed_task(as_alice):
    run = Run(f"FanOutFlow/{as_alice['failed']}")
    assert not run.successful and not run.finished and run.data is None
    split = run["split"].task
    assert not split.successful and split.finished
    # Metaflow's shape: an exception object with .type / .exception, readable as one line
    assert str(split.exception) == "TypeError: 'int' object is not iterable"
    assert isinstance(split.exception, Exception) and split.exception.type == "builtins.TypeError"
    assert split.exception.exception == "'int' object is not iterable"
    assert split.exception.stacktrace.startswith("Traceback (most recent call last):")
    assert "Traceback" in split.stderr and "TypeError" in split.stderr
    assert Flow("FanOutFlow").latest_run == run
    assert Flow("FanOutFlow").latest_successful_run.id == as_alice["alice"]


def test_namespaces_of_two_users(as_alice):
    bob_run = f"FanOutFlow/{as_alice['bob']}"
    with pytest.raises(client.NamespaceMismatch, match=f"{bob_run} is not in the namespace 'user:alice'"):
        Run(bob_run)
    with pytest.raises(client.NamespaceMismatch):
        Task(f"{bob_run}/end/{as_alice['bob']}")  # any task of that run, real or not, is refused first
    assert client.get_namespace() == "user:alice"
    client.namespace("user:bob")
    assert [r.id for r in Flow("FanOutFlow")] == [as_alice["bob"]]
    assert Run(bob_run).data.total == 3
    client.namespace(None)
    assert client.get_namespace() is None
    assert len(list(Flow("FanOutFlow"))) == 3
    assert client.default_namespace() == "user:alice"
    assert client.get_metadata() == f"local@{as_alice['root']}"


def test_missing_objects_name_the_pathspec(as_alice):
    with pytest.raises(NotFound, match="flow 'NoSuchFlow' does not exist"):
        Flow("NoSuchFlow")
    with pytest.raises(NotFound, match="run FanOutFlow/9999 does not exist"):
        Run("FanOutFlow/9999")
    run_id = as_alice["alice"]
    with pytest.raises(NotFound, match=f"step FanOutFlow/{run_id}/nosuch does not exist"):
        Step(f"FanOutFlow/{run_id}/nosuch")
    with pytest.raises(NotFound, match=f"task FanOutFlow/{run_id}/count/4242 does not exist"):
        Run(f"FanOutFlow/{run_id}")["count"]["4242"]
    with pytest.raises(NotFound, match="is not a run pathspec"):
        Run("FanOutFlow")
    with pytest.raises(KeyError, match="has no artifact 'nope'"):
        Run(f"FanOutFlow/{run_id}")["end"].task["nope"]


def test_tags_added_after_the_run_persist(write_flow, flow_cli, fresh_namespace):
    result = flow_cli("run", str(FANOUT), "--tag", "draft")
    run_id = run_id_of(result.stdout)
    run = Run(f"FanOutFlow/{run_id}")
    run.add_tag("reviewed")
    run.replace_tag("draft", "final")
    run.add_tags(["a", "b"])
    run.remove_tag("a")
    assert Run(f"FanOutFlow/{run_id}").user_tags == {"reviewed", "final", "b"}  # a fresh read
    with pytest.raises(client.TaggingError, match="'user:tester' is a system tag"):
        run.remove_tag("user:tester")
    with pytest.raises(client.TaggingError):
        run.add_tag("")
    assert [r.id for r in Flow("FanOutFlow").runs("final", "reviewed")] == [run_id]


def test_resumed_run_tasks_name_their_origin(write_flow, flow_cli, fresh_namespace):
    failed = flow_cli("run", str(FANOUT), "--sentences", "5")
    assert failed.returncode == 1
    origin = run_id_of(failed.stdout)
    resumed = flow_cli("resume", str(FANOUT), "--origin-run-id", origin)
    # the parameter is reused with the origin's value, so the resumed run fails the same way
    assert resumed.returncode == 1
    run = Run(f"FanOutFlow/{run_id_of(resumed.stdout)}")
    assert run.origin_pathspec == f"FanOutFlow/{origin}"
    start = run["start"].task
    assert start.origin_pathspec == f"{Run(f'FanOutFlow/{origin}')['start'].task.pathspec}"
    assert run["split"].task.origin_pathspec is None


def test_a_fresh_process_lists_the_example_with_only_client_calls(flow_cli, flow_env):
    assert flow_cli("run", str(FANOUT)).returncode == 0
    script = textwrap.dedent("""
        from flow_core import Flow, Metaflow
        print([f.id for f in Metaflow()])
        run = Flow("FanOutFlow").latest_successful_run
        print(run.pathspec, run.data.total)
        for task in run["count"]:
            print(task.index, task.data.sentence, task.data.words, task.stdout.strip())
    """)
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, **flow_env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "['FanOutFlow']" and lines[1].endswith(" 9")
    assert lines[2:] == ["0 the quick brown fox 4 sentence 0: 4 words", "1 jumps over 2 sentence 1: 2 words",
                         "2 the lazy dog 3 sentence 2: 3 words"]
