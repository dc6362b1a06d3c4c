"""Flow's service client passes the suite every metadata backend must pass, through a real
service on a real PostgreSQL."""

from __future__ import annotations

import functools

import pytest
from flow_core.testing import MetadataConformance
from flow_metadata_service.client import ServiceMetadata


class TestServiceMetadata(MetadataConformance):
    @pytest.fixture
    def metadata_factory(self, service, clean_database):
        return functools.partial(ServiceMetadata, service.url, None, "tester")

    def test_describe_names_the_service(self, metadata, service):
        assert metadata.describe() == f"service@{service.url}"

    def test_run_numbers_are_64_bit(self, metadata, sql):
        sql("ALTER TABLE runs ALTER COLUMN run_number RESTART WITH 5000000000")
        run = metadata.new_run("Big", "tester")
        assert run.run_id == "5000000000"
        assert metadata.get_run("Big", "5000000000").run_id == "5000000000"
        assert metadata.new_tasks("Big", run.run_id, "start", 2)

    def test_a_runs_attempts_are_one_request_whatever_its_task_count(self, metadata):
        run = metadata.new_run("Wide", "tester")
        tasks = metadata.new_tasks("Wide", run.run_id, "fan", 40)
        with metadata.batch():
            for task in tasks:
                metadata.start_attempt("Wide", run.run_id, "fan", task, 0, {"hostname": "h"})
                metadata.finish_attempt("Wide", run.run_id, "fan", task, 0, True)
        sent = []
        send = metadata._send
        metadata._send = lambda *args, **kwargs: sent.append(args[:2]) or send(*args, **kwargs)
        attempts = metadata.list_attempts("Wide", run.run_id)
        assert [a.task_id for a in attempts] == tasks and {a.status for a in attempts} == {"succeeded"}
        assert sent == [("GET", f"/flows/Wide/runs/{run.run_id}/attempts")]

    def test_a_service_without_the_attempts_route_is_asked_task_by_task(self, metadata, monkeypatch):
        """A service of an earlier release has no ``GET …/attempts`` (its /ping names no
        revision): the client falls back on the per-task metadata, with the same answer."""
        from flow_metadata_service import api

        run = metadata.new_run("Old", "tester")
        (task,) = metadata.new_tasks("Old", run.run_id, "start")
        metadata.start_attempt("Old", run.run_id, "start", task, 0, {"hostname": "h"})
        metadata.finish_attempt("Old", run.run_id, "start", task, 0, False)
        metadata.start_attempt("Old", run.run_id, "start", task, 1, {"hostname": "h"})
        current = [(a.task_id, a.attempt, a.status) for a in metadata.list_attempts("Old", run.run_id)]
        older = ServiceMetadata(metadata.url, None, "tester")
        older._check_version()
        older._revision = 0  # what the /ping of a service before revision 1 leaves it at
        assert api.API_REVISION >= 1 and metadata._revision == api.API_REVISION
        assert [(a.task_id, a.attempt, a.status) for a in older.list_attempts("Old", run.run_id)] == current == [
            (task, 0, "failed"), (task, 1, "running")]
