"""Whole Flow runs recorded by the service, read back through the Client API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from flow_core.testing import BREAKABLE_FLOW, run_id_of

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def client(script: str, env: dict) -> str:
    result = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, check=False, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_branching_foreach_run_is_recorded_and_read_back(service_env, flow_env, flow_cli, service):
    result = flow_cli("run", str(EXAMPLES / "fanout.py"), "--tag", "nightly")
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    out = client(
        "from flow_core import Flow, get_metadata\n"
        "run = Flow('FanOutFlow').latest_successful_run\n"
        "print(get_metadata())\n"
        "print(run.id, run.successful, run.finished, sorted(run.user_tags), run.data.total)\n"
        "print([(t.index, t.data.words, t.stdout.strip()) for t in run['count']])\n", flow_env)
    assert out.splitlines() == [
        f"service@{service.url}",
        f"{run_id} True True ['nightly'] 9",
        "[(0, 4, 'sentence 0: 4 words'), (1, 2, 'sentence 1: 2 words'), (2, 3, 'sentence 2: 3 words')]",
    ]
    with urllib.request.urlopen(f"{service.url}/flows/FanOutFlow/runs/{run_id}") as response:
        recorded = json.load(response)
    assert recorded["status"] == "succeeded" and recorded["finished_at"] >= recorded["ts_epoch"]
    with urllib.request.urlopen(f"{service.url}/flows/FanOutFlow/runs/{run_id}/steps/count/tasks") as response:
        assert len(json.load(response)) == 3


def test_a_failed_run_resumes_from_the_service(service_env, flow_env, flow_cli, write_flow):
    path = write_flow("mends.py", BREAKABLE_FLOW)
    failed = flow_cli("run", str(path), env={"BREAK_MIDDLE": "1"})
    assert failed.returncode == 1
    origin = run_id_of(failed.stdout)
    resumed = flow_cli("resume", str(path), "--origin-run-id", origin)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.count("Reused Mends/") == 1
    out = client(
        "from flow_core import Flow, Run\n"
        f"print(Run('Mends/{origin}').successful)\n"
        "run = Flow('Mends').latest_successful_run\n"
        "print(run.data.total, run['start'].task.origin_pathspec)\n", flow_env)
    assert out.splitlines() == ["False", f"499500 Mends/{origin}/start/{origin_task(flow_env, origin)}"]


def origin_task(flow_env: dict, origin: str) -> str:
    return client(f"from flow_core import Run\nprint(Run('Mends/{origin}')['start'].task.id)\n", flow_env)


def test_tags_added_later_and_namespaces_of_two_users(service_env, flow_env, flow_cli):
    for user in ("alice", "bob"):
        assert flow_cli("run", str(EXAMPLES / "hello.py"), env={"METAFLOW_USER": user}).returncode == 0
    out = client(
        "from flow_core import Flow, namespace\n"
        "namespace('user:alice')\n"
        "run = Flow('HelloFlow').latest_run\n"
        "run.add_tag('reviewed')\n"
        "print(run.user_tags and sorted(run.user_tags), [r.id for r in Flow('HelloFlow').runs('reviewed')])\n"
        "namespace(None)\n"
        "print(len(list(Flow('HelloFlow'))))\n", flow_env)
    assert out.splitlines() == ["['reviewed'] ['1']", "2"]


def test_an_unreachable_service_is_one_clear_sentence(flow_env, flow_cli):
    from flow_core.testing.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = flow_cli("run", str(EXAMPLES / "hello.py"),
                      env={"METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": url,
                           "FLOW_SERVICE_RETRY_SECONDS": "1"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        (f"Error: cannot reach the metadata service at {url} (connection refused); "
         "check METAFLOW_SERVICE_URL and that the service is running")]


def test_a_task_costs_a_handful_of_requests(flow_env, flow_cli, write_flow, database_url, clean_database, tmp_path):
    """Flow's client: task ids per step in one request, attempt records batched."""
    from flow_metadata_service.service_process import ServiceProcess

    path = write_flow("wide.py", """
        from flow_core import FlowSpec, step

        class Wide(FlowSpec):
            @step
            def start(self):
                self.items = list(range(40))
                self.next(self.work, foreach="items")

            @step
            def work(self):
                self.value = self.input
                self.next(self.join)

            @step
            def join(self, inputs):
                self.total = sum(i.value for i in inputs)
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    log = tmp_path / "access.log"
    with ServiceProcess(database_url, log, access_log=True) as counted:
        result = flow_cli("run", str(path), env={"METAFLOW_DEFAULT_METADATA": "service",
                                                 "METAFLOW_SERVICE_URL": counted.url})
        assert result.returncode == 0, result.stderr
    requests = [line for line in log.read_text().splitlines() if '"POST ' in line or '"GET ' in line
                or '"PATCH ' in line]
    tasks = 40 + 4  # the foreach, start, join, end
    # Metaflow sends about 11 per task; how many attempt records share a request depends on timing
    assert len(requests) <= 3 * tasks, f"{len(requests)} requests for {tasks} tasks"
