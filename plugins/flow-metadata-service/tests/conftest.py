from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import urllib.error
import urllib.request

import asyncpg
import pytest
from flow_metadata_service.migrations import migrate_database
from flow_metadata_service.postgres_server import PostgresServer
from flow_metadata_service.service_process import ServiceProcess

TABLES = "flows, runs, steps, tasks, metadata, artifacts"


async def _count_rows(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return sum([await conn.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES.split(", ")])
    finally:
        await conn.close()


def run_sql(database_url: str, *statements: str) -> None:
    async def run():
        conn = await asyncpg.connect(database_url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the session. Its folder is not under pytest's private temp
    folder, because the server runs as an unprivileged user who could not enter that."""
    folder = tempfile.mkdtemp(prefix="flow-pg-")
    with PostgresServer(folder) as server:
        yield server
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres) -> str:
    run_sql(postgres.url, "CREATE DATABASE flow_tests")
    url = postgres.url.rsplit("/", 1)[0] + "/flow_tests"
    migrate_database(url)
    return url


@pytest.fixture(scope="session")
def service(database_url, tmp_path_factory):
    with ServiceProcess(database_url, tmp_path_factory.mktemp("service") / "service.log") as process:
        yield process


@pytest.fixture
def clean_database(database_url):
    run_sql(database_url, f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")


@pytest.fixture
def service_env(flow_env, service, clean_database, monkeypatch) -> dict:
    """Flow configured to record runs in the test service (the datastore stays local)."""
    env = {"METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": service.url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    flow_env.update(env)
    return env


@pytest.fixture
def sql(database_url):
    """``sql("ALTER …")``: statements run on the test database (or on ``url=``)."""
    return lambda *statements, url=database_url: run_sql(url, *statements)


def call_service(base: str, method: str, path: str, body=None, raw: bytes | None = None,
                 headers: dict | None = None) -> tuple[int, dict, bytes]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def call():
    """``call(base_url, method, path, body)``: (status, headers, raw body) from any service."""
    return call_service


@pytest.fixture
def api(service, clean_database):
    """``api(method, path, body)``: (status, decoded body, headers) from the test service."""
    def request(method: str, path: str, body=None, raw: bytes | None = None, headers: dict | None = None):
        status, response_headers, payload = call_service(service.url, method, path, body, raw, headers)
        decoded = json.loads(payload) if payload and response_headers.get("content-type", "").startswith(
            "application/json") else payload
        return status, decoded, response_headers
    return request


@pytest.fixture
def count_rows(database_url):
    """``count_rows()``: how many rows all the service's tables hold together."""
    return lambda: asyncio.run(_count_rows(database_url))


@pytest.fixture
def new_task(api):
    """``new_task(flow="ApiFlow")``: a new run with one task of step ``start``, as (run, task)."""
    def create(flow: str = "ApiFlow") -> tuple[int, int]:
        status, run, _ = api("POST", f"/flows/{flow}/run", {"user_name": "alice", "system_tags": ["user:alice"]})
        assert status == 200
        status, task, _ = api("POST", f"/flows/{flow}/runs/{run['run_number']}/steps/start/task",
                              {"user_name": "alice"})
        assert status == 200
        return run["run_number"], task["task_id"]
    return create
