"""Client API pieces a Metaflow notebook uses beyond navigation: lineage, logs, the exception
object, the code package, triggers, Metaflow's metadata names and error types, and the
sentence a Metaflow name Flow lacks fails with."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest
from flow_core import Flow, Run, Task, client
from flow_core.client.namespace import backends
from flow_core.testing import run_id_of

FANOUT = Path(__file__).resolve().parents[2] / "examples" / "fanout.py"

BROKEN = """
from flow_core import FlowSpec, step

class Pipeline(FlowSpec):
    @step
    def start(self):
        self.x = 1
        print("starting")
        self.next(self.middle)

    @step
    def middle(self):
        import os
        if not os.environ.get("FIXED"):
            raise ValueError("middle broke")
        self.y = self.x + 1
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    Pipeline()
"""


@pytest.fixture
def fanout(flow_cli, flow_env):
    client.default_namespace()
    result = flow_cli("run", str(FANOUT))
    assert result.returncode == 0, result.stderr
    yield Run(f"FanOutFlow/{run_id_of(result.stdout)}")
    client.default_namespace()


def _ids(tasks) -> list[str]:
    return [t.pathspec.split("/", 2)[2] for t in tasks]


def test_parent_and_child_tasks_follow_branches_foreach_and_joins(fanout):
    start, split, gather = fanout["start"].task, fanout["split"].task, fanout["gather"].task
    counts = list(fanout["count"])
    assert list(start.parent_tasks) == []
    assert {t.parent.id for t in start.child_tasks} == {"split", "describe"}
    assert list(split.child_tasks) == counts  # the foreach: one child per item, in item order
    assert all(list(c.parent_tasks) == [split] for c in counts)
    assert all(list(c.child_tasks) == [gather] for c in counts)
    assert list(gather.parent_tasks) == counts  # the foreach join: every item's task
    join = fanout["join"].task
    assert {t.parent.id for t in join.parent_tasks} == {"gather", "describe"}
    assert list(fanout["end"].task.child_tasks) == []
    assert all(isinstance(t, Task) for t in join.parent_tasks)
    assert list(join.parent_task_pathspecs) == [t.pathspec for t in join.parent_tasks]


def test_loglines_and_path_components(fanout):
    task = fanout["count"].task
    lines = list(task.loglines("stdout"))
    assert [line for _, line in lines] == ["sentence 0: 4 words"]
    assert all(isinstance(when, datetime.datetime) for when, _ in lines)
    assert list(task.loglines("stderr")) == []
    with pytest.raises(ValueError, match="'stdout' or 'stderr'"):
        list(task.loglines("both"))
    flow_name, run_id = fanout.path_components
    assert task.path_components == [flow_name, run_id, "count", task.id]
    assert fanout["count"].path_components == [flow_name, run_id, "count"]
    assert Flow(flow_name).path_components == [flow_name] and task["words"].path_components[-1] == "words"


def test_python_version_and_environment_info_under_metaflow_names(fanout):
    task = fanout["start"].task
    version = ".".join(map(str, sys.version_info[:3]))
    assert task.metadata_dict["python_version"] == version
    assert task.environment_info["python_version"] == version
    assert fanout["start"].environment_info == task.environment_info


def test_a_missing_child_is_a_key_error_with_a_plain_sentence(fanout):
    with pytest.raises(KeyError) as missing_step:
        fanout["nostep"]
    assert str(missing_step.value) == f"step {fanout.pathspec}/nostep does not exist (no task of it ever started)"
    with pytest.raises(KeyError):
        Flow("Nope")
    with pytest.raises(KeyError, match="run FanOutFlow/999 does not exist"):
        Run("FanOutFlow/999")
    with pytest.raises(KeyError):
        fanout["count"]["123456"]
    assert "nostep" not in fanout and "123456" not in fanout["count"]


def test_adding_a_system_tag_is_ignored_as_in_metaflow(fanout):
    system = next(iter(fanout.system_tags))
    fanout.add_tag(system)
    fanout.add_tags([system, "mine"])
    again = Run(fanout.pathspec)
    assert again.user_tags == {"mine"} and system in again.system_tags
    with pytest.raises(client.TaggingError, match="system tag"):
        again.remove_tag(system)


def test_runs_without_a_code_package_or_a_trigger(fanout):
    assert fanout.code is None and fanout["start"].task.code is None
    assert fanout.trigger is None


def test_code_is_the_package_the_start_task_names(fanout):
    """What the engine records for a run that ran from a code package (see the note in
    flow_core.client.code): the client reads the package back."""
    from flow_core.engine.code_package import CodePackage
    from flow_core.backends.selection import Backends

    selected = Backends.configured()
    package = CodePackage.build(FANOUT, selected)
    key = package.store(selected.storage)
    start = fanout["start"].task
    field = json.dumps({"ds_type": "local", "sha": package.sha256, "key": key, "flow_file": package.flow_file})
    backends().metadata.finish_attempt("FanOutFlow", fanout.id, "start", start.id, 0, True, [],
                                       fields={"code-package": field})
    code = Run(fanout.pathspec).code
    assert code.flowspec == FANOUT.read_text()
    assert code.info["script"] == "fanout.py" and any(d.startswith("flow-core==") for d in code.info["distributions"])
    assert "flow/fanout.py" in code.tarball.getnames() and code.path


def test_trigger_reads_the_events_the_start_task_names(fanout):
    start = fanout["start"].task
    events = [{"type": "event", "name": "data_ready", "id": "e-1", "timestamp": 1700000000}]
    backends().metadata.finish_attempt("FanOutFlow", fanout.id, "start", start.id, 0, True, [],
                                       fields={"execution-triggers": json.dumps(events)})
    trigger = Run(fanout.pathspec).trigger
    assert trigger.event.name == "data_ready" and trigger.event.id == "e-1"
    assert trigger.event.timestamp == datetime.datetime(2023, 11, 14, 22, 13, 20)
    assert "data_ready" in trigger and [e.name for e in trigger.events] == ["data_ready"]


def test_a_failed_task_exception_and_a_resumed_run_origins(write_flow, python_flow, flow_env):
    client.default_namespace()
    path = write_flow("pipeline.py", BROKEN)
    failed = python_flow(path, "run")
    assert failed.returncode == 1
    origin = run_id_of(failed.stdout)
    task = Run(f"Pipeline/{origin}")["middle"].task
    exc = task.exception
    assert isinstance(exc, Exception) and exc.type == "builtins.ValueError" and exc.exception == "middle broke"
    assert str(exc) == "ValueError: middle broke" and "raise ValueError" in exc.stacktrace
    assert Run(f"Pipeline/{origin}")["start"].task.exception is None

    resumed = python_flow(path, "resume", "--origin-run-id", origin, env={"FIXED": "1"})
    assert resumed.returncode == 0, resumed.stderr
    run = Run(f"Pipeline/{run_id_of(resumed.stdout)}")
    assert run.origin_pathspec == f"Pipeline/{origin}"
    assert run["middle"].origin_pathspec == f"Pipeline/{origin}/middle"
    start = run["start"].task
    assert start.origin_pathspec == f"Pipeline/{origin}/start/{Run(f'Pipeline/{origin}')['start'].task.id}"
    assert start["x"].origin_pathspec == f"{start.origin_pathspec}/x"
    middle = run["middle"].task
    assert middle.origin_pathspec is None  # ran again, not reused
    assert middle.metadata_dict["origin-run-id"] == origin  # Metaflow's field on every task of a resumed run
    assert list(middle.parent_tasks) == [start]


def _import(name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", f"from flow_core import {name}"], capture_output=True, text=True)


@pytest.mark.parametrize("name, says", [
    ("kubernetes", "`kubernetes` is Metaflow's Kubernetes compute; Flow has no Kubernetes backend yet"),
    ("airflow", "`airflow` is Metaflow's Airflow scheduler; Flow has none"),
    ("uv", "`uv` is Metaflow's uv-managed environment"),
    ("exit_hook", "`exit_hook` is Metaflow's @exit_hook"),
])
def test_a_metaflow_name_flow_lacks_fails_with_one_sentence(name, says):
    result = _import(name)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("flow_core.errors.NameNotInFlow: ") and says in last


def test_missing_names_are_import_errors_and_hasattr_stays_false():
    import flow_core

    with pytest.raises(ImportError, match="`exit_hook` is Metaflow's @exit_hook"):
        from flow_core import exit_hook  # noqa: F401
    assert not hasattr(flow_core, "exit_hook") and getattr(flow_core, "airflow", None) is None
    with pytest.raises(AttributeError, match="`kubernetes` is Metaflow's Kubernetes compute"):
        flow_core.kubernetes  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'no_such_name'"):
        from flow_core import no_such_name  # noqa: F401
    for name in ("airflow", "exit_hook", "argo_workflows", "uv", "kubernetes"):
        with pytest.raises(ImportError) as missing:
            exec(f"from flow_core import {name}", {})
        assert str(missing.value).startswith(f"`{name}` is ") and "\n" not in str(missing.value)
