"""An unmodified Metaflow (from PyPI) runs a flow against the service and reads it back.

Metaflow runs from a virtualenv of its own (scripts/metaflow_venv.py, kept in pytest's cache
folder), never from Flow's environment: there a half-converted flow would import it silently.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import textwrap
from pathlib import Path

import pytest

METAFLOW = "metaflow==2.19.39"
_HELPER = Path(__file__).resolve().parents[3] / "scripts" / "metaflow_venv.py"

FLOW = '''
from metaflow import FlowSpec, current, retry, step

class MfServiceFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.body, foreach="items")

    @retry(times=1)
    @step
    def body(self):
        if self.input == 2 and current.retry_count == 0:
            raise RuntimeError("the first attempt fails")
        self.square = self.input ** 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)

if __name__ == "__main__":
    MfServiceFlow()
'''

READ_BACK = '''
from metaflow import Flow, Task, get_metadata
run = Flow("MfServiceFlow").latest_successful_run
print(get_metadata())
print(run.id, run.successful, run.finished, run.data.total)
print(sorted((t.index, t.data.square, t.current_attempt) for t in run["body"]))
retried = next(t for t in run["body"] if t.index == 1)
print(Task(retried.pathspec, attempt=0)["_task_ok"].data, retried["_task_ok"].data)
run.add_tag("reviewed")
print(sorted(run.user_tags), len(list(run["join"].task.parent_tasks)))
run.remove_tag("reviewed")
print(sorted(run.user_tags))
'''


@pytest.fixture(scope="session")
def metaflow(request, tmp_path_factory) -> str:
    """The Python of a virtualenv holding Metaflow, installed from PyPI on first use."""
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    # Without pytest's cache, one folder of the session's own: both test modules that need
    # Metaflow then install it once, as they do with the cache.
    venv = (cache.mkdir("metaflow-venv") if cache else tmp_path_factory.getbasetemp() / "metaflow-venv") / METAFLOW
    return runpy.run_path(str(_HELPER))["metaflow_python"](venv, [METAFLOW])


@pytest.fixture
def metaflow_env(service, clean_database, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
    env.update(METAFLOW_DEFAULT_METADATA="service", METAFLOW_SERVICE_URL=service.url, USERNAME="alice",
               METAFLOW_DEFAULT_DATASTORE="local", METAFLOW_DATASTORE_SYSROOT_LOCAL=str(tmp_path / "root"),
               METAFLOW_HOME=str(tmp_path / "home"))
    return env


def test_metaflow_runs_and_reads_back_through_the_service(metaflow, metaflow_env, tmp_path, service):
    flow = tmp_path / "mfflow.py"
    flow.write_text(textwrap.dedent(FLOW))
    ran = subprocess.run([metaflow, str(flow), "--no-pylint", "run"], env=metaflow_env, cwd=tmp_path,
                         capture_output=True, check=False, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "total 14" in ran.stdout + ran.stderr

    read = subprocess.run([metaflow, "-c", READ_BACK], env=metaflow_env, cwd=tmp_path,
                          capture_output=True, check=False, text=True, timeout=300)
    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines() == [
        f"service@{service.url}",
        "1 True True 14",
        "[(0, 1, 0), (1, 4, 1), (2, 9, 0)]",
        "False True",
        "['reviewed'] 3",
        "[]",
    ]


def test_flow_reads_a_metaflow_run_status_from_the_service(metaflow, metaflow_env, tmp_path, service):
    """The service tells a run that Metaflow finished from one still running."""
    import json
    import urllib.request

    flow = tmp_path / "mfflow.py"
    flow.write_text(textwrap.dedent(FLOW))
    ran = subprocess.run([metaflow, str(flow), "--no-pylint", "run"], env=metaflow_env, cwd=tmp_path,
                         capture_output=True, check=False, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    with urllib.request.urlopen(f"{service.url}/flows/MfServiceFlow/runs?status=succeeded&_limit=1") as response:
        (latest,) = json.load(response)
    assert latest["run_number"] == 1 and latest["user_name"] == "alice"


def test_metaflow_at_its_own_tag_limits_stays_within_the_services(metaflow, metaflow_env, tmp_path, service):
    """Metaflow allows 50 user tags of 500 characters and sends them with every metadata
    entry and artifact: the service's limits must take that whole run."""
    import json
    import urllib.request

    flow = tmp_path / "mfflow.py"
    flow.write_text(textwrap.dedent(FLOW))
    tags = [f"{i:02d}" + "t" * 498 for i in range(50)]
    ran = subprocess.run([metaflow, str(flow), "--no-pylint", "run", *(f"--tag={t}" for t in tags)],
                         env=metaflow_env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with urllib.request.urlopen(f"{service.url}/flows/MfServiceFlow/runs/1") as response:
        run = json.load(response)
    assert (run["status"], sorted(run["tags"])) == ("succeeded", tags)
