from __future__ import annotations

import asyncio
import shutil
import tempfile

import asyncpg
import pytest

from flow_metadata_service.migrations import migrate_database
from flow_metadata_service.postgres_server import PostgresServer
from flow_metadata_service.service_process import ServiceProcess

TABLES = "flows, runs, steps, tasks, metadata, artifacts"


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
    """``sql("ALTER …")``: statements run on the test database."""
    return lambda *statements: run_sql(database_url, *statements)
