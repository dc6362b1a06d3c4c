"""The service, then PostgreSQL, restarted in the middle of a run: the run waits, finishes,
and everything it recorded is there. Each is really down while the run goes on: PostgreSQL
stops with its fast shutdown, which ends the service's connections (its smart shutdown,
SIGTERM, would wait for them and never go down while the service runs)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import asyncpg
import pytest
from flow_core.testing import run_id_of

SLOW_FOREACH = """
    import time
    from flow_core import FlowSpec, step

    class Steady(FlowSpec):
        @step
        def start(self):
            self.items = list(range(24))
            self.next(self.work, foreach="items")

        @step
        def work(self):
            time.sleep(0.25)
            self.double = self.input * 2
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(i.double for i in inputs)
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def run_while(flow_env, path, disturb) -> subprocess.CompletedProcess:
    process = subprocess.Popen([sys.executable, "-m", "flow_core", "run", str(path), "--max-workers", "2"],
                               env={**os.environ, **flow_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(2.0)  # well into the foreach
    assert process.poll() is None, "the run ended before the restart; make the flow slower"
    disturb(process)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def check_recorded(flow_env, run_id: str) -> None:
    script = ("from flow_core import Run\n"
              f"run = Run('Steady/{run_id}')\n"
              "print(run.successful, run.data.total, len(list(run['work'])),"
              " sorted(t.data.double for t in run['work']) == [2 * i for i in range(24)])\n")
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, **flow_env}, capture_output=True,
                         text=True, check=False)
    assert out.stdout.split() == ["True", "552", "24", "True"], out.stderr


def health(url: str) -> tuple[int | None, dict]:
    """The service's /health status and answer; (None, {}) when nothing answers."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError:
        return None, {}


def postgres_answers(url: str) -> bool:
    async def connect():
        conn = await asyncpg.connect(url, timeout=5)
        await conn.close()

    try:
        asyncio.run(connect())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


@pytest.mark.parametrize("what", ["service", "postgres"])
def test_a_restart_mid_run_loses_nothing(what, service_env, flow_env, write_flow, service, postgres):
    path = write_flow("steady.py", SLOW_FOREACH)

    def restart(run):
        target = service if what == "service" else postgres
        target.stop()
        time.sleep(1.0)
        assert run.poll() is None, "the run ended while its metadata was out of reach"
        if what == "postgres":
            assert not postgres_answers(postgres.url)
            status, answer = health(service.url)
            assert status == 503 and answer["status"] == "unavailable", answer
        else:
            assert health(service.url) == (None, {})
        target.start()

    result = run_while(flow_env, path, restart)
    assert result.returncode == 0, result.stdout + result.stderr
    check_recorded(flow_env, run_id_of(result.stdout))
