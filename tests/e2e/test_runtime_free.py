"""A run made with no Flow runtime alive, the way an orchestrator (Step Functions) makes one:
``flow init``, then ``flow step`` per task under ids the orchestrator chose, against the
metadata service on PostgreSQL and the S3 datastore on SeaweedFS, all started here.

The run must be indistinguishable from one ``flow run`` makes, in the Client API and in
``resume``."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
from flow_datastore_s3.testing import SeaweedS3
from flow_metadata_service.service_process import shared_metadata_service

from flow_core.testing import run_id_of

FLOW = """
import os
from flow_core import FlowSpec, Parameter, current, step

class Shapes(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "left"
        self.next(self.meet)

    @step
    def right(self):
        self.side = "right"
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.sides = sorted(i.side for i in inputs)
        self.merge_artifacts(inputs, exclude=["side"])
        self.next(self.fan)

    @step
    def fan(self):
        self.next(self.body, foreach="items")

    @step
    def body(self):
        if os.environ.get("FAIL_FIRST_ATTEMPT") and current.retry_count == 0:
            raise RuntimeError("first attempt fails on purpose")
        self.square = self.input * self.input * self.alpha
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.squares = [i.square for i in inputs]
        self.sides = inputs[0].sides
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.squares)
        print("total", self.total)
"""

_buckets = itertools.count(1)


@pytest.fixture(scope="module")
def service_url(tmp_path_factory):
    with shared_metadata_service(tmp_path_factory.mktemp("service") / "service.log") as url:
        yield url


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server
        server.discard()


def shapes_env(root, service_url: str, seaweed) -> dict[str, str]:
    """Flow on the service and a fresh bucket of S3, its local folders under ``root``."""
    bucket = seaweed.create_bucket(f"runtime-free-{os.getpid()}-{next(_buckets)}")
    return {"METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root / "flow-root"), "METAFLOW_HOME": str(root / "metaflowconfig"),
            "METAFLOW_USER": "tester",
            "METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": service_url,
            "METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/flow",
            "METAFLOW_S3_ENDPOINT_URL": seaweed.endpoint_url,
            "AWS_ACCESS_KEY_ID": "flow-tests", "AWS_SECRET_ACCESS_KEY": "flow-tests-secret",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


def command_line(env: dict[str, str], flow_file):
    """``flow(args…)``: the task command line in a fresh process, with ``env`` and no other
    Flow settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}

    def flow(*args: str, extra_env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "flow_core", *args], capture_output=True, text=True,
                                env={**base, **env, **(extra_env or {})}, timeout=120)
        if check:
            assert result.returncode == 0, f"flow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    flow.file = str(flow_file)
    flow.env = env
    return flow


@pytest.fixture
def orchestrated(flow_env, service_url, seaweed, write_flow, monkeypatch):
    """``flow(args…)``: the task command line in a fresh process, on the service and S3."""
    env = shapes_env(flow_env.root.parent, service_url, seaweed)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    flow_env.update(env)
    return command_line(env, write_flow("shapes.py", FLOW))


@pytest.fixture(scope="module")
def made_task_by_task(service_url, seaweed, tmp_path_factory):
    """One run made task by task (~13 processes), shared by the tests that read it back and
    resume it: neither changes it. Its own environment, as ``orchestrated`` but module-wide."""
    root = tmp_path_factory.mktemp("task-by-task")
    flow_file = root / "shapes.py"
    flow_file.write_text(FLOW)
    flow = command_line(shapes_env(root, service_url, seaweed), flow_file)
    run = "sfn-7c2e0d"
    orchestrate(flow, run)
    return flow, run


def orchestrate(flow, run: str) -> None:
    """Every task, in an order an orchestrator may choose, each in a process of its own."""

    def step(name: str, task_id: str, inputs: str, *extra: str, **kwargs) -> subprocess.CompletedProcess:
        return flow("step", flow.file, name, "--run-id", run, "--task-id", task_id, "--input-paths", inputs,
                    *extra, **kwargs)

    flow("init", flow.file, "--run-id", run, "--alpha", "10")
    flow("init", flow.file, "--run-id", run, "--alpha", "10")  # a retried state changes nothing
    step("start", "t-start", f"{run}/_parameters/params")
    step("right", "t-right", f"{run}/start/t-start")
    step("left", "t-left", f"{run}/start/t-start")
    step("meet", "t-meet", f"{run}/left/t-left,{run}/right/t-right")
    step("fan", "t-fan", f"{run}/meet/t-meet")
    for index in (2, 0, 1):
        retries = ("--max-user-code-retries", "1")
        if index == 1:  # fails once, and its retry keeps the task's id
            failed = step("body", f"t-body-{index}", f"{run}/fan/t-fan", "--split-index", str(index),
                          *retries, extra_env={"FAIL_FIRST_ATTEMPT": "1"}, check=False)
            assert failed.returncode != 0
            step("body", f"t-body-{index}", f"{run}/fan/t-fan", "--split-index", str(index),
                 "--retry-count", "1", *retries, extra_env={"FAIL_FIRST_ATTEMPT": "1"})
        else:
            step("body", f"t-body-{index}", f"{run}/fan/t-fan", "--split-index", str(index), *retries)
    step("gather", "t-gather", f"{run}/body/*")  # the foreach's tasks, found through metadata
    step("end", "t-end", f"{run}/gather/t-gather")


def client(code: str, env: dict[str, str] | None = None) -> str:
    """Client API code in a fresh process, with ``env`` as its Flow settings (else this test's)."""
    base = {k: v for k, v in os.environ.items() if env is None or not k.startswith("METAFLOW_")}
    result = subprocess.run([sys.executable, "-c", "from flow_core import Flow, Run, Task\n" + code],
                            capture_output=True, text=True, env={**base, **(env or {})}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def shape_of(run_pathspec: str, env: dict[str, str] | None = None) -> str:
    """What a user sees of a run in the Client API, without its ids."""
    return client(f"""
run = Run({run_pathspec!r})
print(run.successful, run.finished, sorted(t for t in run.system_tags if not t.startswith("python_version")))
for s in sorted(run, key=lambda s: s.id):
    tasks = list(s)
    print(s.id, len(tasks), sorted(sorted(a.id for a in t) for t in tasks)[0], all(t.successful for t in tasks))
end = run["end"].task
print(end.data.total, end.data.squares, end.data.sides, end.data.alpha)
""", env)


def test_a_run_made_task_by_task_reads_back_like_one_made_by_flow_run(made_task_by_task):
    flow, run = made_task_by_task
    made = flow("run", flow.file, "--alpha", "10")
    run_id = run_id_of(made.stdout + made.stderr)

    assert shape_of(f"Shapes/{run}", flow.env) == shape_of(f"Shapes/{run_id}", flow.env)
    assert shape_of(f"Shapes/{run}", flow.env).endswith("140 [10, 40, 90] ['left', 'right'] 10")

    ids = client(f'print(sorted(t.id for t in Run("Shapes/{run}")["body"]))', flow.env)
    assert ids == "['t-body-0', 't-body-1', 't-body-2']"
    attempts = client(f"""
meta = [m for m in Task("Shapes/{run}/body/t-body-1").metadata if m.field == "attempt"]
print(sorted({{m.value for m in meta}}))
""", flow.env)
    assert attempts == "['0', '1']"


def test_init_asked_twice_makes_one_run_and_one_parameters_task(orchestrated):
    orchestrated("init", orchestrated.file, "--run-id", "sfn-twice", "--alpha", "3")
    again = orchestrated("init", orchestrated.file, "--run-id", "sfn-twice", "--alpha", "4")
    assert "sfn-twice/_parameters/params" in again.stdout + again.stderr
    out = client("""
print([r.id for r in Flow("Shapes") if r.id == "sfn-twice"], Task("Shapes/sfn-twice/_parameters/params").data.alpha)
""")
    assert out == "['sfn-twice'] 3"


def test_a_number_is_refused_as_an_orchestrators_run_id(orchestrated):
    result = orchestrated("init", orchestrated.file, "--run-id", "12345", check=False)
    assert result.returncode == 1
    assert "12345" in result.stderr and "Traceback" not in result.stderr


def test_resume_continues_a_run_made_task_by_task(made_task_by_task):
    flow, run = made_task_by_task
    resumed = flow("resume", flow.file, "body", "--origin-run-id", run)
    output = resumed.stdout + resumed.stderr
    new_run = run_id_of(output)
    for reused in ("start/t-start", "meet/t-meet", "fan/t-fan"):
        assert f"Reused Shapes/{run}/{reused}" in output
    assert shape_of(f"Shapes/{new_run}", flow.env).endswith("140 [10, 40, 90] ['left', 'right'] 10")
    origin = client(f'print(Run("Shapes/{new_run}").origin_pathspec)', flow.env)
    assert origin == f"Shapes/{run}"


def test_an_orchestrator_passes_parameters_as_json_and_joins_a_foreach_by_task_id_prefix(orchestrated):
    """Step Functions' shape: parameters in one JSON argument, tasks named by foreach position
    (``sfn-0``...), and the join naming its parents as ``RUN/body/sfn-*``: a task of the step
    outside that prefix is not one of them."""
    run = "sfn-prefix"

    def step(name: str, task_id: str, inputs: str, *extra: str) -> subprocess.CompletedProcess:
        return orchestrated("step", orchestrated.file, name, "--run-id", run, "--task-id", task_id,
                            "--input-paths", inputs, *extra)

    orchestrated("init", orchestrated.file, "--run-id", run, "--parameters-json", '{"alpha": "10"}')
    step("start", "sfn", f"{run}/_parameters/params")
    step("right", "sfn", f"{run}/start/sfn")
    step("left", "sfn", f"{run}/start/sfn")
    step("meet", "sfn", f"{run}/left/sfn,{run}/right/sfn")
    step("fan", "sfn", f"{run}/meet/sfn")
    for index in (1, 0, 2):
        step("body", f"sfn-{index}", f"{run}/fan/sfn", "--split-index", str(index))
    step("body", "other-0", f"{run}/fan/sfn", "--split-index", "0")  # not of this foreach
    step("gather", "sfn", f"{run}/body/sfn-*")
    step("end", "sfn", f"{run}/gather/sfn")
    assert shape_of(f"Shapes/{run}").endswith("140 [10, 40, 90] ['left', 'right'] 10")


def test_parameters_json_naming_no_parameter_is_refused_in_one_sentence(orchestrated):
    result = orchestrated("init", orchestrated.file, "--run-id", "sfn-bad-json", "--parameters-json",
                          '{"beta": "1"}', check=False)
    assert result.returncode == 2
    assert "'beta', which is not a parameter of Shapes (it has alpha)" in result.stderr
    assert "Traceback" not in result.stderr
