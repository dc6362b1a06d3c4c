"""The core's two computes pass the conformance kit every compute backend must pass."""

from __future__ import annotations

import pytest
from flow_core.testing import ComputeConformance


class TestLocalCompute(ComputeConformance):
    """Tasks forked from the warm fork server, their records relayed over a pipe."""

    @pytest.fixture
    def compute_name(self) -> str:
        return "local"


class TestSubprocessCompute(ComputeConformance):
    """The task command line as a child process, writing its own records."""

    @pytest.fixture
    def compute_name(self) -> str:
        return "subprocess"
