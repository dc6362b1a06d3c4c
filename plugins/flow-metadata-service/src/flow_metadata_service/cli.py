"""``flow metadata-service serve|migrate|delete-run|status``."""

from __future__ import annotations

import asyncio

import click

DATABASE_URL = click.option(
    "--database-url", envvar="METAFLOW_SERVICE_DATABASE_URL", required=True, metavar="URL",
    help="postgresql://user:password@host:port/database (or METAFLOW_SERVICE_DATABASE_URL).")


@click.group("metadata-service")
def metadata_service() -> None:
    """Run and administer the metadata service (PostgreSQL)."""


@metadata_service.command()
@DATABASE_URL
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--auth-key", envvar="METAFLOW_SERVICE_AUTH_KEY", default=None,
              help="Require this bearer token on every request (or METAFLOW_SERVICE_AUTH_KEY).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@click.option("--pool-size", default=8, show_default=True, type=click.IntRange(1, 1000),
              help="Database connections per process.")
@click.option("--access-log", is_flag=True, help="Print a line per request.")
def serve(database_url: str, host: str, port: int, auth_key: str | None, workers: int, pool_size: int,
          access_log: bool) -> None:
    """Serve the metadata API until stopped."""
    from .server import serve as run_server

    click.echo(f"Serving the metadata service on http://{host}:{port}", err=True)
    run_server(database_url, host, port, auth_key, workers, pool_size, access_log=access_log)


@metadata_service.command()
@DATABASE_URL
def migrate(database_url: str) -> None:
    """Bring the database schema up to date (safe to run again, and from several places)."""
    from .migrations import LATEST, migrate_database

    applied = migrate_database(database_url)
    for migration in applied:
        click.echo(f"Applied migration {migration.version}: {migration.description}.")
    click.echo(f"The schema is at version {LATEST}.")


@metadata_service.command("delete-run")
@DATABASE_URL
@click.argument("pathspec", metavar="FLOW/RUN")
def delete_run(database_url: str, pathspec: str) -> None:
    """Delete one run and everything recorded under it (artifact data stays in the datastore)."""
    from .database import connect_pool
    from .store import MetadataStore

    flow, sep, run = pathspec.partition("/")
    if not sep or not flow or not run or "/" in run:
        raise click.BadParameter("give the run as FLOW/RUN, for example HelloFlow/12", param_hint="FLOW/RUN")

    async def run_delete():
        pool = await connect_pool(database_url, min_size=1, max_size=1)
        try:
            await MetadataStore(pool).delete_run(flow, run)
        finally:
            await pool.close()

    asyncio.run(run_delete())
    click.echo(f"Deleted {pathspec}.")


@metadata_service.command()
@DATABASE_URL
def status(database_url: str) -> None:
    """Say which schema version the database is at."""
    from .database import on_connection
    from .migrations import LATEST, newer_schema, schema_version

    version = asyncio.run(on_connection(database_url, schema_version))
    if version > LATEST:
        raise newer_schema(version)
    state = "up to date" if version == LATEST else f"needs `flow metadata-service migrate` (to {LATEST})"
    click.echo(f"Schema version {version}: {state}.")
