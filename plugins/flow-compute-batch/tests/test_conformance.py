"""AWS Batch passes the conformance kit every compute backend must pass: real containers
started by moto's Batch on the tests' own Docker engine, the datastore on SeaweedFS, and local
metadata, so each task's records come back through the datastore as in a real run."""

from __future__ import annotations

import pytest
from flow_core.plugin_api import Backends
from flow_core.testing import ComputeConformance


class TestBatchCompute(ComputeConformance):
    """A task is a Batch job here: seconds to start, state polled every 1 to 5 seconds.

    CloudWatch Logs keeps one stream per job in which stdout and stderr are merged (and moto
    writes it only when the job ends), so the job's lines all come back as "stdout":
    ``separate_streams`` is off, and the output test checks each stream's lines in order
    among them instead.
    """

    separate_streams = False
    stops_within = 90.0

    @pytest.fixture
    def compute_name(self) -> str:
        return "batch"

    @pytest.fixture
    def flow_backends(self, batch_env):
        with Backends.configured() as backends:
            yield backends

    @pytest.fixture
    def timeout(self) -> float:
        return 300.0
