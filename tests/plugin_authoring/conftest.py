"""Plugins installed from their source folders, as their authors and users install them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from flow_core.testing import StorageConformance

REPO = Path(__file__).resolve().parents[2]

#: Every test of the storage suite, by name: a plugin's run of it must pass them all.
STORAGE_CONFORMANCE_TESTS = sorted(name for name in dir(StorageConformance) if name.startswith("test_"))


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without Flow settings or a PYTHONPATH, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_") and k != "PYTHONPATH"}
    env.update(extra)
    return env


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    assert found, "uv is needed to build and lock (scripts/test installs it)"
    return found


@pytest.fixture
def install_distribution(tmp_path: Path) -> Callable[[Path], Path]:
    """``install_distribution(folder)`` builds the distribution in ``folder`` from its own
    pyproject.toml, as pip does, and installs it without its dependencies (flow-core is here
    already) into a private site folder, which it returns: put that on PYTHONPATH or sys.path.
    The entry points Flow then finds are the ones the pyproject.toml declares."""

    def install(source: Path) -> Path:
        site = tmp_path / f"site-{source.name}"
        ran = subprocess.run([uv(), "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(source)],
                             env=environment(), capture_output=True, text=True, timeout=300, check=False)
        assert ran.returncode == 0, ran.stderr
        return site

    return install


def run_plugin_tests(plugin: Path, site: Path) -> subprocess.CompletedProcess:
    """A plugin's own tests, run as its author runs them (its pyproject.toml the only
    configuration), against the copy installed in ``site``."""
    return subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-c", "pyproject.toml",
                           "tests"], cwd=plugin, env=environment(PYTHONPATH=str(site)), capture_output=True,
                          text=True, timeout=600, check=False)


def assert_storage_conformance_passed(output: str) -> None:
    """Every test of `StorageConformance` ran and passed (``pytest -v`` output)."""
    for name in STORAGE_CONFORMANCE_TESTS:
        assert f"::{name} PASSED" in output, f"{name} did not pass:\n{output[-3000:]}"
