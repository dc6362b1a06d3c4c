"""``--environment=conda``: steps get the conda packages they ask for, solved and installed by
rattler from a channel the test makes, built once and then found in the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flow_core.testing import run_id_of
from flow_env.testing.conda_channel import make_channel

TOOL_FLOW = textwrap.dedent('''
    import shutil
    import subprocess

    from flow_core import FlowSpec, conda, step


    def tool_output():
        """What `flowtool` prints here, or None when this step's PATH has no flowtool."""
        if shutil.which("flowtool") is None:
            return None
        return subprocess.run(["flowtool"], capture_output=True, text=True, check=True).stdout.strip()


    class CondaToolFlow(FlowSpec):
        @step
        def start(self):
            self.seen = tool_output()
            self.next(self.old)

        @conda(packages={"flowtool": "1.0"})
        @step
        def old(self):
            self.seen = tool_output()
            self.next(self.new)

        @conda(packages={"flowtool": "2.0"})
        @step
        def new(self):
            self.seen = tool_output()
            self.next(self.end)

        @step
        def end(self):
            pass


    if __name__ == "__main__":
        CondaToolFlow()
''')

MISSING_FLOW = textwrap.dedent('''
    from flow_core import FlowSpec, conda_base, conda, step


    @conda_base(packages={"flowtool": "1.0"})
    class MissingToolFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.wants_missing)

        @conda(packages={"nosuchtool": "1.0"})
        @step
        def wants_missing(self):
            self.next(self.end)

        @step
        def end(self):
            pass


    if __name__ == "__main__":
        MissingToolFlow()
''')

READ_SEEN = textwrap.dedent('''
    import json, sys
    from flow_core import Run

    run = Run(sys.argv[1])
    print(json.dumps({step: run[step].task["seen"].data for step in sys.argv[2:]}))
''')


@pytest.fixture(scope="module")
def conda_setup(tmp_path_factory):
    """One channel (flowtool 1.0 and 2.0), one datastore and one environment cache for the module."""
    root = tmp_path_factory.mktemp("conda")
    channel = make_channel(root / "channel", {"flowtool": ("1.0", "2.0")})
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
    env.update(METAFLOW_DATASTORE_SYSROOT_LOCAL=str(root / "datastore"), METAFLOW_HOME=str(root / "home"),
               METAFLOW_ENVIRONMENT_CACHE=str(root / "cache"), METAFLOW_CONDA_CHANNELS=channel.as_uri(),
               METAFLOW_USER="tester")
    flows = root / "flows"
    flows.mkdir()
    (flows / "tool_flow.py").write_text(TOOL_FLOW)
    (flows / "missing_flow.py").write_text(MISSING_FLOW)
    return {"root": root, "env": env, "flows": flows}


def run_flow(setup: dict, flow_file: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(setup["flows"] / flow_file), "--environment=conda", *args],
                          env=setup["env"], capture_output=True, text=True, timeout=300)


def seen(setup: dict, pathspec: str, *steps: str) -> dict:
    result = subprocess.run([sys.executable, "-c", READ_SEEN, pathspec, *steps], env=setup["env"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def built_environments(setup: dict) -> dict[str, tuple[int, int]]:
    """Each built environment folder, by name: its inode and modification time."""
    envs = setup["root"] / "cache" / "envs"
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in envs.iterdir() if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def first_run(conda_setup):
    result = run_flow(conda_setup, "tool_flow.py", "run")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_each_step_runs_the_conda_package_version_it_pins(conda_setup, first_run):
    run_id = run_id_of(first_run.stdout)
    assert seen(conda_setup, f"CondaToolFlow/{run_id}", "start", "old", "new") == {
        "start": None,  # no @conda: its environment has Flow's requirements only
        "old": "flowtool 1.0",
        "new": "flowtool 2.0",
    }


def test_conda_environments_are_locked_with_their_records(conda_setup, first_run):
    locks = [json.loads(p.read_text()) for p in (conda_setup["root"] / "cache" / "locks").glob("*.json")]
    conda_locks = [lock for lock in locks if lock["kind"] == "conda"]
    assert sorted(lock["requested"] for lock in conda_locks) == [["flowtool==1.0"], ["flowtool==2.0"]]
    for lock in conda_locks:
        (tool,) = [p for p in lock["packages"] if p["record"] is not None]
        assert tool["name"] == "flowtool" and tool["url"].startswith("file://")
        assert tool["record"]["sha256"] == tool["sha256"] and len(tool["sha256"]) == 64
        assert any(p["name"] == "attrs" for p in lock["packages"] if p["record"] is None)  # Flow's own


def test_a_second_run_uses_the_built_environments(conda_setup, first_run):
    before = built_environments(conda_setup)
    assert len(before) == 3  # start's (no packages), old's, new's
    second = run_flow(conda_setup, "tool_flow.py", "run")
    assert second.returncode == 0, second.stdout + second.stderr
    for step in ("old", "new"):
        line = next(line for line in second.stdout.splitlines() if line.startswith("Environment conda:")
                    and line.split(" for ", 1)[1].startswith(f"{step}:"))
        assert "resolved before (cached)" in line and "built before (cached)" in line, line
    assert built_environments(conda_setup) == before
    run_id = run_id_of(second.stdout)
    assert seen(conda_setup, f"CondaToolFlow/{run_id}", "old", "new") == {"old": "flowtool 1.0",
                                                                       "new": "flowtool 2.0"}


def test_a_package_the_channels_lack_fails_the_run_before_any_task(conda_setup):
    result = run_flow(conda_setup, "missing_flow.py", "run")
    assert result.returncode != 0
    assert "Task is starting" not in result.stdout + result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "step 'wants_missing'" in message and "nosuchtool" in message, result.stderr
    assert "METAFLOW_CONDA_CHANNELS" in message and "change the package's name or version" in message


def test_the_launcher_finds_its_environment_after_the_folder_moves(conda_setup, first_run, tmp_path):
    envs = conda_setup["root"] / "cache" / "envs"
    with_tool = next(p for p in envs.iterdir() if (p / "bin" / "flowtool").is_file())
    moved = tmp_path / "moved"
    subprocess.run(["cp", "-a", str(with_tool), str(moved)], check=True)
    result = subprocess.run(
        [str(moved / "bin" / "flow-python"), "-c",
         "import os, shutil; print(os.environ['CONDA_PREFIX']); print(shutil.which('flowtool'))"],
        env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    prefix, tool = result.stdout.split()
    assert Path(prefix) == moved.resolve() and Path(tool) == moved.resolve() / "bin" / "flowtool"


def test_without_rattler_flow_env_loads_and_conda_says_what_to_install():
    script = textwrap.dedent('''
        import sys
        sys.modules["rattler"] = None  # as if py-rattler were not installed
        import flow_env.plugin, flow_env.environment, flow_env.conda
        from flow_core.plugin_api import ConfigError
        try:
            flow_env.conda._rattler_process("index", "/nonexistent")  # every use of rattler goes through it
        except ConfigError as exc:
            print(exc)
    ''')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "@conda needs py-rattler: pip install 'flow-env[conda]'"
