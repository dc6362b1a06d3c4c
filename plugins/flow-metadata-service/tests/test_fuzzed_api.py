"""Requests generated from the service's own OpenAPI description (schemathesis): whatever a
client sends, the answer is a success or a 4xx that says what was wrong, never a 5xx; and
the limits the description documents (``maxLength``, ``maxItems``) are the ones enforced."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

EXAMPLES_PER_ROUTE = 40


def over_limits(schema: dict, value: Any, where: str = "body") -> list[str]:
    """Where ``value`` goes past a ``maxLength`` or ``maxItems`` of ``schema``."""
    found = []
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        found.append(f"{where}: {len(value)} characters > {schema['maxLength']}")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            found.append(f"{where}: {len(value)} items > {schema['maxItems']}")
        for i, item in enumerate(value):
            found += over_limits(schema.get("items", {}), item, f"{where}[{i}]")
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(schema.get("properties", {}).get(key), dict):
                found += over_limits(schema["properties"][key], item, f"{where}.{key}")
    return found


def body_schema(operation) -> dict:
    body = operation.definition.raw.get("requestBody", {})
    return body.get("content", {}).get("application/json", {}).get("schema", {})


def fuzz(operation, mode: GenerationMode, base_url: str, failures: list) -> None:
    """Send one operation's generated requests; note what answered wrongly in ``failures``."""
    documented = body_schema(operation)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, suppress_health_check=list(HealthCheck),
              database=None, derandomize=True)  # the same requests on every run
    def send(case):
        response = case.call(base_url=base_url, timeout=60)
        what = (mode.value, case.method, case.formatted_path, response.status_code, response.text[:200])
        if response.status_code >= 500:
            failures.append(("server error", *what, str(case.body)[:200]))
        elif response.status_code >= 400:
            answer = json.loads(response.text)
            assert answer["message"], what
            if "limit" in answer:
                assert response.status_code in (413, 422) and "over the limit of" in answer["message"], what
                if mode == GenerationMode.POSITIVE:
                    failures.append(("refused within the documented limits", *what))
        elif isinstance(case.body, (dict, list)):
            broken = over_limits(documented, case.body)
            if broken:
                failures.append(("stored over a limit", *what, broken[:3]))

    send()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error_and_every_limit_holds(mode, service, clean_database):
    """Positive requests (within the documented limits) are never refused as over a limit;
    negative ones (the schema broken, limits included) are never stored when over one."""
    schema = schemathesis.openapi.from_url(service.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    if mode == GenerationMode.NEGATIVE:  # what breaks a limit is in the bodies
        operations = [op for op in operations if body_schema(op)]
        assert len(operations) >= 10
    failures: list = []
    for operation in operations:
        fuzz(operation, mode, service.url, failures)
    assert failures == [], "\n".join(map(repr, failures))
