"""The README's set-up command installs Flow and its plugins, and nothing else.

Test tools do not belong in a user's environment, and Metaflow least of all: with Metaflow
installed, a half-converted flow still importing it runs without complaint and writes to
Metaflow's datastore instead of Flow's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]


def normalized(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def set_up_command() -> str:
    """The command under "Set up and run the example flow", without its `pip install uv`."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"Set up and run the example flow.*?```bash\n(.*?)\n```", readme, re.S).group(1)
    steps = [step.strip() for step in block.split("&&")]
    return " && ".join(step for step in steps if not step.startswith("python3 -m pip install uv"))


def test_the_readme_set_up_installs_flow_and_its_plugins_only(tmp_path):
    projects = [tomllib.loads(p.read_text()) for p in [ROOT / "pyproject.toml", ROOT / "core" / "pyproject.toml",
                                                        *sorted(ROOT.glob("plugins/[!_]*/pyproject.toml"))]]
    members = {normalized(p["project"]["name"]) for p in projects[1:]}
    runtime = {normalized(r) for p in projects for r in p["project"].get("dependencies", [])}
    dev_only = {normalized(r) for p in projects for group in p.get("dependency-groups", {}).values()
                for r in group if isinstance(r, str)} - runtime - members

    uv = os.environ.get("UV") or shutil.which("uv")
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_") and k != "VIRTUAL_ENV"}
    env.update(UV_PROJECT_ENVIRONMENT=str(venv), METAFLOW_DATASTORE_SYSROOT_LOCAL=str(tmp_path / "store"),
               METAFLOW_HOME=str(tmp_path / "home"), METAFLOW_USER="tester",
               PATH=f"{Path(uv).parent}{os.pathsep}{env.get('PATH', '')}")
    ran = subprocess.run(["bash", "-c", set_up_command()], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900, check=False)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "Hello, Flow! has 9 letters." in ran.stdout + ran.stderr

    listed = subprocess.run([uv, "pip", "list", "--format", "json", "--python", str(venv / "bin" / "python")],
                            env=env, capture_output=True, text=True, check=True)
    installed = {normalized(p["name"]) for p in json.loads(listed.stdout)}
    assert members <= installed
    assert "metaflow" not in installed
    assert not installed & dev_only, f"test tools in the user's environment: {sorted(installed & dev_only)}"
