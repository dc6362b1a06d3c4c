"""``flow logs``: print back the output a run's tasks captured."""

from __future__ import annotations

import sys

import click

from .datastore.task_store import FlowDataStore
from .errors import FlowError, NotFound
from .plugins import PluginRegistry
from .settings import Settings


def print_logs(settings: Settings, registry: PluginRegistry, flow_name: str, pathspec: str, stream: str) -> None:
    """Print ``stream`` of every task under RUN, RUN/STEP or RUN/STEP/TASK (a leading
    ``Flow/`` is accepted too), each task's output under a ``[run/step/task]`` heading when
    there is more than one."""
    parts = pathspec.strip("/").split("/")
    if parts and parts[0] == flow_name:
        parts = parts[1:]
    if not 1 <= len(parts) <= 3:
        raise FlowError(f"'{pathspec}' is not RUN, RUN/STEP or RUN/STEP/TASK")
    run_id, step_name, task_id = (parts + [None, None])[:3]
    metadata = registry.create_backend("metadata", settings.backend_name("metadata"), settings)
    if metadata.get_run(flow_name, run_id) is None:
        raise NotFound(f"run {flow_name}/{run_id} does not exist in {metadata.describe()}")
    tasks = [t for t in metadata.list_tasks(flow_name, run_id, step_name)
             if not t.step_name.startswith("_") and (task_id is None or t.task_id == task_id)]
    if not tasks:
        raise NotFound(f"{flow_name}/{'/'.join(p for p in (run_id, step_name, task_id) if p)} has no tasks")
    datastore = FlowDataStore(registry.create_backend("datastore", settings.backend_name("datastore"), settings))
    out = sys.stdout.buffer
    for task in tasks:
        attempts = datastore.committed_attempts(flow_name, run_id, task.step_name, task.task_id)
        if len(tasks) > 1:
            out.flush()
            click.secho(f"[{run_id}/{task.step_name}/{task.task_id}]", bold=True)
        if not attempts:
            click.echo("(the task has not finished; no output stored yet)")
            continue
        data = datastore.open_task(flow_name, run_id, task.step_name, task.task_id, attempts[-1]).log(stream)
        sys.stdout.flush()
        out.write(data)
        out.flush()
