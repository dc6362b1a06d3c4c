"""Each package, built as a wheel and installed with only the dependencies it declares, works.

The workspace installs every member and every test tool together, so a module importing
something its own package never declared (or a file left out of the wheel) passes every other
test and breaks for the first user who installs that package alone. Here each wheel goes into
a fresh virtualenv: flow-core by itself, then flow-core with one plugin at a time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello.py"
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir()
                 if (p / "pyproject.toml").exists() and not p.name.startswith("_"))
SOURCES = {"flow-core": ROOT / "core", **{name: ROOT / "plugins" / name for name in PLUGINS}}


def workspace_dependencies(plugin: str) -> list[str]:
    """The other plugins ``plugin`` declares it needs (flow-sched-sfn builds on
    flow-compute-batch): nothing is published, so their wheels are installed beside it."""
    declared = tomllib.loads((SOURCES[plugin] / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0] for requirement in declared]
    return [name for name in names if name in SOURCES and name not in ("flow-core", plugin)]

# Imports every module of a package, so a dependency used only by a backend chosen later
# (boto3 in the S3 storage, asyncpg in the service) is checked too. Test helpers built on
# flow_core.testing (a pytest plugin) need pytest, which their users have: those are the only
# modules allowed to miss a package, and only pytest.
IMPORT_ALL = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
print(package.__file__)
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    try:
        importlib.import_module(module.name)
    except ModuleNotFoundError as exc:
        if exc.name != "pytest":
            raise
"""


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is needed to build the wheels (scripts/test installs it)")
    return found


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def clean_environment(**extra: str) -> dict[str, str]:
    """No trace of the workspace: no Flow settings, no active virtualenv, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("METAFLOW_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """One wheel per package, built once per session (in parallel: most of the time is start-up)."""
    out = tmp_path_factory.mktemp("wheels")
    builds = {name: subprocess.Popen([uv(), "build", "--wheel", "--no-progress", "--out-dir", str(out / name),
                                      str(source)], cwd=out, env=clean_environment(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for name, source in SOURCES.items()}
    built = {}
    for name, build in builds.items():
        output, _ = build.communicate(timeout=600)
        assert build.returncode == 0, f"uv build {name} failed:\n{output}"
        (built[name],) = (out / name).glob("*.whl")
    return built


@pytest.fixture(scope="session")
def venvs(wheels, tmp_path_factory):
    """A virtualenv per set of wheels, created on first use: ``venvs("flow-core", plugin)``."""
    made: dict[tuple[str, ...], Path] = {}

    def venv(*names: str) -> Path:
        if names not in made:
            folder = tmp_path_factory.mktemp("venv-" + "-".join(names))
            run(uv(), "venv", "--quiet", "--python", sys.executable, str(folder / "venv"), cwd=folder,
                env=clean_environment())
            run(uv(), "pip", "install", "--quiet", "--python", str(folder / "venv" / "bin" / "python"),
                *(str(wheels[name]) for name in names), cwd=folder, env=clean_environment())
            made[names] = folder / "venv"
        return made[names]

    return venv


def run_hello(venv: Path, folder: Path) -> str:
    """The example as a newcomer runs it: ``flow run hello.py`` with the local defaults."""
    shutil.copy(EXAMPLE, folder / "hello.py")
    env = clean_environment(METAFLOW_DATASTORE_SYSROOT_LOCAL=str(folder / "store"),
                            METAFLOW_HOME=str(folder / "home"), METAFLOW_USER="tester",
                            PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    ran = run(str(venv / "bin" / "flow"), "run", "hello.py", cwd=folder, env=env)
    assert any((folder / "store").rglob("*.index")), "the run stored nothing in the local datastore"
    return ran.stdout + ran.stderr


def flow_plugins(venv: Path, folder: Path) -> subprocess.CompletedProcess:
    return run(str(venv / "bin" / "flow"), "plugins", cwd=folder,
               env=clean_environment(METAFLOW_HOME=str(folder / "home")))


def test_flow_core_alone_runs_the_hello_example(venvs, tmp_path):
    venv = venvs("flow-core")
    assert "Hello, Flow! has 9 letters." in run_hello(venv, tmp_path)
    listed = flow_plugins(venv, tmp_path).stdout
    assert listed.startswith("flow-core "), listed
    assert not any(name in listed for name in PLUGINS), listed


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_plugin_installed_with_flow_core_loads_and_imports(plugin, venvs, wheels, tmp_path):
    venv = venvs("flow-core", *workspace_dependencies(plugin), plugin)
    version = wheels[plugin].name.split("-")[1]
    listed = flow_plugins(venv, tmp_path)
    assert f"{plugin} {version}" in listed.stdout.splitlines(), listed.stdout
    assert "failed to load" not in listed.stderr, listed.stderr

    imported = run(str(venv / "bin" / "python"), "-c", IMPORT_ALL, plugin.replace("-", "_"), cwd=tmp_path,
                   env=clean_environment())
    assert Path(imported.stdout.splitlines()[0]).is_relative_to(venv), "imported from the checkout, not the wheel"

    assert "Hello, Flow! has 9 letters." in run_hello(venv, tmp_path)
