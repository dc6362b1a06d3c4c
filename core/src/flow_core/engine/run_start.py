"""Starting a run: its record, its tags and the `_parameters` task that `start` inherits.

The local runtime does this at the top of ``flow run``; an orchestrator does it with ``flow
init`` before its first task, with no runtime at all. Both go through here, so a run started
either way looks the same to the Client API and to ``resume``.
"""

from __future__ import annotations

import json
import platform
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from flow_core.backends.metadata import MetadataBackend
from flow_core.backends.records import SUCCEEDED, RunRecord
from flow_core.datastore.task_store import FlowDataStore
from flow_core.model.graph import FlowGraph
from flow_core.plugin.settings import Settings
from flow_core.version import __version__

PARAMETERS_STEP = "_parameters"
#: The `_parameters` task's id when an orchestrator names the run but not the task.
DEFAULT_PARAMETERS_TASK = "params"

#: Variables a task reads to know it belongs to a production deployment or a resumed run,
#: or runs from a code package (which it records as its ``code-package`` metadata field).
PRODUCTION_TOKEN_VARIABLE = "METAFLOW_PRODUCTION_TOKEN"
ORIGIN_RUN_VARIABLE = "FLOW_ORIGIN_RUN_ID"
CODE_PACKAGE_VARIABLE = "FLOW_CODE_PACKAGE"
#: Names the interpreter a step's tasks run with (``pypi:3f2a…``), recorded as ``environment``.
INTERPRETER_VARIABLE = "FLOW_ENVIRONMENT"


#: System tags every run this process starts carries besides the usual ones (@project's
#: ``project:`` and ``project_branch:``), set by the command line before the run starts.
_sticky_system_tags: list[str] = []


def add_sticky_system_tags(tags: Iterable[str]) -> None:
    """Tag every run this process starts with ``tags`` as system tags (as Metaflow's
    ``metadata.add_sticky_tags(sys_tags=...)``)."""
    for tag in tags:
        if tag not in _sticky_system_tags:
            _sticky_system_tags.append(tag)


def system_tags(user: str, production_token: str | None = None, runtime: str = "local") -> list[str]:
    tags = [
        f"user:{user}",
        f"runtime:{runtime}",
        f"python_version:{platform.python_version()}",
        f"flow_core_version:{__version__}",
    ]
    if production_token:
        tags.append(f"production:{production_token}")
    tags.extend(t for t in _sticky_system_tags if t not in tags)
    return tags


def task_environment(settings: Settings, production_token: str | None = None,
                     origin_run_id: str | None = None) -> dict[str, str]:
    """What every task of the run needs in its environment: the configuration, and whether
    the run is a production or a resumed one."""
    environment = settings.task_environment()
    if production_token:
        environment[PRODUCTION_TOKEN_VARIABLE] = production_token
    if origin_run_id:
        environment[ORIGIN_RUN_VARIABLE] = origin_run_id
    return environment


def create_run(metadata: MetadataBackend, flow_name: str, user: str, tags: Iterable[str] = (),
               production_token: str | None = None, origin_run_id: str | None = None,
               run_id: str | None = None, runtime: str = "local") -> RunRecord:
    """Record a new run; with a ``run_id`` (an orchestrator's name for it) asking twice
    returns the first run, so a retried ``flow init`` does not make a second one."""
    return metadata.new_run(flow_name, user, tags, system_tags(user, production_token, runtime),
                            origin_run_id=origin_run_id, run_id=run_id)


def run_fields(graph: FlowGraph) -> dict[str, str]:
    """What a run records about itself on its `_parameters` task: the flow's graph (so a UI
    draws steps no task reached yet) and the command line that started it."""
    return {"graph-info": json.dumps(graph.as_data(), separators=(",", ":")), "command": command_line()}


def command_line(argv: list[str] | None = None) -> str:
    """This process's command line as its user typed it: ``python flow.py run --alpha 3``,
    ``flow run flow.py``, or ``python -m flow_core …`` (the Runner API's)."""
    argv = list(sys.argv if argv is None else argv)
    program = Path(argv[0]).name if argv else "python"
    if program == "__main__.py":
        words = ["python", "-m", Path(argv[0]).parent.name]
    elif program.endswith(".py"):
        words = ["python", program]
    else:
        words = [program]
    return shlex.join(words + argv[1:])


def store_parameters(metadata: MetadataBackend, datastore: FlowDataStore, flow_name: str, run_id: str,
                     values: Mapping[str, Any], task_id: str | None = None,
                     fields: Mapping[str, str] | None = None) -> str:
    """Store the parameter values as the artifacts of the run's `_parameters` task and return
    its path (``run/_parameters/task``). A named task that already succeeded is kept as it is.
    ``fields`` are recorded with the task's attempt (`run_fields`)."""
    if task_id is None:
        (task_id,) = metadata.new_tasks(flow_name, run_id, PARAMETERS_STEP, 1)
    else:
        existing = metadata.get_task(flow_name, run_id, PARAMETERS_STEP, task_id)
        if existing is not None and existing.status == SUCCEEDED:
            return f"{run_id}/{PARAMETERS_STEP}/{task_id}"
        if existing is None:
            metadata.register_tasks(flow_name, run_id, PARAMETERS_STEP, [task_id])
    metadata.start_attempt(flow_name, run_id, PARAMETERS_STEP, task_id, 0, dict(fields or {}))
    store = datastore.task(flow_name, run_id, PARAMETERS_STEP, task_id, 0)
    store.save_artifacts(dict(values))
    store.info.success = True
    store.commit()
    metadata.finish_attempt(flow_name, run_id, PARAMETERS_STEP, task_id, 0, True,
                            list(store.artifact_records().values()))
    return f"{run_id}/{PARAMETERS_STEP}/{task_id}"
