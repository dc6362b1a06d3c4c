"""The Runner API: Runner, NBRunner and Deployer start real runs in subprocesses and hand back
what the Client API reads of them."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from flow_core import Deployer, NBRunner, Runner  # noqa: F401  (the lazy names are part of the test)

FLOW = """
    import os
    from flow_core import FlowSpec, Parameter, step

    class Scaled(FlowSpec):
        alpha = Parameter("alpha", default=1)
        names = Parameter("names", default="a,b")

        @step
        def start(self):
            print("starting with", self.alpha)
            if os.environ.get("BREAK_START"):
                raise RuntimeError("start is broken")
            self.x = self.alpha * 10
            self.next(self.end)

        @step
        def end(self):
            self.doubled = self.x * 2
"""


def test_run_passes_parameters_and_options_and_returns_the_client_run(write_flow):
    flow_file = write_flow("scaled.py", FLOW)
    with Runner(str(flow_file), show_output=False) as runner:
        result = runner.run(alpha=5, tags=["nightly", "team:ml"], max_workers=2)
        temp_dirs = list(runner._temp_dirs)
        assert result.status == "successful" and result.returncode == 0
        assert result.run.pathspec.startswith("Scaled/")
        assert result.run.successful
        assert result.run.data.doubled == 100
        assert {"nightly", "team:ml"} <= set(result.run.tags)
        assert "starting with 5" in result.stdout
        assert "Workflow starting" in result.stdout
    assert temp_dirs and not any(os.path.exists(d) for d in temp_dirs)  # the context cleaned up


def test_a_failed_run_and_a_run_that_cannot_start(write_flow):
    flow_file = str(write_flow("scaled.py", FLOW))
    result = Runner(flow_file, show_output=False, env={"BREAK_START": "1"}).run()
    assert result.status == "failed" and result.returncode != 0
    assert not result.run.successful and result.run.status == "failed"
    assert "start is broken" in result.stdout + result.stderr

    with pytest.raises(RuntimeError, match="(?s)Error executing: .*--alpha.*not-a-number"):
        Runner(flow_file, show_output=False).run(alpha="not-a-number")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Runner(flow_file, colour="red")


def test_resume_reruns_from_the_failed_step(write_flow):
    flow_file = str(write_flow("scaled.py", FLOW))
    failed = Runner(flow_file, show_output=False, env={"BREAK_START": "1"}).run(alpha=3)
    assert failed.status == "failed"
    origin = failed.run.id
    with Runner(flow_file, show_output=False) as runner:
        resumed = runner.resume(origin_run_id=origin, step_to_rerun="start")
        assert resumed.status == "successful"
        assert resumed.run.pathspec != failed.run.pathspec
        assert resumed.run.origin_pathspec == f"Scaled/{origin}"
        assert resumed.run.data.doubled == 60  # the origin's parameters


def test_async_run_streams_its_output_and_waits(write_flow):
    flow_file = str(write_flow("scaled.py", FLOW))

    async def main():
        async with Runner(flow_file, show_output=False) as runner:
            executing = await runner.async_run(alpha=2)
            lines = [line async for _, line in executing.stream_log("stdout")]
            await executing.wait(timeout=120)
            return executing, lines

    executing, lines = asyncio.run(main())
    assert any("starting with 2" in line for line in lines)
    assert executing.status == "successful"
    assert executing.run.data.doubled == 40


NOTEBOOK = """
    from flow_core import FlowSpec, NBRunner, Parameter, step

    SCALE = 3
    print("the notebook's own statement")

    class CellFlow(FlowSpec):
        n = Parameter("n", default=1)

        @step
        def start(self):
            self.x = self.n * SCALE
            self.next(self.end)

        @step
        def end(self):
            pass

    run = NBRunner(CellFlow, show_output=False).nbrun(n=4)
    print("result", run.pathspec.split("/")[0], run.data.x, run.successful)
"""


def test_nbrunner_runs_a_flow_class_defined_outside_a_file_of_its_own(write_flow, python_flow):
    notebook = write_flow("notebook.py", NOTEBOOK)
    done = python_flow(notebook)
    assert done.returncode == 0, done.stderr
    assert "result CellFlow 12 True" in done.stdout
    assert done.stdout.count("the notebook's own statement") == 1  # not run again by the flow


DEPLOYED = """
    from flow_core import FlowSpec, Parameter, current, step

    class Nightly(FlowSpec):
        size = Parameter("size", default=2)

        @step
        def start(self):
            self.namespace_seen = current.namespace
            self.next(self.end)

        @step
        def end(self):
            self.result = self.size * 10
"""


def test_deployer_deploys_triggers_and_deletes_on_the_local_scheduler(write_flow):
    flow_file = str(write_flow("nightly.py", DEPLOYED))
    deployer = Deployer(flow_file, show_output=False)
    assert "local" in dir(deployer)
    with pytest.raises(AttributeError, match="installed schedulers: local"):
        deployer.kubernetes()

    deployed = deployer.local().create(tags=["team:ml"])
    assert deployed.flow_name == "Nightly" and deployed.production_token.startswith("nightly-")
    triggered = deployed.trigger(size=7)
    run = triggered.wait_for_run(check_interval=0.2, timeout=60)
    assert run.pathspec == triggered.pathspec
    deadline = time.time() + 120
    while triggered.status == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert triggered.status == "succeeded"
    assert triggered.run.data.result == 70
    assert triggered.run["start"].task.data.namespace_seen == f"production:{deployed.production_token}"
    assert "team:ml" in triggered.run.tags

    assert deployed.delete() is True
    with pytest.raises(RuntimeError, match="is not deployed to the local scheduler"):
        deployed.trigger()


NB_DEPLOYED = """
    from flow_core import FlowSpec, NBDeployer, Parameter, current, step

    FACTOR = 10
    print("the notebook's own statement")

    class CellNightly(FlowSpec):
        size = Parameter("size", default=2)

        @step
        def start(self):
            self.namespace_seen = current.namespace
            self.next(self.end)

        @step
        def end(self):
            self.result = self.size * FACTOR

    deployer = NBDeployer(CellNightly, show_output=False)
    deployed = deployer.local().create(tags=["team:nb"])
    triggered = deployed.trigger(size=4)
    run = triggered.wait_for_run(check_interval=0.2, timeout=60)
    import time
    deadline = time.time() + 120
    while triggered.status == "running" and time.time() < deadline:
        time.sleep(0.2)
    print("status", triggered.status, run.pathspec == triggered.pathspec)
    print("result", triggered.run.data.result, "team:nb" in triggered.run.tags)
    print("namespace", triggered.run["start"].task.data.namespace_seen == "production:" + deployed.production_token)
    print("deleted", deployed.delete())
    print("deployed file runs the notebook", "NBDeployer(" in open(deployer.flow_file).read())
    deployer.cleanup()
    import os
    print("file left", os.path.exists(deployer.flow_file))
"""


def test_nbdeployer_deploys_a_flow_class_defined_outside_a_file_of_its_own(write_flow, python_flow):
    import inspect

    from flow_core import NBDeployer

    assert list(inspect.signature(NBDeployer).parameters) == [
        "flow", "show_output", "profile", "env", "base_dir", "file_read_timeout", "kwargs"]
    notebook = write_flow("notebook.py", NB_DEPLOYED)
    done = python_flow(notebook)
    assert done.returncode == 0, done.stderr
    assert "status succeeded True" in done.stdout
    assert "result 40 True" in done.stdout
    assert "namespace True" in done.stdout
    assert "deleted True" in done.stdout and "file left False" in done.stdout
    assert "deployed file runs the notebook False" in done.stdout
    assert done.stdout.count("the notebook's own statement") == 1  # not run again by the deployed flow
