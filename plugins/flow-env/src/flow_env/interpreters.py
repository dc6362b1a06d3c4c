"""Finding a Python on this machine for ``python="3.11"``.

uv would download one it cannot find; Flow never does (a run must not depend on reaching
GitHub), so it looks where Pythons live: this interpreter, PATH, and pyenv's versions.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from pathlib import Path

from flow_core.plugin_api import ConfigError


def this_python() -> tuple[str, str]:
    """The runtime's own interpreter and its version."""
    return sys.executable, platform.python_version()


def find_python(requested: str | None, step: str, kind: str) -> tuple[str, str]:
    """An interpreter whose version starts with ``requested`` (``3.11`` takes 3.11.7), and
    its exact version; the runtime's own when it matches or nothing is asked."""
    own, version = this_python()
    if not requested or _matches(version, requested):
        return own, version
    for candidate in _candidates(requested):
        found = _version_of(str(candidate))
        if found and _matches(found, requested):
            return str(candidate), found
    raise ConfigError(f"step '{step}' asks for Python {requested} (@{kind}(python={requested!r})), and no Python "
                      f"{requested} is installed on this machine; install one, or change python= to a version "
                      f"you have (this run's is {version})")


def _matches(version: str, requested: str) -> bool:
    wanted = requested.strip().split(".")
    return version.split(".")[: len(wanted)] == wanted


def _candidates(requested: str) -> list[Path]:
    minor = ".".join(requested.split(".")[:2])
    names = [f"python{minor}", "python3"]
    found: list[Path] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or "shims" in Path(folder).parts:  # pyenv's shims answer for one version only
            continue
        found += [Path(folder) / name for name in names if (Path(folder) / name).is_file()]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        found += sorted(pyenv.glob(f"{minor}*/bin/python3"), reverse=True)
    return found


@functools.lru_cache(maxsize=None)
def _version_of(python: str) -> str | None:
    try:
        result = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
