"""The service's limits: each one refuses a request over it with a 413 or 422 that names it
and stores nothing; requests at a limit pass; Flow's client keeps its batches within them and
turns a refusal into one sentence for the user."""

from __future__ import annotations

import json

import pytest
from flow_core.plugin_api import ArtifactRecord, FlowError
from flow_metadata_service import limits
from flow_metadata_service.client import ServiceMetadata, attempt_requests
from flow_metadata_service.errors import LimitExceeded

TASK = "/flows/ApiFlow/runs/{run}/steps/start/tasks/{task}"


def field(name: str = "f", value: str = "v", **extra) -> dict:
    return {"field_name": name, "value": value, "type": name, "tags": ["attempt_id:0"], **extra}


def artifact(name: str = "a", **extra) -> dict:
    return {"name": name, "location": "data/ab", "ds_type": "flow", "sha": "ab", "type": "int", **extra}


def over(tag_count: int = 0, **fields) -> dict:
    return {"user_name": "alice", "system_tags": [f"s{i}" for i in range(tag_count)], **fields}


# (what, method, path under the task's run/task, body) -> (status, limit, message)
CASES = [
    ("user name", "POST", "/flows/Limits/run", over(user_name="u" * 256),
     422, "name_length", "'user_name' is 256 characters long, over the limit of 255"),
    ("tag length", "POST", "/flows/Limits/run", over(tags=["t" * 1025]),
     422, "tag_length", "a tag in 'tags' is 1025 characters long, over the limit of 1024"),
    ("tag count", "POST", "/flows/Limits/run", over(tag_count=101),
     422, "tag_count", "'system_tags' holds 101 tags, over the limit of 100"),
    ("tag count of a flow", "POST", "/flows/Limits", over(tag_count=101),
     422, "tag_count", "'system_tags' holds 101 tags, over the limit of 100"),
    ("metadata value", "POST", TASK + "/metadata", [field("big", "v" * 65537)],
     422, "value_length", "the value of metadata field 'big' is 65537 characters long, over the limit of 65536"),
    ("field name", "POST", TASK + "/metadata", [field("n" * 256)],
     422, "name_length", "'field_name' is 256 characters long, over the limit of 255"),
    ("metadata entries", "POST", TASK + "/metadata", [field(f"f{i}") for i in range(10_001)],
     422, "metadata_per_request", "the request carries 10001 metadata entries, over the limit of 10000"),
    ("artifact location", "POST", TASK + "/artifact", [artifact(location="l" * 4097)],
     422, "text_length", "'location' is 4097 characters long, over the limit of 4096"),
    ("artifacts", "POST", TASK + "/artifact", [artifact(f"a{i}") for i in range(10_001)],
     422, "artifacts_per_request", "the request carries 10001 artifacts, over the limit of 10000"),
    ("attempt events", "POST", "/flows/ApiFlow/runs/{run}/attempts",
     [{"step_name": "start", "task_id": "{task}", "metadata": []}] * 1001,
     422, "events_per_request", "the request carries 1001 attempt events, over the limit of 1000"),
    ("metadata entries across events", "POST", "/flows/ApiFlow/runs/{run}/attempts",
     [{"step_name": "start", "task_id": "{task}", "metadata": [field()] * 5001}] * 2,
     422, "metadata_per_request", "the request carries 10002 metadata entries, over the limit of 10000"),
    ("tags filter", "GET", "/flows/ApiFlow/runs?" + "&".join(f"tag=t{i}" for i in range(101)), None,
     422, "tag_count", "the query holds 101 tags, over the limit of 100"),
    ("body size", "POST", TASK + "/metadata", [field("huge", "x" * 50_000)] * 400,  # 20 MB
     413, "body_size", "the request body is over the limit of 16777216 bytes (16 MiB)"),
    ("a 50 MB user name", "POST", "/flows/Limits/run", over(user_name="u" * 50 * 2**20),
     413, "body_size", "the request body is over the limit of 16777216 bytes (16 MiB)"),
]


def fill(value, run, task):
    """``value`` with the task's run and id in place of {run} and {task}."""
    return json.loads(json.dumps(value).replace("{run}", str(run)).replace("{task}", str(task)))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_request_over_a_limit_is_refused_with_its_name_and_value(case, api, new_task, count_rows):
    _, method, path, body, status, limit, message = case
    run, task = new_task()
    rows = count_rows()
    answer = api(method, fill(path, run, task), fill(body, run, task))
    assert answer[:2] == (status, {"message": message, "limit": limit, "maximum": limits.LIMITS[limit][0]})
    assert count_rows() == rows  # refused whole


def test_requests_at_the_limits_pass(api, new_task):
    status, run, _ = api("POST", "/flows/Limits/run", {"user_name": "u" * 255, "tags": ["t" * 1024] * 100,
                                                       "system_tags": [f"s{i}" for i in range(100)]})
    assert status == 200 and len(run["tags"]) == 1 and len(run["system_tags"]) == 100
    run, task = new_task()
    base = TASK.format(run=run, task=task)
    assert api("POST", base + "/metadata", [field("v", "v" * 65536)] + [field(f"f{i}") for i in range(9_999)])[:2] \
        == (200, {"metadata_created": 10_000})
    assert api("POST", base + "/artifact", [artifact("long", location="l" * 4096)]
               + [artifact(f"a{i}") for i in range(9_999)])[:2] == (200, {"artifacts_created": 10_000})


def test_tag_mutation_keeps_a_run_within_the_tag_count(api, new_task):
    run, _ = new_task()
    path = f"/flows/ApiFlow/runs/{run}/tag/mutate"
    assert api("PATCH", path, {"tags_to_add": [f"a{i}" for i in range(60)]})[0] == 200
    status, body, _ = api("PATCH", path, {"tags_to_add": [f"b{i}" for i in range(41)]})
    assert (status, body["limit"], body["message"]) == (
        422, "tag_count", f"run ApiFlow/{run} would have 101 tags, over the limit of 100")
    assert len(api("GET", f"/flows/ApiFlow/runs/{run}")[1]["tags"]) == 60
    assert api("PATCH", path, {"tags_to_add": [f"b{i}" for i in range(40)]})[0] == 200  # 100 exactly


def test_the_limits_are_in_the_openapi_description(api):
    document = api("GET", "/openapi.json")[1]
    assert document["x-limits"]["tag_length"] == {"maximum": 1024, "of": "characters in a tag"}
    metadata = document["paths"]["/flows/{flow_id}/runs/{run}/steps/{step}/tasks/{task}/metadata"]["post"]
    schema = metadata["requestBody"]["content"]["application/json"]["schema"]
    assert schema["maxItems"] == 10_000 and schema["items"]["properties"]["value"]["maxLength"] == 65536
    assert set(metadata["responses"]) >= {"413", "422"}
    assert "body_size: at most 16777216 bytes" in document["info"]["description"]


# -- Flow's client ----------------------------------------------------------------------------------


def foreach_events(tasks: int, artifacts: int) -> list[dict]:
    """What a runtime's batch holds for a foreach's tasks: each one's start, then its end."""
    client = ServiceMetadata("http://unused", user="alice")
    events = []
    client._record = lambda flow, run, event: events.append(event)
    for task in range(1, tasks + 1):
        client.start_attempt("F", "1", "work", str(task), 0, {"hostname": "h", "foreach-index": str(task)})
        client.finish_attempt("F", "1", "work", str(task), 0, True,
                              [ArtifactRecord(f"x{i}", "ab" * 32, "int", 10, "msgpack", 0) for i in range(artifacts)])
    return events


def test_the_client_cuts_batches_to_the_limits_and_keeps_their_order():
    events = foreach_events(1000, 12) + foreach_events(1, 25_000)  # 12,000 artifacts, then one task's 25,000
    requests = attempt_requests(events)
    for request in requests:
        assert len(request) <= limits.MAX_EVENTS
        assert sum(len(e["metadata"]) for e in request) <= limits.MAX_METADATA
        assert sum(len(e.get("artifacts", [])) for e in request) <= limits.MAX_ARTIFACTS
        assert len(json.dumps(request)) <= limits.MAX_BODY
    pieces = [e for request in requests for e in request]
    flat = [(e["task_id"], kind, item) for e in pieces for kind in ("artifacts", "metadata")
            for item in e.get(kind, [])]
    assert flat == [(e["task_id"], kind, item) for e in events for kind in ("artifacts", "metadata")
                    for item in e.get(kind, [])]
    assert len(requests) == 5  # 2+1 for the foreach (events, then artifacts), 3 for the big task
    big = [e for e in pieces if e["task_id"] == "1" and e in requests[-1]]
    assert big[-1]["metadata"][-1]["field_name"] == "attempt_ok"  # still last, after every artifact


def test_a_1000_task_foreach_batch_is_recorded_within_the_limits(api, service):
    _, run, _ = api("POST", "/flows/F/run", {"user_name": "alice"})
    client = ServiceMetadata(service.url, user="alice")
    ids = client.new_tasks("F", str(run["run_number"]), "work", 1000)
    events = foreach_events(1000, 12)
    with client.batch():
        for event in events:
            task = ids[int(event["task_id"]) - 1]
            client._record("F", str(run["run_number"]), {**event, "task_id": task})
    tasks = client.list_tasks("F", str(run["run_number"]), "work")
    assert [t.status for t in tasks] == ["succeeded"] * 1000
    assert len(client.list_artifacts("F", str(run["run_number"]), "work", ids[-1])) == 12


def test_the_client_names_the_limit_in_one_sentence(service, clean_database):
    client = ServiceMetadata(service.url, user="alice")
    with pytest.raises(LimitExceeded) as refused:
        client.new_run("Limits", "alice", tags=["t" * 2000])
    assert isinstance(refused.value, FlowError)
    assert (refused.value.limit, refused.value.maximum) == ("tag_length", 1024)
    assert str(refused.value) == (f"the metadata service at {service.url} refused POST /flows/Limits/run because "
                                  "a tag in 'tags' is 2000 characters long, over the limit of 1024")


def test_a_run_over_a_limit_fails_in_one_sentence(service_env, flow_cli, write_flow, service):
    path = write_flow("tagged.py", """
        from flow_core import FlowSpec, step

        class Tagged(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    result = flow_cli("run", str(path), env={"METAFLOW_USER": "u" * 300})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: the metadata service at {service.url} refused POST /flows/Tagged/run because "
        "'user_name' is 300 characters long, over the limit of 255")
