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
