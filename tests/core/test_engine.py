"""The engine's classes built directly, around backends a test chooses: the runtime, the task
runner, run start and the resume plan, without going through the command line."""

from __future__ import annotations

import io

import pytest
from flow_core.backends.local_metadata import LocalMetadata
from flow_core.backends.local_storage import LocalStorage
from flow_core.backends.records import SUCCEEDED
from flow_core.backends.selection import Backends
from flow_core.datastore.task_store import FlowDataStore
from flow_core.engine.console import QUIET, Console
from flow_core.engine.resume import ResumePlan
from flow_core.engine.run_start import PARAMETERS_STEP, create_run, store_parameters
from flow_core.engine.runtime import RunOptions, Runtime
from flow_core.engine.task import TaskArguments, TaskRunner
from flow_core.errors import RunFailed
from flow_core.model.graph import FlowGraph
from flow_core.model.loader import load_flow_class
from flow_core.plugin.registry import current_settings, load_plugins

FLOW = """
    import os
    from flow_core import FlowSpec, Parameter, step

    class Counting(FlowSpec):
        base = Parameter("base", default=1)

        @step
        def start(self):
            self.numbers = [self.base, self.base + 1, self.base + 2]
            self.next(self.double, foreach="numbers")

        @step
        def double(self):
            if os.environ.get("BREAK_DOUBLE"):
                raise ValueError("broken on purpose")
            self.value = 2 * self.input
            self.next(self.join)

        @step
        def join(self, inputs):
            self.values = [i.value for i in inputs]
            self.next(self.end)

        @step
        def end(self):
            self.total = sum(self.values)
"""


@pytest.fixture
def flow(write_flow):
    path = write_flow("counting.py", FLOW)
    cls = load_flow_class(str(path))
    return cls, FlowGraph(cls, str(path)), str(path)


@pytest.fixture
def backends(flow_env):
    """Backends the test builds itself and hands to the engine, as a command would. Tasks in
    other processes find the same folder through the settings in their environment."""
    root = flow_env.root
    return Backends(current_settings(), load_plugins(), storage=LocalStorage(root), metadata=LocalMetadata(root))


def run_flow(flow, backends, compute: str = "local", parameters=None, resume=None):
    cls, graph, path = flow
    console = Console(QUIET, out=io.StringIO(), err=io.StringIO())
    runtime = Runtime(cls, graph, path, backends, console, RunOptions(compute=compute),
                      parameters=parameters or {"base": 1}, resume=resume)
    return runtime.execute()


def total_of(backends, run_id: str) -> int:
    (end,) = backends.metadata.list_tasks("Counting", run_id, "end")
    store = FlowDataStore(backends.storage).open_task("Counting", run_id, "end", end.task_id)
    return store.load("total")


@pytest.mark.parametrize("compute", ["local", "subprocess"])
def test_the_runtime_runs_a_flow_on_the_backends_it_is_given(flow, backends, compute):
    run = run_flow(flow, backends, compute, {"base": 5})
    assert backends.metadata.get_run("Counting", run.run_id).status == SUCCEEDED
    assert total_of(backends, run.run_id) == 2 * (5 + 6 + 7)
    tasks = backends.metadata.list_tasks("Counting", run.run_id)
    assert sorted(t.step_name for t in tasks) == sorted(
        [PARAMETERS_STEP, "start", "double", "double", "double", "join", "end"])


def test_a_failed_task_fails_the_run_and_names_the_task(flow, backends, monkeypatch):
    monkeypatch.setenv("BREAK_DOUBLE", "1")
    with pytest.raises(RunFailed, match=r"Counting/\d+/double/\d+ failed: .*broken on purpose"):
        run_flow(flow, backends)
    (run,) = backends.metadata.list_runs("Counting")
    assert run.status == "failed"


def test_the_resume_plan_reuses_what_succeeded_and_reruns_the_rest(flow, backends, monkeypatch):
    monkeypatch.setenv("BREAK_DOUBLE", "1")
    with pytest.raises(RunFailed):
        run_flow(flow, backends)
    (failed,) = backends.metadata.list_runs("Counting")
    _, graph, _ = flow
    plan = ResumePlan.build(graph, FlowDataStore(backends.storage), backends.metadata, failed.run_id, None, [])
    assert plan.parameters_task() is not None
    assert plan.reusable_task("start", ()) is not None
    assert plan.reusable_task("double", (0,)) is None

    monkeypatch.delenv("BREAK_DOUBLE")
    resumed = run_flow(flow, backends, resume=plan)
    assert resumed.origin_run_id == failed.run_id
    assert total_of(backends, resumed.run_id) == 12


def test_the_task_runner_runs_one_attempt_in_process(flow, backends):
    cls, graph, path = flow
    run = create_run(backends.metadata, "Counting", "tester")
    parameters = store_parameters(backends.metadata, FlowDataStore(backends.storage), "Counting", run.run_id,
                                  {"base": 10})
    (task_id,) = backends.metadata.new_tasks("Counting", run.run_id, "start")
    args = TaskArguments(flow_file=path, step_name="start", run_id=run.run_id, task_id=task_id,
                         input_paths=(parameters,))
    assert TaskRunner(args, backends, backends.metadata, flow_cls=cls, graph=graph).run() == 0
    task = backends.metadata.get_task("Counting", run.run_id, "start", task_id)
    assert task.status == SUCCEEDED
    store = FlowDataStore(backends.storage).open_task("Counting", run.run_id, "start", task_id)
    assert store.load("numbers") == [10, 11, 12]
    assert store.info.foreach_num_splits == 3


def test_a_task_that_owns_its_run_records_the_runs_end(flow, backends):
    """With no runtime alive, the `end` task marks the run succeeded."""
    cls, graph, path = flow
    run = create_run(backends.metadata, "Counting", "tester", run_id="orchestrated-1")
    datastore = FlowDataStore(backends.storage)
    store_parameters(backends.metadata, datastore, "Counting", run.run_id, {"base": 1}, "params")
    r = run.run_id
    tasks = [("start", "s", None, f"{r}/_parameters/params"),
             ("double", "d0", 0, f"{r}/start/s"), ("double", "d2", 2, f"{r}/start/s"),
             ("double", "d1", 1, f"{r}/start/s"),
             ("join", "j", None, f"{r}/double/*"), ("end", "e", None, f"{r}/join/j")]
    for step_name, task_id, split, inputs in tasks:
        assert backends.metadata.get_run("Counting", r).status == "running"
        args = TaskArguments(flow_file=path, step_name=step_name, run_id=r, task_id=task_id,
                             input_paths=(inputs,), split_index=split)
        assert TaskRunner(args, backends, backends.metadata, owns_run=True, flow_cls=cls, graph=graph).run() == 0
    join = datastore.open_task("Counting", r, "join", "j")
    assert join.load("values") == [2, 4, 6]  # in foreach order, though they ran 0, 2, 1
    assert backends.metadata.get_run("Counting", run.run_id).status == SUCCEEDED
    assert total_of(backends, run.run_id) == 12


def test_a_run_records_its_command_line_as_its_user_typed_it():
    from flow_core.engine.run_start import command_line

    assert command_line(["/home/me/flows/train.py", "run", "--alpha", "0.3"]) == "python train.py run --alpha 0.3"
    assert command_line(["/venv/bin/flow", "run", "my flow.py"]) == "flow run 'my flow.py'"
    assert command_line(["/src/flow_core/__main__.py", "run", "x.py"]) == "python -m flow_core run x.py"
