"""Build a lock's environment in a task's container from the datastore alone.

Run by the task's bootstrap, with the code package on PYTHONPATH and the run's datastore
settings in the environment::

    python3 -m flow_env.remote_build <lock key> <uv key> [<py-rattler key>]

It never asks a package index: uv runs offline on the lock's files, fetched from the
datastore and checked against their SHA-256. A conda lock's packages are linked by
py-rattler, which the image lacks: the third argument names its lock (`remote.stage_rattler`),
whose wheel goes into a throwaway virtualenv for the build alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from flow_core.plugin_api import Backends, StorageBackend

from .cache import COMPLETE
from .lock import Lock, LockedPackage
from .lock import lock_key as stored_lock_key
from .remote import REMOTE_ROOT
from .spec import CONDA


def main(lock_key: str, uv_key: str, rattler_key: str | None = None) -> None:
    storage = Backends.configured().storage
    lock = Lock.from_json(storage.get(lock_key))
    root = Path(REMOTE_ROOT)
    target = root / lock.digest[:32]
    if (target / COMPLETE).is_file():
        return
    root.mkdir(parents=True, exist_ok=True)
    uv = root / f"uv-{uv_key.rsplit('-', 1)[-1][:16]}"
    if not uv.is_file():
        uv.write_bytes(storage.get(uv_key))
        uv.chmod(uv.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    files = building / ".files"
    paths = _fetch(storage, lock.packages, files)
    env = {**os.environ, "UV_OFFLINE": "1", "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never",
           "UV_CACHE_DIR": str(root / ".uv-cache")}
    env.pop("VIRTUAL_ENV", None)
    python = f"python{'.'.join(lock.python.split('.')[:2])}"
    print(f"Building environment {lock.name} ({len(paths)} packages) from the datastore", flush=True)
    conda = [p for p in lock.packages if p.record is not None]
    if conda:
        from .conda import brings_python

        if not rattler_key:
            sys.exit(f"environment {lock.name} has conda packages and no py-rattler to install them; "
                     "run the flow again with this version of flow-env")
        tools = _rattler_venv(storage, rattler_key, building / ".tools", str(uv), python, env)
        lock_file = files / ".lock.json"
        lock_file.write_bytes(lock.to_json())
        _run([str(tools), "-m", "flow_env.rattler_process", "install", str(lock_file), str(files), str(building), str(target),
              str(root / ".conda-pkgs")], env)
        shutil.rmtree(building / ".tools")
    if not conda or not brings_python(conda):
        _venv(str(uv), building, python, env)
    wheels = [str(paths[p.key]) for p in lock.packages if p.record is None]
    _pip_install(str(uv), building, wheels, env)
    if lock.kind == CONDA:
        from .conda import finish_environment

        finish_environment(building)
    shutil.rmtree(files)
    (building / COMPLETE).write_text("")
    try:
        building.rename(target)
    except OSError:
        shutil.rmtree(building, ignore_errors=True)


def _fetch(storage: StorageBackend, packages: Sequence[LockedPackage], folder: Path) -> dict[str, Path]:
    """Write each package's file into ``folder``, checked against its SHA-256; by key."""
    folder.mkdir(parents=True, exist_ok=True)
    data = storage.get_many([p.key for p in packages])
    paths = {}
    for package in packages:
        blob = data[package.key]
        if hashlib.sha256(blob).hexdigest() != package.sha256:
            sys.exit(f"{package.filename} in the datastore does not match its SHA-256; the environment is not built")
        paths[package.key] = folder / package.filename
        paths[package.key].write_bytes(blob)
    return paths


def _rattler_venv(storage: StorageBackend, key: str, folder: Path, uv: str, python: str,
                  env: dict[str, str]) -> Path:
    """A virtualenv with py-rattler alone, from the wheels its lock names; its Python."""
    digest = storage.get(key).decode().strip()
    data = storage.get(stored_lock_key(digest))
    if hashlib.sha256(data).hexdigest() != digest:
        sys.exit("py-rattler's lock in the datastore does not match its digest; the environment is not built")
    tools = Lock.from_json(data)
    wheels = _fetch(storage, tools.packages, folder / ".files")
    _venv(uv, folder, python, env)
    _pip_install(uv, folder, [str(p) for p in wheels.values()], env)
    return folder / "bin" / "python"


def _venv(uv: str, folder: Path, python: str, env: dict[str, str]) -> None:
    _run([uv, "venv", str(folder), "--python", python, "--relocatable", "--no-project", "--allow-existing",
          "--quiet"], env)


def _pip_install(uv: str, folder: Path, wheels: list[str], env: dict[str, str]) -> None:
    if wheels:
        _run([uv, "pip", "install", "--python", str(folder / "bin" / "python"), "--offline", "--no-index",
              "--no-deps", "--quiet", *wheels], env)


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env)
    if result.returncode != 0:
        sys.exit(f"building the task's environment failed: {' '.join(command[:3])} exited with {result.returncode}")


if __name__ == "__main__":
    main(*sys.argv[1:])
