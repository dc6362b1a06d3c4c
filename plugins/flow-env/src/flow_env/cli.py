"""``python myflow.py environment resolve|show``: each step's environment, without running."""

from __future__ import annotations

import click

from flow_core.plugin_api import CliState, ConfigError, environment_request

from .environment import PackageEnvironment
from .lock import Lock


@click.group(help="Resolve or show the steps' @pypi and @conda environments.")
def environment() -> None:
    pass


@environment.command(help="Resolve (and build) every step's environment now, as `run` would, and show them.")
@click.pass_obj
def resolve(state: CliState) -> None:
    backend = _backend(state)
    request = environment_request(state, report=click.echo)
    backend.prepare(request)
    for step in request.steps:
        lock = backend.prepared_locks.get(step.name)
        if lock is None:
            click.echo(f"{step.name}: this run's own Python (its environment is disabled)")
        else:
            _show_lock(step.name, lock, backend)


@environment.command(help="Show the environments a run used (--run-id), or those the flow resolves to now.")
@click.option("--run-id", default=None, help="A run of the flow; default: what a new run would use.")
@click.pass_obj
def show(state: CliState, run_id: str | None) -> None:
    backend = _backend(state)
    if run_id:
        recorded = backend.run_record(state.flow.name, run_id)
        if not recorded:
            raise ConfigError(f"run {state.flow.name}/{run_id} recorded no @pypi/@conda environments")
        for step, entry in sorted(recorded.items()):
            _show_lock(step, backend.stored_lock(entry["lock"]), backend)
        return
    request = environment_request(state, report=lambda line: None)
    for step, lock in backend.cached_locks(request).items():
        if lock is None:
            click.echo(f"{step}: not resolved yet (`environment resolve` resolves it)")
        else:
            _show_lock(step, lock, backend)


def _backend(state: CliState) -> PackageEnvironment:
    backend = state.backends().environment
    if not isinstance(backend, PackageEnvironment):
        raise ConfigError(f"the '{backend.name}' environment has no packages to show; "
                          "use --environment=pypi or --environment=conda")
    return backend


def _show_lock(step: str, lock: Lock, backend: PackageEnvironment) -> None:
    built = backend.cache.folder(lock) if backend.cache.is_built(lock) else "not built on this machine"
    click.echo(f"{step}: {lock.name}, Python {lock.python}, {lock.platform}; {built}")
    for package in lock.packages:
        click.echo(f"    {package.name}=={package.version}  sha256:{package.sha256[:16]}…")
