"""Requests generated from the service's own OpenAPI description (schemathesis): whatever a
client sends, the answer is a success or a 4xx that says what was wrong, never a 5xx."""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES_PER_ROUTE = 40


def test_no_request_gets_a_server_error(service, clean_database):
    schema = schemathesis.openapi.from_url(service.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None, derandomize=True)  # the same requests on every run
        def fuzz(case):
            response = case.call(base_url=service.url, timeout=30)
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, case.body, response.status_code,
                                 response.text[:200]))
            elif response.status_code >= 400:
                assert json.loads(response.text)["message"], (case.method, case.formatted_path)

        fuzz()
    assert failures == [], "\n".join(map(repr, failures))
