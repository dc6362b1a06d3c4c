"""The HTTP API itself: shapes Metaflow's client depends on, errors, pages, deletes, auth."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from flow_metadata_service.migrations import migrate_database
from flow_metadata_service.service_process import ServiceProcess


def test_ping_reports_a_version_metaflow_accepts(api):
    status, body, headers = api("GET", "/ping")
    assert status == 200 and body == b"pong"
    assert headers["metadata_service_version"] == "2.5.0"


def test_missing_objects_are_404_with_a_message_even_for_huge_numbers(api, new_task):
    run, task = new_task()
    for path in ["/flows/Nope", "/flows/Nope/runs", "/flows/ApiFlow/runs/99999999999999999999999",
                 "/flows/ApiFlow/runs/argo-unknown", "/flows/ApiFlow/runs/%C2%B9",  # "¹" is a digit to Python
                 "/flows/ApiFlow/runs/1721143286111471/steps",
                 f"/flows/ApiFlow/runs/{run}/steps/nope", f"/flows/ApiFlow/runs/{run}/steps/start/tasks/123456789",
                 f"/flows/ApiFlow/runs/{run}/steps/start/tasks/{task}/artifacts/nope"]:
        status, body, _ = api("GET", path)
        assert status == 404, path
        assert "does not exist" in body["message"]


def test_bad_bodies_are_400_and_never_5xx(api, new_task):
    run, task = new_task()
    metadata = f"/flows/ApiFlow/runs/{run}/steps/start/tasks/{task}/metadata"
    artifact = f"/flows/ApiFlow/runs/{run}/steps/start/tasks/{task}/artifact"
    cases = [
        ("POST", "/flows/ApiFlow/run", None, b"{not json"),
        ("POST", "/flows/ApiFlow/run", ["a list"], None),
        ("POST", "/flows/ApiFlow/run", {"tags": "not-a-list"}, None),
        ("POST", "/flows/ApiFlow/run", {"run_number": "12"}, None),
        ("POST", metadata, {"not": "a list"}, None),
        ("POST", metadata, [1, 2], None),
        ("POST", metadata, [{"value": "no field name"}], None),
        ("POST", metadata, [{"field_name": "x", "value": "nul\u0000byte", "type": "t"}], None),
        ("POST", artifact, [{"name": "x"}], None),
        ("POST", artifact, [{"name": "x", "location": "l", "ds_type": "d", "sha": "s", "attempt_id": -1}], None),
        ("PATCH", f"/flows/ApiFlow/runs/{run}/tag/mutate", {"tags_to_add": "x"}, None),
        ("GET", "/flows/ApiFlow/runs?_limit=0", None, None),
        ("GET", "/flows/ApiFlow/runs?status=sleeping", None, None),
        ("GET", f"/flows/ApiFlow/runs/{run}/steps/start/filtered_tasks?metadata_field_name=x&pattern=(", None, None),
    ]
    for method, path, body, raw in cases:
        status, answer, _ = api(method, path, body, raw)
        assert status == 400, (method, path, body, raw, status, answer)
        assert answer["message"]


def test_metadata_values_may_be_json_and_attempt_fields_move_the_task(api, new_task):
    run, task = new_task()
    base = f"/flows/ApiFlow/runs/{run}/steps/start/tasks/{task}"
    assert api("POST", base + "/metadata", [
        {"field_name": "attempt", "value": "0", "type": "attempt", "tags": ["attempt_id:0"]},
        {"field_name": "foreach-stack", "value": ["items=2"], "type": "foreach-stack", "tags": ["attempt_id:0"]},
    ])[1] == {"metadata_created": 2}
    _, rows, _ = api("GET", base + "/metadata")
    assert [(r["field_name"], r["value"], r["tags"]) for r in rows] == [
        ("attempt", "0", ["attempt_id:0"]), ("foreach-stack", '["items=2"]', ["attempt_id:0"])]
    api("POST", base + "/metadata", [{"field_name": "attempt_ok", "value": "False", "type": "internal_attempt_status",
                                      "tags": ["attempt_id:0"]}])
    assert api("GET", base)[1]["status"] == "failed"


def test_a_retried_end_task_that_succeeds_finishes_its_run(api, new_task):
    """Metaflow reports attempts only as metadata fields; the task's and run's state follow them."""
    run, _ = new_task()
    status, task, _ = api("POST", f"/flows/ApiFlow/runs/{run}/steps/end/task", {"user_name": "alice"})
    base = f"/flows/ApiFlow/runs/{run}/steps/end/tasks/{task['task_id']}"

    def post(*fields):
        assert api("POST", base + "/metadata", [
            {"field_name": name, "value": value, "type": name, "tags": [f"attempt_id:{attempt}"]}
            for name, value, attempt in fields])[0] == 200
        return api("GET", base)[1], api("GET", f"/flows/ApiFlow/runs/{run}")[1]

    task, run_row = post(("attempt", "0", 0))
    assert (task["attempt"], task["status"], task["finished_at"], run_row["recorded_status"]) == (0, "running", None,
                                                                                                   "running")
    task, run_row = post(("attempt_ok", "False", 0))
    assert (task["status"], run_row["recorded_status"]) == ("failed", "running") and task["finished_at"]
    task, _ = post(("attempt", "1", 1))
    assert (task["attempt"], task["status"], task["finished_at"]) == (1, "running", None)
    task, run_row = post(("attempt_ok", "True", 1))
    assert (task["attempt"], task["status"], run_row["recorded_status"]) == (1, "succeeded", "succeeded")
    assert run_row["finished_at"] and task["finished_at"]
    # A late report of an older attempt never lowers the attempt number.
    task, _ = post(("attempt", "0", 0))
    assert task["attempt"] == 1
    missing = base.rsplit("/", 1)[0] + "/987654"
    status, body, _ = api("POST", missing + "/metadata", [{"field_name": "x", "value": "1", "type": "x"}])
    assert status == 404 and "does not exist" in body["message"]
    assert api("POST", missing + "/artifact", [])[0] == 404


def test_heartbeats_answer_200_with_the_doubly_encoded_wait(api, new_task):
    run, task = new_task()
    for path in [f"/flows/ApiFlow/runs/{run}/heartbeat", f"/flows/ApiFlow/runs/{run}/steps/start/tasks/{task}/heartbeat"]:
        for _ in range(2):  # twice in a row: never a 404 for a live object
            status, body, _ = api("POST", path, raw=b"{}")
            assert status == 200 and json.loads(body) == {"wait_time_in_seconds": 10}
    assert api("POST", "/flows/ApiFlow/runs/424242/heartbeat", raw=b"{}")[0] == 404


def test_tag_mutation_keeps_system_tags_and_refuses_to_remove_them(api, new_task):
    run, _ = new_task()
    path = f"/flows/ApiFlow/runs/{run}/tag/mutate"
    status, body, _ = api("PATCH", path, {"tags_to_add": ["a", "b", "user:alice"], "tags_to_remove": []})
    assert status == 200 and body["tags"] == ["a", "b"]
    assert api("PATCH", path, {"tags_to_add": [], "tags_to_remove": ["user:alice"]})[0] == 422
    assert api("PATCH", path, {"tags_to_add": ["c"], "tags_to_remove": ["a"]})[1]["tags"] == ["b", "c"]


def test_listings_page_with_a_cursor_newest_first(api):
    numbers = [api("POST", "/flows/Paged/run", {"user_name": "alice"})[1]["run_number"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        status, rows, headers = api("GET", "/flows/Paged/runs?_limit=2" + (f"&_cursor={cursor}" if cursor else ""))
        assert status == 200 and len(rows) <= 2
        seen += [r["run_number"] for r in rows]
        cursor = headers.get("x-next-cursor")
        if cursor is None:
            break
    assert seen == list(reversed(numbers))
    assert [r["run_number"] for r in api("GET", "/flows/Paged/runs")[1]] == list(reversed(numbers))


def test_client_chosen_ids_are_names_and_numbers_stay_numbers(api):
    status, run, _ = api("POST", "/flows/ApiFlow/run", {"run_number": "sfn-abc", "user_name": "alice"})
    assert status == 200 and run["run_number"] == "sfn-abc"
    assert api("POST", "/flows/ApiFlow/run", {"run_number": "sfn-abc"})[0] == 409
    status, task, _ = api("POST", "/flows/ApiFlow/runs/sfn-abc/steps/start/task", {"task_id": "t-1"})
    assert status == 200 and task["task_id"] == "t-1"
    assert api("GET", "/flows/ApiFlow/runs/sfn-abc/steps/start/tasks/t-1")[1]["run_number"] == "sfn-abc"


def test_deleting_a_run_and_a_flow(api, new_task, service, database_url, count_rows):
    run, task = new_task()
    other, _ = new_task()
    assert api("DELETE", f"/flows/ApiFlow/runs/{run}")[0] == 200
    assert api("GET", f"/flows/ApiFlow/runs/{run}")[0] == 404
    assert api("GET", f"/flows/ApiFlow/runs/{other}")[0] == 200
    cli = subprocess.run([sys.executable, "-m", "flow_core", "metadata-service", "delete-run", f"ApiFlow/{other}",
                          "--database-url", database_url], capture_output=True, check=False, text=True)
    assert cli.returncode == 0 and cli.stdout.strip() == f"Deleted ApiFlow/{other}."
    assert api("GET", "/flows/ApiFlow/runs")[1] == []
    assert api("GET", f"/flows/ApiFlow/runs/{run}/steps/start/tasks/{task}")[0] == 404
    new_task()
    assert api("DELETE", "/flows/ApiFlow")[0] == 200
    assert api("GET", "/flows/ApiFlow")[0] == 404
    assert count_rows() == 0  # nothing left behind in any table


def test_openapi_describes_every_route(api):
    from flow_metadata_service.api import ROUTES

    status, document, _ = api("GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    described = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert {(m, p) for m, p, _ in ROUTES} <= described


def test_health_says_the_schema_version(api):
    assert api("GET", "/health")[:2] == (200, {"status": "ok", "schema_version": 1})


def test_auth_on_refuses_requests_without_the_key(database_url, tmp_path, call):
    with ServiceProcess(database_url, tmp_path / "auth.log", auth_key="s3cret") as secured:
        status, _, body = call(secured.url, "GET", "/flows")
        assert status == 401 and "METAFLOW_SERVICE_AUTH_KEY" in json.loads(body)["message"]
        assert call(secured.url, "GET", "/flows", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(secured.url, "GET", "/flows", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert call(secured.url, "GET", "/flows", headers={"x-api-key": "s3cret"})[0] == 200
        assert call(secured.url, "GET", "/health")[0] == 200

        from flow_metadata_service.client import ServiceMetadata
        from flow_metadata_service.errors import ServiceError

        with pytest.raises(ServiceError, match="refused the credentials; set METAFLOW_SERVICE_AUTH_KEY"):
            ServiceMetadata(secured.url, "wrong").list_flows()
        assert isinstance(ServiceMetadata(secured.url, "s3cret").list_flows(), list)


def test_the_service_refuses_an_unmigrated_database(postgres, sql):
    sql("CREATE DATABASE unmigrated")
    url = postgres.url.rsplit("/", 1)[0] + "/unmigrated"
    result = subprocess.run([sys.executable, "-m", "flow_core", "metadata-service", "serve", "--database-url", url,
                             "--port", "0"], capture_output=True, check=False, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: the database schema is at version 0 and this service needs 1; "
        "run `flow metadata-service migrate --database-url …` first")


def test_every_command_refuses_a_schema_newer_than_it_knows(postgres, sql):
    """A database a later release migrated: ``status`` and ``migrate`` say so as ``serve`` does."""
    from flow_metadata_service import __version__
    from flow_metadata_service.migrations import LATEST

    sql("CREATE DATABASE from_the_future")
    url = postgres.url.rsplit("/", 1)[0] + "/from_the_future"
    migrate_database(url)
    sql(f"INSERT INTO flow_schema_version VALUES ({LATEST + 1}, 'a later release', 0)", url=url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
    for command in (["status"], ["migrate"], ["serve", "--port", "0"]):
        result = subprocess.run([sys.executable, "-m", "flow_core", "metadata-service", *command,
                                 "--database-url", url], capture_output=True, text=True, timeout=60, env=env,
                                check=False)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert result.stderr.strip().splitlines()[-1] == (
            f"Error: the database schema is at version {LATEST + 1}, newer than this version of Flow; upgrade Flow "
            f"(flow-metadata-service {__version__} knows schema versions up to {LATEST})"), command
        assert "Schema version" not in result.stdout and "is at version" not in result.stdout, command


def test_run_status_tells_running_succeeded_failed_and_crashed_apart(api, new_task, sql):
    running, _ = new_task()
    crashed, _ = new_task()
    failed, failed_task = new_task()
    finished, _ = new_task()
    api("POST", f"/flows/ApiFlow/runs/{failed}/steps/start/tasks/{failed_task}/metadata",
        [{"field_name": "attempt_ok", "value": "False", "type": "internal_attempt_status", "tags": ["attempt_id:0"]}])
    api("POST", f"/flows/ApiFlow/runs/{finished}/finish", {"status": "succeeded"})
    # Two runtimes went silent two minutes ago; one had a failed attempt.
    sql(f"UPDATE runs SET last_heartbeat_ts = extract(epoch FROM now())::bigint - 120 "
        f"WHERE run_number IN ({crashed}, {failed})")
    api("POST", f"/flows/ApiFlow/runs/{running}/heartbeat", raw=b"{}")
    statuses = {r["run_number"]: r["status"] for r in api("GET", "/flows/ApiFlow/runs")[1]}
    assert statuses == {running: "running", crashed: "crashed", failed: "failed", finished: "succeeded"}
    assert [r["run_number"] for r in api("GET", "/flows/ApiFlow/runs?status=crashed")[1]] == [crashed]


def test_flow_names_a_service_that_does_not_speak_its_api(tmp_path):
    """An older or foreign service (here: a plain web server) is refused in one sentence."""
    import http.server
    import threading

    from flow_metadata_service.client import ServiceMetadata
    from flow_metadata_service.errors import ServiceError

    class OldService(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("METADATA_SERVICE_VERSION", "2.4.0")
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"pong")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OldService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(ServiceError, match=f"the metadata service at {url} does not speak Flow's metadata "
                                               "API version 1 \\(it says nothing\\)"):
            ServiceMetadata(url).list_flows()
    finally:
        server.shutdown()


def test_a_runs_attempts_come_from_metaflow_style_attempt_fields(api, new_task):
    """What Metaflow's own client writes (``attempt``, then ``attempt_ok``, tagged with the
    attempt) is what ``GET …/attempts`` reads back, with a running attempt left open."""
    run, task = new_task()
    base = f"/flows/ApiFlow/runs/{run}/steps/start/tasks/{task}"

    def field(name: str, value: str, attempt: int) -> dict:
        return {"field_name": name, "value": value, "type": name, "tags": [f"attempt_id:{attempt}"]}

    api("POST", base + "/metadata", [field("attempt", "0", 0), field("attempt_ok", "False", 0)])
    api("POST", base + "/metadata", [field("attempt", "1", 1), field("hostname", "h", 1)])
    status, attempts, _ = api("GET", f"/flows/ApiFlow/runs/{run}/attempts")
    assert status == 200
    assert [(a["step_name"], a["task_id"], a["attempt"], a["status"]) for a in attempts] == [
        ("start", task, 0, "failed"), ("start", task, 1, "running")]
    assert attempts[0]["started_at"] <= attempts[0]["finished_at"] and attempts[1]["finished_at"] is None
    status, answer, _ = api("GET", "/flows/ApiFlow/runs/999999/attempts")
    assert status == 404 and "does not exist" in answer["message"]
