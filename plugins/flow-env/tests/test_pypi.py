"""@pypi and @pypi_base on this machine: each step gets the packages it asked for and nothing
else, resolved once, built once, and reused exactly by resume."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from flow_core.testing import run_id_of

#: A flow written for Metaflow: only its import line differs.
PINNED_FLOW = '''
from flow_core import FlowSpec, step, pypi, pypi_base


@pypi_base(packages={"humanize": "4.9.0"})
class PinnedFlow(FlowSpec):
    @step
    def start(self):
        import humanize
        self.start_version = humanize.__version__
        self.next(self.newer, self.bare, self.plain)

    @pypi(packages={"humanize": "4.10.0"})
    @step
    def newer(self):
        import humanize
        self.newer_version = humanize.__version__
        self.next(self.join)

    @pypi(packages={}, python=OTHER_PYTHON)
    @step
    def bare(self):
        import platform
        self.bare_python = platform.python_version()
        self.bare_has = {}
        for module in ("humanize", "numpy"):
            try:
                __import__(module)
                self.bare_has[module] = True
            except ImportError:
                self.bare_has[module] = False
        self.next(self.join)

    @pypi(disabled=True)
    @step
    def plain(self):
        import sys
        self.plain_python = sys.executable
        self.next(self.join)

    @step
    def join(self, inputs):
        self.merge_artifacts(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PinnedFlow()
'''

#: A package served by a local index, so the test can publish a newer version mid-way.
FLOATING_FLOW = '''
from flow_core import FlowSpec, step, pypi


class FloatingFlow(FlowSpec):
    @pypi(packages={"flowprobe": ""})
    @step
    def start(self):
        import flowprobe
        self.first = flowprobe.VERSION
        self.next(self.end)

    @pypi(packages={"flowprobe": ""})
    @step
    def end(self):
        import flowprobe
        self.last = flowprobe.VERSION


if __name__ == "__main__":
    FloatingFlow()
'''


def other_python() -> str:
    """A Python version other than this one when the machine has one (the step then runs on it),
    else this one's minor version, asked for explicitly."""
    from flow_env.interpreters import find_python

    for minor in ("3.12", "3.13", "3.10", "3.11"):
        if minor == ".".join(sys.version.split(".")[:2]):
            continue
        try:
            find_python(minor, "probe", "pypi")
            return minor
        except Exception:
            continue
    return ".".join(sys.version.split(".")[:2])


@pytest.fixture
def env_cache(tmp_path) -> dict[str, str]:
    return {"METAFLOW_ENVIRONMENT_CACHE": str(tmp_path / "environments")}


def run_flow(flow_env, flow_file: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run([sys.executable, str(flow_file), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **flow_env, **(env or {})}, cwd=flow_file.parent)


def artifacts(run_pathspec: str) -> dict[str, dict]:
    from flow_core import Run, namespace

    namespace(None)
    return {step.id: {a.id: a.data for a in step.task} for step in Run(run_pathspec)}


def test_each_step_sees_its_own_packages_and_nothing_it_did_not_ask_for(flow_env, write_flow, env_cache):
    python = other_python()
    flow_file = write_flow("pinned.py", PINNED_FLOW.replace("OTHER_PYTHON", repr(python)))
    result = run_flow(flow_env, flow_file, "--environment=pypi", "run", env=env_cache)
    assert result.returncode == 0, result.stdout + result.stderr
    data = artifacts(f"PinnedFlow/{run_id_of(result.stdout)}")
    assert data["start"]["start_version"] == "4.9.0"  # the flow's @pypi_base
    assert data["newer"]["newer_version"] == "4.10.0"  # the step's own version wins
    # A step's own python= (here with no packages: not even the flow's, which it overrides
    # with packages={}?) -- no: packages merge, so the base's humanize is there too.
    assert data["bare"]["bare_python"].startswith(python + ".")
    # numpy is installed where the run started, yet a step in an environment cannot import it.
    assert data["bare"]["bare_has"] == {"humanize": True, "numpy": False}
    import numpy  # noqa: F401  (it is here, which is what makes the line above mean something)

    # disabled=True runs the step with the runtime's own Python.
    assert data["plain"]["plain_python"] == sys.executable
    # The Client API tells what each task ran with, exactly.
    from flow_core import Run
    from flow_env import environment_lock

    run = Run(f"PinnedFlow/{run_id_of(result.stdout)}")
    locked = {(p.name, p.version) for p in environment_lock(run["newer"].task).packages}
    assert ("humanize", "4.10.0") in locked and ("humanize", "4.9.0") not in locked
    with pytest.raises(Exception, match="ran with its run's own Python"):
        environment_lock(run["plain"].task)
    # Steps that asked for the same packages share one environment, built once.
    built = list((Path(env_cache["METAFLOW_ENVIRONMENT_CACHE"]) / "envs").iterdir())
    assert len(built) == 3, built


def test_without_the_environment_the_decorators_say_what_to_add(flow_env, write_flow, env_cache):
    flow_file = write_flow("pinned.py", PINNED_FLOW.replace("OTHER_PYTHON", "None"))
    result = run_flow(flow_env, flow_file, "run", env=env_cache)
    assert result.returncode != 0
    assert "@pypi_base decorator requires --environment=conda or --environment=pypi" in result.stderr
    assert "Traceback" not in result.stderr and "Workflow starting" not in result.stdout


def test_a_second_run_builds_nothing(flow_env, write_flow, env_cache):
    flow_file = write_flow("pinned.py", PINNED_FLOW.replace("OTHER_PYTHON", "None"))
    first = run_flow(flow_env, flow_file, "--environment=pypi", "run", env=env_cache)
    assert first.returncode == 0, first.stderr
    assert "built in" in first.stdout and "resolved" in first.stdout
    envs = Path(env_cache["METAFLOW_ENVIRONMENT_CACHE"]) / "envs"
    before = {p.name: p.stat().st_ino for p in envs.iterdir()}

    # The second run through the Runner API, which takes Metaflow's environment= keyword.
    from flow_core import Runner

    with Runner(str(flow_file), environment="pypi", env=env_cache, show_output=False).run() as second:
        assert second.status == "successful", second.stderr
        output = second.stdout
    lines = [line for line in output.splitlines() if line.startswith("Environment pypi:")]
    assert lines and all(line.endswith("resolved before (cached), built before (cached).") for line in lines), lines
    assert {p.name: p.stat().st_ino for p in envs.iterdir()} == before


def _wheel(folder: Path, name: str, version: str) -> None:
    """A minimal pure-Python wheel of ``name`` whose module says its version."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: flow-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in files.items()) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
        wheel.writestr(f"{dist}/RECORD", record)


def test_resume_reuses_the_origin_runs_lock_though_the_index_moved_on(flow_env, write_flow, tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "flowprobe", "1.0")
    flow_file = write_flow("floating.py", FLOATING_FLOW)
    env = {"UV_FIND_LINKS": str(index), "METAFLOW_ENVIRONMENT_CACHE": str(tmp_path / "cache-1")}
    origin = run_flow(flow_env, flow_file, "--environment=pypi", "run", env=env)
    assert origin.returncode == 0, origin.stderr
    origin_id = run_id_of(origin.stdout)
    assert artifacts(f"FloatingFlow/{origin_id}")["end"]["last"] == "1.0"

    _wheel(index, "flowprobe", "1.1")  # the index now has a newer version...
    env["METAFLOW_ENVIRONMENT_CACHE"] = str(tmp_path / "cache-2")  # ...and nothing is cached
    fresh = run_flow(flow_env, flow_file, "--environment=pypi", "run", env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert artifacts(f"FloatingFlow/{run_id_of(fresh.stdout)}")["end"]["last"] == "1.1"

    env["METAFLOW_ENVIRONMENT_CACHE"] = str(tmp_path / "cache-3")
    resumed = run_flow(flow_env, flow_file, "--environment=pypi", "resume", "end", "--origin-run-id", origin_id,
                       env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"reused from run {origin_id}" in resumed.stdout
    data = artifacts(f"FloatingFlow/{run_id_of(resumed.stdout)}")
    assert data["end"]["last"] == "1.0" and data["start"]["first"] == "1.0"


@pytest.mark.parametrize("packages, python, expected", [
    ({"flow-no-such-package-zz": "1.0"}, None,
     r"step 'start': @pypi: flow-no-such-package-zz==1\.0 on this run’s Python cannot be installed: .*"
     r"flow-no-such-package-zz was not found in the package registry.*; change the package's name or version"),
    ({"humanize": "4.9.0", "attrs": "19.1.0"}, None,
     r"step 'start': .* cannot be installed: .*attrs==19\.1\.0.* \(Flow itself needs attrs.* in every environment\)"),
    ({}, "3.4", r"step 'start' asks for Python 3\.4 \(@pypi\(python='3\.4'\)\), and no Python 3\.4 is installed"),
])
def test_what_cannot_be_installed_stops_the_run_before_any_task(flow_env, write_flow, env_cache, packages, python,
                                                                expected):
    source = (f"from flow_core import FlowSpec, step, pypi\n\n\nclass BadFlow(FlowSpec):\n"
              f"    @pypi(packages={packages!r}, python={python!r})\n    @step\n    def start(self):\n"
              f"        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n\n\n"
              f"if __name__ == '__main__':\n    BadFlow()\n")
    result = run_flow(flow_env, write_flow("bad.py", source), "--environment=pypi", "run", env=env_cache)
    assert result.returncode != 0
    assert re.search(expected, result.stderr), result.stderr
    assert "Traceback" not in result.stderr and "Task is starting" not in result.stdout


def test_environment_resolve_and_show_list_each_steps_locked_packages(flow_env, write_flow, env_cache):
    flow_file = write_flow("pinned.py", PINNED_FLOW.replace("OTHER_PYTHON", "None"))
    before = run_flow(flow_env, flow_file, "--environment=pypi", "environment", "show", env=env_cache)
    assert before.returncode == 0, before.stderr
    assert "start: not resolved yet" in before.stdout

    resolved = run_flow(flow_env, flow_file, "--environment=pypi", "environment", "resolve", env=env_cache)
    assert resolved.returncode == 0, resolved.stderr
    start = re.search(r"^start: (pypi:\w+), Python [\d.]+, \S+; (\S+)$", resolved.stdout, re.M)
    assert start and Path(start.group(2)).is_dir(), resolved.stdout
    assert re.search(r"^    humanize==4\.9\.0  sha256:", resolved.stdout, re.M)
    assert re.search(r"^newer: pypi:\w+.*\n(    .*\n)*    humanize==4\.10\.0 ", resolved.stdout, re.M)
    assert "plain: this run's own Python" in resolved.stdout.replace("’", "'")

    run = run_flow(flow_env, flow_file, "--environment=pypi", "run", env=env_cache)
    shown = run_flow(flow_env, flow_file, "--environment=pypi", "environment", "show", "--run-id",
                     run_id_of(run.stdout), env=env_cache)
    assert shown.returncode == 0, shown.stderr
    assert f"start: {start.group(1)}," in shown.stdout  # what the run used is what resolve locked


def test_the_example_runs_as_its_docstring_says(flow_env, env_cache):
    example = Path(__file__).resolve().parents[3] / "examples" / "packages.py"
    result = run_flow(flow_env, example, "--environment=pypi", "run", env=env_cache)
    assert result.returncode == 0, result.stderr
    assert "123456789 bytes is 123.5 MB; the steps ran humanize {'start': '4.9.0', 'newer': '4.10.0'}." \
        in result.stdout
