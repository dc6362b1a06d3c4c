"""The tests every metadata backend must pass.

Subclass `MetadataConformance` and provide a ``metadata_factory`` fixture: a callable that
returns a new client of one fresh, shared store on each call (the tests open several, as
several processes would). ``metadata`` is one such client.
"""

from __future__ import annotations

import multiprocessing
import threading

import attrs
import pytest

from flow_core.backends.records import FAILED, RUNNING, SUCCEEDED, ArtifactRecord
from flow_core.errors import MetadataError, NotFound


def _allocate_runs(factory, flow_name: str, count: int, out: list) -> None:
    backend = factory()
    out.extend(backend.new_run(flow_name, "tester").run_id for _ in range(count))


def _allocate_in_process(factory, flow_name: str, count: int, queue) -> None:
    backend = factory()
    queue.put([backend.new_run(flow_name, "tester").run_id for _ in range(count)])


class MetadataConformance:
    """Behaviour of `flow_core.plugin_api.MetadataBackend` implementations."""

    #: Set False for a backend whose factory cannot be pickled into another process.
    test_across_processes = True

    @pytest.fixture
    def metadata_factory(self):
        raise NotImplementedError("a MetadataConformance subclass must define a `metadata_factory` fixture")

    @pytest.fixture
    def metadata(self, metadata_factory):
        return metadata_factory()

    # -- runs ------------------------------------------------------------------------------

    def test_new_run_is_recorded_running_with_its_tags(self, metadata):
        run = metadata.new_run("ConfFlow", "alice", tags=["exp"], system_tags=["user:alice"])
        assert run.status == RUNNING
        stored = metadata.get_run("ConfFlow", run.run_id)
        assert stored.user == "alice" and stored.status == RUNNING
        assert stored.tags == {"exp"} and stored.system_tags == {"user:alice"}
        assert stored.pathspec == f"ConfFlow/{run.run_id}"

    def test_run_ids_are_distinct_and_listed_newest_first(self, metadata):
        ids = [metadata.new_run("ConfFlow", "alice").run_id for _ in range(5)]
        assert len(set(ids)) == 5
        assert [r.run_id for r in metadata.list_runs("ConfFlow")] == list(reversed(ids))
        assert [r.run_id for r in metadata.list_runs("ConfFlow", limit=2)] == list(reversed(ids))[:2]

    def test_concurrent_clients_allocate_distinct_run_ids(self, metadata_factory):
        found: list[str] = []
        threads = [threading.Thread(target=_allocate_runs, args=(metadata_factory, "Race", 10, found))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(found) == 40 and len(set(found)) == 40

    def test_concurrent_processes_allocate_distinct_run_ids(self, metadata_factory):
        if not self.test_across_processes:
            pytest.fail("test_across_processes is False: override this test with an equivalent one")
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        procs = [context.Process(target=_allocate_in_process, args=(metadata_factory, "ProcRace", 10, queue))
                 for _ in range(3)]
        for proc in procs:
            proc.start()
        found = [run_id for _ in procs for run_id in queue.get(timeout=120)]
        for proc in procs:
            proc.join(timeout=60)
        assert len(found) == 30 and len(set(found)) == 30

    def test_finish_run_sets_status_and_time(self, metadata):
        ok = metadata.new_run("ConfFlow", "alice")
        bad = metadata.new_run("ConfFlow", "alice")
        metadata.finish_run("ConfFlow", ok.run_id, True)
        metadata.finish_run("ConfFlow", bad.run_id, False)
        assert metadata.get_run("ConfFlow", ok.run_id).status == SUCCEEDED
        assert metadata.get_run("ConfFlow", bad.run_id).status == FAILED
        assert metadata.get_run("ConfFlow", ok.run_id).finished_at >= ok.created_at

    def test_heartbeat_moves_forward(self, metadata):
        run = metadata.new_run("ConfFlow", "alice")
        before = metadata.get_run("ConfFlow", run.run_id).heartbeat_at
        metadata.heartbeat_run("ConfFlow", run.run_id)
        assert metadata.get_run("ConfFlow", run.run_id).heartbeat_at >= before
        assert not metadata.get_run("ConfFlow", run.run_id).crashed

    def test_list_runs_filters_by_every_tag(self, metadata):
        a = metadata.new_run("ConfFlow", "alice", tags=["x", "y"], system_tags=["user:alice"])
        b = metadata.new_run("ConfFlow", "bob", tags=["x"], system_tags=["user:bob"])
        assert {r.run_id for r in metadata.list_runs("ConfFlow", tags=["x"])} == {a.run_id, b.run_id}
        assert [r.run_id for r in metadata.list_runs("ConfFlow", tags=["x", "y"])] == [a.run_id]
        assert [r.run_id for r in metadata.list_runs("ConfFlow", tags=["user:bob"])] == [b.run_id]
        assert metadata.list_runs("ConfFlow", tags=["nope"]) == []

    def test_user_tags_can_be_added_and_removed_but_not_system_tags(self, metadata):
        run = metadata.new_run("ConfFlow", "alice", tags=["keep"], system_tags=["user:alice"])
        metadata.add_run_tags("ConfFlow", run.run_id, ["new"])
        metadata.remove_run_tags("ConfFlow", run.run_id, ["keep", "user:alice"])
        stored = metadata.get_run("ConfFlow", run.run_id)
        assert stored.tags == {"new"} and stored.system_tags == {"user:alice"}

    def test_list_flows_and_unknown_lookups(self, metadata):
        metadata.new_run("Beta", "alice")
        metadata.new_run("Alpha", "alice")
        names = [f.name for f in metadata.list_flows()]
        assert names == sorted(names) and {"Alpha", "Beta"} <= set(names)
        assert metadata.get_run("Alpha", "999999") is None
        assert metadata.list_runs("NoSuchFlow") == []

    def test_origin_run_id_is_kept(self, metadata):
        first = metadata.new_run("ConfFlow", "alice")
        resumed = metadata.new_run("ConfFlow", "alice", origin_run_id=first.run_id)
        assert metadata.get_run("ConfFlow", resumed.run_id).origin_run_id == first.run_id

    # -- steps, tasks, attempts ------------------------------------------------------------

    def test_task_ids_are_unique_in_the_run_and_steps_are_listed_in_order(self, metadata):
        run = metadata.new_run("ConfFlow", "alice")
        start = metadata.new_tasks("ConfFlow", run.run_id, "start")
        fan = metadata.new_tasks("ConfFlow", run.run_id, "fan", count=3)
        end = metadata.new_tasks("ConfFlow", run.run_id, "end")
        ids = start + fan + end
        assert len(ids) == 5 and len(set(ids)) == 5
        assert [s.step_name for s in metadata.list_steps("ConfFlow", run.run_id)] == ["start", "fan", "end"]
        assert [t.task_id for t in metadata.list_tasks("ConfFlow", run.run_id, "fan")] == fan
        assert {t.step_name for t in metadata.list_tasks("ConfFlow", run.run_id)} == {"start", "fan", "end"}

    def test_attempts_record_status_artifacts_and_fields(self, metadata):
        run = metadata.new_run("ConfFlow", "alice")
        (task,) = metadata.new_tasks("ConfFlow", run.run_id, "start")
        assert metadata.get_task("ConfFlow", run.run_id, "start", task).attempt == -1
        metadata.start_attempt("ConfFlow", run.run_id, "start", task, 0, {"hostname": "h1"})
        assert metadata.get_task("ConfFlow", run.run_id, "start", task).status == RUNNING
        metadata.finish_attempt("ConfFlow", run.run_id, "start", task, 0, False, fields={"exit": "1"})
        assert metadata.get_task("ConfFlow", run.run_id, "start", task).status == FAILED
        metadata.start_attempt("ConfFlow", run.run_id, "start", task, 1, {"hostname": "h2"})
        records = [ArtifactRecord("alpha", "k" * 64, "builtins.int", 3, "msgpack", 1),
                   ArtifactRecord("beta", "j" * 64, "builtins.tuple", 9, "pickle", 1)]
        metadata.finish_attempt("ConfFlow", run.run_id, "start", task, 1, True, records)
        stored = metadata.get_task("ConfFlow", run.run_id, "start", task)
        assert (stored.attempt, stored.status) == (1, SUCCEEDED) and stored.finished_at is not None
        assert metadata.list_artifacts("ConfFlow", run.run_id, "start", task) == records
        assert metadata.list_artifacts("ConfFlow", run.run_id, "start", task, attempt=0) == []
        fields = [(f.field, f.value, f.attempt) for f in metadata.list_metadata("ConfFlow", run.run_id, "start", task)]
        assert fields == [("hostname", "h1", 0), ("exit", "1", 0), ("hostname", "h2", 1)]

    def test_list_attempts_gives_every_attempt_of_a_run_with_its_times(self, metadata):
        run = metadata.new_run("ConfFlow", "alice")
        (retried,) = metadata.new_tasks("ConfFlow", run.run_id, "start")
        running, waiting = metadata.new_tasks("ConfFlow", run.run_id, "fan", count=2)
        metadata.start_attempt("ConfFlow", run.run_id, "start", retried, 0, {"hostname": "h1"})
        metadata.finish_attempt("ConfFlow", run.run_id, "start", retried, 0, False)
        metadata.start_attempt("ConfFlow", run.run_id, "start", retried, 1, {"hostname": "h2"})
        metadata.finish_attempt("ConfFlow", run.run_id, "start", retried, 1, True)
        metadata.start_attempt("ConfFlow", run.run_id, "fan", running, 0, {"hostname": "h3"})
        attempts = metadata.list_attempts("ConfFlow", run.run_id)
        assert [(a.step_name, a.task_id, a.attempt, a.status) for a in attempts] == [
            ("start", retried, 0, FAILED), ("start", retried, 1, SUCCEEDED), ("fan", running, 0, RUNNING)]
        first, second, live = attempts
        assert first.started_at <= first.finished_at <= second.started_at <= second.finished_at
        assert live.finished_at is None and live.running and live.started_at >= first.started_at
        other = metadata.new_run("ConfFlow", "alice")
        assert metadata.list_attempts("ConfFlow", other.run_id) == []

    def test_list_attempts_of_named_tasks(self, metadata):
        metadata.new_run("ConfFlow", "alice", run_id="sfn-attempts")
        metadata.register_tasks("ConfFlow", "sfn-attempts", "start", ["t-one"])
        metadata.start_attempt("ConfFlow", "sfn-attempts", "start", "t-one", 0)
        metadata.finish_attempt("ConfFlow", "sfn-attempts", "start", "t-one", 0, True)
        (attempt,) = metadata.list_attempts("ConfFlow", "sfn-attempts")
        assert (attempt.step_name, attempt.task_id, attempt.attempt, attempt.status) == ("start", "t-one", 0, SUCCEEDED)
        assert attempt.finished_at >= attempt.started_at

    def test_unknown_task_is_none(self, metadata):
        run = metadata.new_run("ConfFlow", "alice")
        assert metadata.get_task("ConfFlow", run.run_id, "start", "424242") is None
        assert metadata.list_tasks("ConfFlow", run.run_id) == []

    # -- runs and tasks named by the caller (an orchestrator's ids) ----------------------------

    def test_a_named_run_is_created_once(self, metadata):
        before = metadata.new_run("ConfFlow", "alice")
        first = metadata.new_run("ConfFlow", "alice", tags=["a"], system_tags=["user:alice"], run_id="sfn-3f2a")
        assert first.run_id == "sfn-3f2a" and first.pathspec == "ConfFlow/sfn-3f2a" and first.status == RUNNING
        again = metadata.new_run("ConfFlow", "bob", tags=["b"], system_tags=["user:bob"], run_id="sfn-3f2a")
        assert _beatless(again) == _beatless(first) == _beatless(metadata.get_run("ConfFlow", "sfn-3f2a"))
        assert again.user == "alice" and again.tags == {"a"} and again.system_tags == {"user:alice"}
        after = metadata.new_run("ConfFlow", "alice")
        assert [r.run_id for r in metadata.list_runs("ConfFlow")] == [after.run_id, "sfn-3f2a", before.run_id]
        assert [r.run_id for r in metadata.list_runs("ConfFlow", tags=["a"])] == ["sfn-3f2a"]
        assert metadata.get_run("ConfFlow", "sfn-nope") is None
        metadata.finish_run("ConfFlow", "sfn-3f2a", True)
        assert metadata.get_run("ConfFlow", "sfn-3f2a").status == SUCCEEDED

    def test_names_that_are_numbers_empty_or_paths_are_refused(self, metadata):
        run = metadata.new_run("ConfFlow", "alice")
        for bad in ["123", "", "a/b"]:
            with pytest.raises(MetadataError):
                metadata.new_run("ConfFlow", "alice", run_id=bad)
            with pytest.raises(MetadataError):
                metadata.register_tasks("ConfFlow", run.run_id, "start", [bad])
        assert [r.run_id for r in metadata.list_runs("ConfFlow")] == [run.run_id]
        assert metadata.list_tasks("ConfFlow", run.run_id) == []

    def test_register_tasks_is_idempotent(self, metadata):
        metadata.new_run("ConfFlow", "alice", run_id="sfn-run")
        metadata.register_tasks("ConfFlow", "sfn-run", "fan", ["t-a", "t-b"])
        metadata.start_attempt("ConfFlow", "sfn-run", "fan", "t-a", 0)
        metadata.register_tasks("ConfFlow", "sfn-run", "fan", ["t-a", "t-b", "t-c", "t-c"])
        tasks = metadata.list_tasks("ConfFlow", "sfn-run", "fan")
        assert sorted(t.task_id for t in tasks) == ["t-a", "t-b", "t-c"]
        assert {t.run_id for t in tasks} == {"sfn-run"}
        assert metadata.get_task("ConfFlow", "sfn-run", "fan", "t-a").attempt == 0
        assert metadata.get_task("ConfFlow", "sfn-run", "fan", "t-b").attempt == -1
        assert metadata.get_task("ConfFlow", "sfn-run", "fan", "t-nope") is None
        assert [s.step_name for s in metadata.list_steps("ConfFlow", "sfn-run")] == ["fan"]

    def test_a_named_task_of_a_named_run_records_attempts(self, metadata):
        metadata.new_run("ConfFlow", "alice", run_id="sfn-9")
        metadata.register_tasks("ConfFlow", "sfn-9", "start", ["t-9c1b"])
        task = metadata.get_task("ConfFlow", "sfn-9", "start", "t-9c1b")
        assert (task.run_id, task.task_id, task.attempt) == ("sfn-9", "t-9c1b", -1)
        assert task.pathspec == "ConfFlow/sfn-9/start/t-9c1b"
        metadata.start_attempt("ConfFlow", "sfn-9", "start", "t-9c1b", 0, {"hostname": "h1"})
        metadata.finish_attempt("ConfFlow", "sfn-9", "start", "t-9c1b", 0, False, fields={"exit": "1"})
        metadata.start_attempt("ConfFlow", "sfn-9", "start", "t-9c1b", 1, {"hostname": "h2"})
        records = [ArtifactRecord("alpha", "k" * 64, "builtins.int", 3, "msgpack", 1)]
        metadata.finish_attempt("ConfFlow", "sfn-9", "start", "t-9c1b", 1, True, records, {"exit": "0"})
        stored = metadata.get_task("ConfFlow", "sfn-9", "start", "t-9c1b")
        assert (stored.task_id, stored.attempt, stored.status) == ("t-9c1b", 1, SUCCEEDED)
        assert metadata.list_tasks("ConfFlow", "sfn-9") == [stored]
        assert metadata.list_artifacts("ConfFlow", "sfn-9", "start", "t-9c1b") == records
        assert metadata.list_artifacts("ConfFlow", "sfn-9", "start", "t-9c1b", attempt=1) == records
        assert metadata.list_artifacts("ConfFlow", "sfn-9", "start", "t-9c1b", attempt=0) == []
        fields = [(f.field, f.value, f.attempt) for f in metadata.list_metadata("ConfFlow", "sfn-9", "start", "t-9c1b")]
        assert fields == [("hostname", "h1", 0), ("exit", "1", 0), ("hostname", "h2", 1), ("exit", "0", 1)]
        assert [(s.run_id, s.step_name, s.pathspec) for s in metadata.list_steps("ConfFlow", "sfn-9")] == [
            ("sfn-9", "start", "ConfFlow/sfn-9/start")]

    def test_named_and_numbered_tasks_share_a_run(self, metadata):
        run = metadata.new_run("ConfFlow", "alice")
        metadata.register_tasks("ConfFlow", run.run_id, "_parameters", ["params-1"])
        (first,) = metadata.new_tasks("ConfFlow", run.run_id, "start")
        metadata.register_tasks("ConfFlow", run.run_id, "start", ["t-x"])
        fan = metadata.new_tasks("ConfFlow", run.run_id, "fan", count=2)
        assert len({first, *fan}) == 3
        listed = [t.task_id for t in metadata.list_tasks("ConfFlow", run.run_id)]
        assert sorted(listed) == sorted(["params-1", first, "t-x", *fan])
        assert [t for t in listed if t.isdigit()] == sorted([first, *fan], key=int)
        assert {t.task_id for t in metadata.list_tasks("ConfFlow", run.run_id, "start")} == {first, "t-x"}
        assert [t.task_id for t in metadata.list_tasks("ConfFlow", run.run_id, "fan")] == fan
        for task, ok in [(first, True), ("t-x", False)]:
            metadata.start_attempt("ConfFlow", run.run_id, "start", task, 0)
            metadata.finish_attempt("ConfFlow", run.run_id, "start", task, 0, ok, fields={"which": task})
        assert metadata.get_task("ConfFlow", run.run_id, "start", first).status == SUCCEEDED
        assert metadata.get_task("ConfFlow", run.run_id, "start", "t-x").status == FAILED
        assert [f.value for f in metadata.list_metadata("ConfFlow", run.run_id, "start", "t-x")] == ["t-x"]
        assert {s.step_name for s in metadata.list_steps("ConfFlow", run.run_id)} == {"_parameters", "start", "fan"}

    def test_numbered_tasks_in_a_named_run(self, metadata):
        metadata.new_run("ConfFlow", "alice", run_id="argo-7")
        (task,) = metadata.new_tasks("ConfFlow", "argo-7", "start")
        metadata.start_attempt("ConfFlow", "argo-7", "start", task, 0)
        metadata.finish_attempt("ConfFlow", "argo-7", "start", task, 0, True)
        stored = metadata.get_task("ConfFlow", "argo-7", "start", task)
        assert (stored.run_id, stored.task_id, stored.status) == ("argo-7", task, SUCCEEDED)

    def test_register_tasks_in_a_missing_run_is_not_found(self, metadata):
        with pytest.raises(NotFound):
            metadata.register_tasks("NoSuchFlow", "sfn-missing", "start", ["t-1"])
        metadata.new_run("ConfFlow", "alice", run_id="sfn-here")
        with pytest.raises(NotFound):
            metadata.register_tasks("ConfFlow", "sfn-missing", "start", ["t-1"])
        with pytest.raises(NotFound):
            metadata.register_tasks("ConfFlow", "424242", "start", ["t-1"])

    def test_names_work_inside_a_batch(self, metadata):
        records = [ArtifactRecord("alpha", "k" * 64, "builtins.int", 3, "msgpack", 0)]
        with metadata.batch():
            run = metadata.new_run("ConfFlow", "alice", tags=["a"], run_id="sfn-batch")
            metadata.register_tasks("ConfFlow", "sfn-batch", "start", ["t-1", "t-2"])
            again = metadata.new_run("ConfFlow", "bob", run_id="sfn-batch")
            metadata.register_tasks("ConfFlow", "sfn-batch", "start", ["t-2"])
            (numbered,) = metadata.new_tasks("ConfFlow", "sfn-batch", "start")
            for task in ("t-1", "t-2", numbered):
                metadata.start_attempt("ConfFlow", "sfn-batch", "start", task, 0, {"hostname": "h"})
                metadata.finish_attempt("ConfFlow", "sfn-batch", "start", task, 0, True, records)
        assert _beatless(again) == _beatless(run) and again.run_id == "sfn-batch"
        assert [r.run_id for r in metadata.list_runs("ConfFlow")] == ["sfn-batch"]
        tasks = metadata.list_tasks("ConfFlow", "sfn-batch", "start")
        assert sorted(t.task_id for t in tasks) == sorted(["t-1", "t-2", numbered])
        assert {t.status for t in tasks} == {SUCCEEDED}
        assert metadata.list_artifacts("ConfFlow", "sfn-batch", "start", "t-2") == records


def _beatless(run):
    """The run record without its heartbeat time, which a backend may refresh whenever the run
    is asked for again (and which moves to the next second between two calls now and then)."""
    return attrs.evolve(run, heartbeat_at=None)
