"""``flow ui`` over HTTP: the runs list, a run, a task, and URLs that name nothing."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest
from .conftest import UIServer, wait_for


def test_serves_on_loopback_and_says_where_once(ui):
    assert ui.banner.startswith("Serving the Flow UI on http://127.0.0.1:")


def test_runs_newest_first_with_paging_and_filters(ui, runs):
    listing = ui.json("/api/runs")
    created = [r["created_at"] for r in listing["runs"]]
    assert created == sorted(created, reverse=True)
    made = [r["pathspec"] for r in listing["runs"] if r["flow"] != "HeldFlow"]  # the live tests add HeldFlow runs
    assert made == [f"BrokenFlow/{runs['resumed']}", f"ShapesFlow/{runs['other']}", f"BrokenFlow/{runs['broken']}",
                    f"ShapesFlow/{runs['shapes']}"]

    assert ui.json("/api/runs?flow=ShapesFlow")["total"] == 2
    assert [r["run_id"] for r in ui.json("/api/runs?user=ana")["runs"]] == [runs["other"]]
    assert [r["run_id"] for r in ui.json("/api/runs?tag=nightly")["runs"]] == [runs["other"]]
    failed = ui.json("/api/runs?status=failed")["runs"]
    assert {r["flow"] for r in failed} == {"BrokenFlow"} and len(failed) == 2
    assert ui.json("/api/runs?status=succeeded&flow=BrokenFlow")["total"] == 0

    status, page = ui.get("/?flow=ShapesFlow")
    assert status == 200 and f"ShapesFlow/{runs['shapes']}" in page and "BrokenFlow/" not in page


def test_paging(ui_env, runs, monkeypatch):
    from flow_ui import queries

    monkeypatch.setattr(queries, "PAGE_SIZE", 3)
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", ui_env.env["METAFLOW_DATASTORE_SYSROOT_LOCAL"])
    q = queries.Queries()
    first, second = q.runs(per_page=3), q.runs(page=2, per_page=3)
    assert (len(first["runs"]), first["pages"]) == (3, -(-first["total"] // 3)) and second["page"] == 2
    assert first["runs"][-1]["created_at"] > second["runs"][0]["created_at"]
    assert q.runs(page=99, per_page=3)["page"] == first["pages"]


def test_run_has_its_graph_counts_and_a_bar_per_attempt(ui, runs):
    run = ui.json(f"/api/flows/ShapesFlow/{runs['shapes']}")
    counts = {s["name"]: s["counts"] for s in run["steps"]}
    assert counts["each"] == {"done": 3, "running": 0, "failed": 0, "pending": 0}
    assert run["edges"]["start"] == ["left", "right"] and run["edges"]["fan"] == ["each"]
    assert run["edges"]["each"] == ["gather"] and run["edges"]["gather"] == ["end"]
    assert len(run["timeline"]["attempts"]) == len(run["tasks"]) == 10

    status, page = ui.get(f"/flows/ShapesFlow/{runs['shapes']}")
    assert status == 200 and page.count('class="step done"') == 8 and "<svg class=\"dag\"" in page
    assert page.count('class="attempt done"') == 10


def test_failed_run_marks_the_failed_step_and_every_attempt(ui, runs):
    run = ui.json(f"/api/flows/BrokenFlow/{runs['broken']}")
    explode = next(s for s in run["steps"] if s["name"] == "explode")
    assert explode["counts"]["failed"] == 1 and run["status"] == "failed"
    attempts = [a for a in run["timeline"]["attempts"] if a["step"] == "explode"]
    assert [a["attempt"] for a in attempts] == [0, 1] and {a["state"] for a in attempts} == {"failed"}
    _, page = ui.get(f"/flows/BrokenFlow/{runs['broken']}")
    assert 'class="step failed" data-step="explode"' in page
    # The step the failure kept from running is drawn from the graph the run recorded...
    end = next(s for s in run["steps"] if s["name"] == "end")
    assert end["tasks"] == 0 and run["edges"]["explode"] == ["end"]
    assert 'class="step waiting" data-step="end"' in page
    # ...and so is the command that started the run.
    assert run["started_by"]["command"] == "python -m flow_core run broken.py"
    assert "<code>python -m flow_core run broken.py</code>" in page


def test_resumed_run_links_its_origin(ui, runs):
    run = ui.json(f"/api/flows/BrokenFlow/{runs['resumed']}")
    assert run["origin_run_id"] == runs["broken"]
    _, page = ui.get(f"/flows/BrokenFlow/{runs['resumed']}")
    assert f'href="/flows/BrokenFlow/{runs["broken"]}"' in page
    start = next(t["pathspec"] for t in run["tasks"] if t["step"] == "start")
    _, page = ui.get(f"/flows/{start}")
    assert f'Reused from</th><td><a class="origin" href="/flows/BrokenFlow/{runs["broken"]}/start/' in page


def _task(ui, flow: str, run_id: str, step: str) -> str:
    run = ui.json(f"/api/flows/{flow}/{run_id}")
    return next(t["pathspec"] for t in run["tasks"] if t["step"] == step)


def test_task_shows_logs_artifacts_and_the_exception(ui, runs):
    end = _task(ui, "ShapesFlow", runs["shapes"], "end")
    status, page = ui.get(f"/flows/{end}")
    assert status == 200 and '<span class="line">the shapes are done</span>' in page
    assert "array, shape (3, 4), dtype float32" in page
    assert 'src="data:image/png;base64,' in page
    assert "&#x27;alpha&#x27;: 0.5" in page  # a dict's repr, escaped
    data = ui.json(f"/api/flows/{end}")
    assert {a["name"] for a in data["artifacts"]} >= {"config", "matrix", "picture", "words"}
    assert all(a["size"] > 0 and a["type"] for a in data["artifacts"])

    failed = ui.json(f"/api/flows/{_task(ui, 'BrokenFlow', runs['broken'], 'explode')}")
    assert failed["exception"]["type"] == "builtins.ValueError" and "not 41" in failed["exception"]["message"]
    assert [a["attempt"] for a in failed["attempts"]] == [0, 1] and "about to fail" in failed["stdout"]

    status, page = ui.get(f"/flows/{end}/matrix")
    assert status == 200 and "dtype float32" in page


def test_a_tasks_cards_are_shown_sandboxed_from_the_datastore(ui, runs):
    end = _task(ui, "ShapesFlow", runs["shapes"], "end")
    (summary,) = ui.json(f"/api/flows/{end}")["cards"]
    assert summary["type"] == "blank" and summary["id"] == "summary"
    status, page = ui.get(f"/flows/{end}")
    assert f'<iframe class="card-frame" src="{summary["href"]}" sandbox="allow-scripts"' in page
    with urllib.request.urlopen(ui.url + summary["href"], timeout=30) as response:
        card = response.read().decode("utf-8")
        policy = response.headers["Content-Security-Policy"]
    assert "The shapes are done" in card and "<html" in card
    assert policy.startswith("sandbox allow-scripts;") and "default-src 'none'" in policy
    assert ui.get(f"/flows/{end}/cards/{'0' * 12}")[0] == 404
    start = _task(ui, "ShapesFlow", runs["shapes"], "start")
    assert "No cards" in ui.get(f"/flows/{start}")[1]


@pytest.mark.parametrize("path", [
    "/flows/../../etc/passwd", "/flows/%2e%2e/%2e%2e/etc/passwd", "/flows/ShapesFlow/%2F..%2F..%2Fetc",
    "/flows/ShapesFlow/99999", "/flows/NoSuchFlow", "/flows/ShapesFlow/1/start/99999",
    "/flows/ShapesFlow/1/_parameters/1", "/flows/ShapesFlow/1/end/1/nothing/more", "/static/../pyproject.toml",
    "/api/flows/ShapesFlow/99999", "/etc/passwd", "/flows/ShapesFlow/1/start/2/no_such_artifact",
])
def test_bad_pathspecs_are_404_pages(ui, path):
    import http.client

    connection = http.client.HTTPConnection(ui.url.removeprefix("http://"), timeout=30)
    connection.request("GET", path)  # sent as written: no client-side '..' folding
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status == 404, body
    assert "Traceback" not in body and "root:" not in body


def test_read_only(ui):
    import urllib.request

    request = urllib.request.Request(ui.url + "/api/runs", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 405


def test_a_running_run_is_live_until_it_ends(ui_env, ui, tmp_path):
    release = tmp_path / "release"
    process = subprocess.Popen([sys.executable, "-m", "flow_core", "run", "held.py", "--release", str(release)],
                               cwd=ui_env.root, env=ui_env.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        held = wait_for(lambda: next((r for r in ui.json("/api/runs?flow=HeldFlow")["runs"]
                                      if r["status"] == "running"), None), what="the held run")
        run = wait_for(lambda: (r := ui.json(f"/api/flows/{held['pathspec']}"))
                       and any(s["name"] == "hold" and s["counts"]["running"] for s in r["steps"]) and r,
                       what="the hold step to run")
        assert run["parameters"]["release"] == repr(str(release))
        _, page = ui.get(f"/flows/{held['pathspec']}")
        assert 'data-live="1"' in page and 'class="step running" data-step="hold"' in page
        # The running task's output, as the task saved it so far.
        hold = next(t["pathspec"] for t in run["tasks"] if t["step"] == "hold")
        task = wait_for(lambda: (t := ui.json(f"/api/flows/{hold}")) and "holding" in t["stdout"] and t,
                        what="the running task's first line")
        assert not task["finished"] and task["stdout"] == "holding until released\n"
        _, page = ui.get(f"/flows/{hold}")
        assert '<span class="line">holding until released</span>' in page and 'data-live="1"' in page
        release.write_text("go")
        assert process.wait(timeout=120) == 0
        time.sleep(0.1)
        assert ui.json(f"/api/flows/{held['pathspec']}")["status"] == "succeeded"
    finally:
        release.write_text("go")
        process.wait(timeout=120)


def test_command_line_server_stops_cleanly(ui_env, runs):
    server = UIServer(ui_env)
    assert server.get("/")[0] == 200
    assert "Traceback" not in server.stop()


def test_an_older_attempt_opens_with_its_own_logs_and_exception(ui, runs):
    explode = _task(ui, "BrokenFlow", runs["broken"], "explode")
    first = ui.json(f"/api/flows/{explode}?attempt=0")
    assert first["attempt"] == 0 and first["finished"] and not first["successful"]
    assert first["stdout"] == "about to fail\n" and first["exception"]["type"] == "builtins.ValueError"
    assert ui.json(f"/api/flows/{explode}")["attempt"] == 1
    status, page = ui.get(f"/flows/{explode}?attempt=0")
    assert status == 200 and '<small class="attempt-shown">attempt 0</small>' in page
    assert 'class="attempt failed shown" data-attempt="0"' in page
    assert f'<a href="/flows/{explode}?attempt=1">1</a>' in page  # the attempts table links each one
    _, run_page = ui.get(f"/flows/BrokenFlow/{runs['broken']}")
    assert f'href="/flows/{explode}?attempt=0"' in run_page and f'href="/flows/{explode}?attempt=1"' in run_page
    for bad in ("7", "-1", "x"):
        status, page = ui.get(f"/flows/{explode}?attempt={bad}")
        assert status == 404 and "attempt" in page and "Traceback" not in page


def test_the_run_page_asks_the_metadata_the_same_number_of_times_whatever_its_size(ui_env, runs, monkeypatch):
    """The timeline's attempt times come from one whole-run query, not one per task."""
    from flow_core.backends.local_metadata import LocalMetadata
    from flow_ui import queries

    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", ui_env.env["METAFLOW_DATASTORE_SYSROOT_LOCAL"])
    q = queries.Queries()
    read = LocalMetadata._read
    sql: list[str] = []
    monkeypatch.setattr(LocalMetadata, "_read", lambda self, statement, args=(): sql.append(statement)
                        or read(self, statement, args))

    def queries_for(flow: str, run_id: str) -> tuple[int, int]:
        sql.clear()
        run = q.run(flow, run_id)
        timeline = q.timeline(flow, run_id)
        return len(sql), len(timeline["attempts"]) + len(run["tasks"])

    wide, wide_size = queries_for("ShapesFlow", runs["shapes"])
    narrow, narrow_size = queries_for("BrokenFlow", runs["broken"])
    assert wide_size > 2 * narrow_size and wide == narrow
    assert sum("FROM attempts" in s for s in sql) == 1  # the timeline's, for the narrow run as for the wide
