"""Environments built on this machine, kept in a cache keyed by their lock's digest.

A lock is built once and reused by every run and flow that resolves to it: a warm
environment costs a directory lookup. Building happens in a temporary folder renamed into
place, so an interrupted build leaves nothing half-made, and two runs building the same
environment at once both end with one good copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from flow_core.plugin_api import ConfigError, Settings

from .lock import Lock, LockedPackage
from .uv_binary import uv_command

COMPLETE = ".flow-complete"
#: The executable a conda environment's tasks run with (`flow_env.conda.launcher_text`).
LAUNCHER = "flow-python"


def cache_root(settings: Settings) -> Path:
    configured = settings.get("METAFLOW_ENVIRONMENT_CACHE")
    if configured:
        return Path(configured).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flow" / "environments"


class EnvironmentCache:
    """Locks, resolutions and built environments under one folder."""

    def __init__(self, root: Path):
        self.root = root

    # -- resolutions: what a spec resolved to, so the same spec is not resolved again ----------

    def resolution(self, spec_key: str) -> Lock | None:
        pointer = self.root / "resolutions" / spec_key
        if not pointer.is_file():
            return None
        return self.lock(pointer.read_text().strip())

    def remember_resolution(self, spec_key: str, lock: Lock) -> None:
        self.store_lock(lock)
        _write_atomically(self.root / "resolutions" / spec_key, lock.digest.encode())

    def lock(self, digest: str) -> Lock | None:
        path = self.root / "locks" / f"{digest}.json"
        if not path.is_file():
            return None
        data = path.read_bytes()
        return Lock.from_json(data) if hashlib.sha256(data).hexdigest() == digest else None

    def store_lock(self, lock: Lock) -> None:
        path = self.root / "locks" / f"{lock.digest}.json"
        if not path.is_file():
            _write_atomically(path, lock.to_json())

    # -- built environments -----------------------------------------------------------------

    def folder(self, lock: Lock) -> Path:
        return self.root / "envs" / lock.digest[:32]

    def is_built(self, lock: Lock) -> bool:
        return (self.folder(lock) / COMPLETE).is_file()

    def python(self, lock: Lock) -> Path:
        return self.folder(lock) / "bin" / "python"

    def launcher(self, lock: Lock) -> Path:
        """A conda environment's interpreter as tasks start it: with its programs on PATH."""
        return self.folder(lock) / "bin" / LAUNCHER

    def build_pypi(self, lock: Lock, base_python: str) -> Path:
        """The environment's interpreter, building it first unless it is built already."""
        target = self.folder(lock)
        if not self.is_built(lock):
            target.parent.mkdir(parents=True, exist_ok=True)
            building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            try:
                create_venv(building, base_python)
                install_wheels(building / "bin" / "python", lock.packages)
                publish(building, target)
            finally:
                shutil.rmtree(building, ignore_errors=True)
        return self.python(lock)


def create_venv(folder: Path, base_python: str) -> None:
    run_uv(["venv", str(folder), "--python", base_python, "--relocatable", "--no-project", "--allow-existing"],
           "create a virtualenv")


def install_wheels(python: Path, packages: Sequence[LockedPackage]) -> None:
    """Install exactly the lock's wheels, each from its URL and checked against its hash (uv
    takes them from its own cache when it has them). Where Python may not write bytecode
    (PYTHONDONTWRITEBYTECODE, ``-B``), it is compiled here, once: otherwise every task of every
    later run would compile pandas again as it imports it. Elsewhere the first import writes
    it, and the build stays fast."""
    if not packages:
        return
    requirements = python.parent.parent / "flow-requirements.txt"
    requirements.write_text("".join(f"{p.name} @ {p.url} --hash=sha256:{p.sha256}\n" for p in packages))
    compile_now = ["--compile-bytecode"] if sys.dont_write_bytecode else []
    run_uv(["pip", "install", "--python", str(python), "--no-deps", "--require-hashes", "-r", str(requirements),
            "--link-mode", "hardlink", *compile_now], "install the environment's wheels")


def publish(building: Path, target: Path) -> None:
    """Move a finished environment into place, marked complete; another process may have
    published the same one first, which is as good."""
    (building / COMPLETE).write_text("")
    if target.exists() and not (target / COMPLETE).is_file():
        shutil.rmtree(target, ignore_errors=True)  # a leftover of a build that was killed
    try:
        building.rename(target)
    except OSError:
        if not (target / COMPLETE).is_file():
            raise


def run_uv(arguments: list[str], doing: str) -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run([*uv_command(), *arguments, "--quiet"], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"uv could not {doing}: {detail}")


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)
