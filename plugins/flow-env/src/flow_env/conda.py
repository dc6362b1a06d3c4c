"""``@conda``: conda packages solved and installed with py-rattler, no conda or mamba needed.

A conda environment is a virtualenv made by uv (Flow's own requirements in it as wheels,
locked like ``@pypi``'s) with the step's conda packages linked into the same folder, so
the step's code imports Flow and runs the packages' commands. When the solve brings its own
``python`` (a real channel's numpy does), that Python is the environment's, and the
wheels go into it instead of a virtualenv.

py-rattler does the solving and installing in a child process (`flow_env.rattler_process`,
which says why); flow-env works without it until a step asks for ``@conda``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from flow_core.plugin_api import ConfigError, Settings

from .cache import LAUNCHER, EnvironmentCache, create_venv, install_wheels, publish
from .lock import Lock, LockedPackage
from .pypi_resolver import native_platform, remote_platform, resolve_pypi
from .rattler_process import UNMET
from .spec import CONDA, PYPI, EnvironmentSpec, describe_steps

#: Runs at the environment's Python start-up, however it is started (see `_PATH_HOOK`).
PATH_HOOK = "_flow_conda_prefix.pth"


def resolve_conda(spec: EnvironmentSpec, flow_requirements: tuple[str, ...], python: str, python_version: str,
                  remote: bool, steps: list[str], settings: Settings) -> Lock:
    """Lock ``spec``: Flow's requirements as wheels for ``python``, and the conda packages
    solved against the configured channels for this machine's (or Batch's) conda subdir."""
    from .environment import conda_channels  # environment imports this module lazily

    channels = conda_channels(settings)
    target = remote_platform() if remote else native_platform()
    wheels = resolve_pypi(EnvironmentSpec(PYPI, spec.python, ()), flow_requirements, python, python_version,
                          target, steps)
    requested = tuple(spec.requirements())
    subdir = conda_subdir(remote)
    records = _solve(spec, requested, channels, subdir, python_version, remote, steps) if requested else []
    conda_packages = tuple(sorted((_locked(record) for record in records), key=lambda p: p.name))
    return Lock(CONDA, python_version, subdir, requested, tuple(flow_requirements),
                wheels.packages + conda_packages, tuple(channels))


def build_conda(cache: EnvironmentCache, lock: Lock, python: str) -> Path:
    """Build ``lock``'s environment in the cache unless it is built already; return its
    launcher. Built in a temporary folder and renamed into place, like ``@pypi``'s."""
    target = cache.folder(lock)
    if cache.is_built(lock):
        return cache.launcher(lock)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        records = conda_records(lock)
        if records:
            # Files that name their prefix get the final folder's, not the temporary one's.
            _install(records, building, target, cache.root / "conda-pkgs", lock)
        if not brings_python(records):
            create_venv(building, python)
        install_wheels(building / "bin" / "python", [p for p in lock.packages if p.record is None])
        finish_environment(building)
        publish(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return cache.launcher(lock)


def conda_records(lock: Lock) -> list[LockedPackage]:
    """The lock's conda packages (its other files are Flow's wheels)."""
    return [p for p in lock.packages if p.record is not None]


def brings_python(records: list[LockedPackage]) -> bool:
    """Whether the conda packages include a Python, which the wheels then go into."""
    return any(p.name == "python" for p in records)


def finish_environment(prefix: Path) -> Path:
    """The last step of building a conda environment, here or in a container: its ``bin`` on
    PATH at Python start-up, and the launcher tasks run with; returns the launcher."""
    _add_path_hook(prefix)
    launcher = prefix / "bin" / LAUNCHER
    launcher.write_text(launcher_text())
    launcher.chmod(0o755)
    return launcher


def launcher_text() -> str:
    """A POSIX sh script that runs the environment's Python the way ``conda activate`` would
    leave it: its ``bin`` first on PATH and CONDA_PREFIX set. It finds the environment from
    its own location, so the folder can move."""
    return (
        "#!/bin/sh\n"
        "# Flow's conda environment: its commands on PATH, then its Python (see flow_env.conda).\n"
        'prefix=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd -P) || exit 1\n'
        'PATH="$prefix/bin${PATH:+:$PATH}"\n'
        'CONDA_PREFIX="$prefix"\n'
        "export PATH CONDA_PREFIX\n"
        'exec "$prefix/bin/python" "$@"\n'
    )


def conda_subdir(remote: bool) -> str:
    """The conda subdir packages are solved for: this machine's, or Batch's Linux."""
    machine = (remote_platform() if remote else native_platform()).split("-", 1)[0]
    system = "linux" if remote or sys.platform.startswith("linux") else "osx" if sys.platform == "darwin" else "win"
    if machine == "x86_64":
        return f"{system}-64"
    return f"{system}-arm64" if system == "osx" else f"{system}-{machine}"


# -- solving ----------------------------------------------------------------------------------

#: What Batch's Linux offers, for a remote step's solve: the manylinux_2_28 baseline @pypi assumes.
REMOTE_VIRTUAL_PACKAGES = {"__unix": "0", "__linux": "5.10", "__glibc": "2.28"}


def _solve(spec: EnvironmentSpec, requested: tuple[str, ...], channels: list[str], subdir: str,
           python_version: str, remote: bool, steps: list[str]) -> list[dict[str, Any]]:
    minor = ".".join(python_version.split(".")[:2])
    request = {"channels": channels, "specs": list(requested), "platforms": [subdir, "noarch"],
               # A solve that brings a Python must bring the one Flow's wheels were locked for.
               "constraints": [f"python {minor}.*"],
               "virtual_packages": REMOTE_VIRTUAL_PACKAGES if remote else None}
    with tempfile.TemporaryDirectory(prefix="flow-conda-") as folder:
        path = Path(folder) / "request.json"
        path.write_text(json.dumps(request))
        result = _rattler_process("solve", str(path))
    if result.returncode != 0:
        raise ConfigError(f"{describe_steps(steps)}: {spec.describe()} cannot be installed from the conda channel(s) "
                          f"{', '.join(channels)}: {_last_line(result.stderr)}; change the package's name or version "
                          "in the decorator, or add a channel that has it to METAFLOW_CONDA_CHANNELS")
    return json.loads(result.stdout)


def _locked(data: dict[str, Any]) -> LockedPackage:
    return LockedPackage(name=data["name"], version=str(data["version"]), filename=data["fn"], url=data["url"],
                         sha256=data.get("sha256") or "", size=data.get("size"), record=data)


# -- installing -------------------------------------------------------------------------------

def _install(packages: list[LockedPackage], prefix: Path, final_prefix: Path, package_cache: Path, lock: Lock) -> None:
    package_cache.mkdir(parents=True, exist_ok=True)
    lock_file = prefix / ".flow-lock.json"
    lock_file.write_bytes(lock.to_json())
    result = _rattler_process("install", str(lock_file), "-", str(prefix), str(final_prefix), str(package_cache))
    lock_file.unlink()
    if result.returncode != 0:
        raise ConfigError(f"the conda packages of environment {lock.name} could not be installed: "
                          f"{_last_line(result.stderr)}; check access to the channel(s) {', '.join(lock.channels)}")


def _rattler_process(*arguments: str) -> subprocess.CompletedProcess:
    """`flow_env.rattler_process` in a child process (see there for why)."""
    installed = sys.modules["rattler"] is not None if "rattler" in sys.modules else importlib.util.find_spec("rattler")
    if not installed:
        raise ConfigError("@conda needs py-rattler: pip install 'flow-env[conda]'")
    result = subprocess.run([sys.executable, "-m", "flow_env.rattler_process", *arguments], capture_output=True,
                            text=True)
    if result.returncode not in (0, UNMET):
        raise ConfigError(f"py-rattler failed ({_last_line(result.stderr)}); rerun, and report it if it persists")
    return result


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no reason given"


def _add_path_hook(prefix: Path) -> None:
    """Put the environment's ``bin`` on PATH at Python start-up too, for when its ``python``
    is started directly rather than through the launcher."""
    for site_packages in prefix.glob("lib/python*/site-packages"):
        (site_packages / PATH_HOOK).write_text(_PATH_HOOK)


_PATH_HOOK = (
    "import os, sys; b = os.path.join(sys.prefix, 'bin'); p = os.environ.get('PATH', ''); "
    "os.environ['PATH'] = p if p.split(os.pathsep)[0] == b else os.pathsep.join(x for x in (b, p) if x); "
    "os.environ.setdefault('CONDA_PREFIX', sys.prefix)\n"
)



