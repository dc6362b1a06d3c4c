"""The code package: everything a task on another machine needs besides Python and the
third-party libraries of its image.

One gzipped tar, built once per run:

    flow/   the flow's folder: its ``.py`` files (the flow and what it imports from there)
    lib/    flow-core and every loaded plugin, each with a minimal ``.dist-info`` so that
            its entry points register it in the container as they do here

The bytes depend only on the files' paths and contents (no times, owners or ordering of the
file system), so unchanged code gives the same package, stored once under its SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Iterable, Iterator

import attrs

from flow_core.backends.selection import Backends
from flow_core.backends.storage import StorageBackend
from flow_core.engine.run_start import CODE_PACKAGE_VARIABLE
from flow_core.errors import ConfigError
from flow_core.plugin.registry import CORE_PLUGIN_NAME, ENTRY_POINT_GROUP, PluginRegistry
from flow_core.plugin.settings import Settings

PACKAGE_PREFIX = "code-packages"
USER_FOLDER = "flow"
LIB_FOLDER = "lib"
DEFAULT_SUFFIXES = (".py",)
#: A flow folder this large is almost certainly a data folder picked up by mistake.
MAX_USER_BYTES = 64 * 1024 * 1024
_SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages"}


@attrs.frozen
class CodePackage:
    blob: bytes
    sha256: str
    #: The flow file's path inside the unpacked package.
    flow_file: str
    #: The distributions it carries, ``name==version``.
    distributions: tuple[str, ...]
    #: Their third-party requirements: what the task's image must provide (or install).
    requirements: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The blob's name in the datastore."""
        return f"{PACKAGE_PREFIX}/{self.sha256}.tar.gz"

    def store(self, storage: StorageBackend) -> str:
        """Upload it unless the same package is there already; return its key."""
        storage.put(self.key, self.blob, overwrite=False)
        return self.key

    def task_environment(self, storage: StorageBackend) -> dict[str, str]:
        """What a task running from this package gets in its environment, so that it records
        the package in its metadata (``run.code`` in the Client API, as Metaflow's)."""
        field = {"sha": self.sha256, "key": self.key, "location": storage.location(self.key),
                 "ds_type": storage.name, "flow_file": self.flow_file}
        return {CODE_PACKAGE_VARIABLE: json.dumps(field, separators=(",", ":"))}

    @classmethod
    def build(cls, flow_file: str | os.PathLike, backends: Backends, used: Iterable[str] = ()) -> "CodePackage":
        """Package the flow's folder, flow-core and the loaded plugins. The folder's files
        are those ending in METAFLOW_DEFAULT_PACKAGE_SUFFIXES (default ``.py``).

        `requirements` are the `flow_requirements` of ``used`` (the caller's own distributions).
        """
        settings, registry = backends.settings, backends.registry
        configured = settings.get("METAFLOW_DEFAULT_PACKAGE_SUFFIXES")
        suffixes = tuple(s.strip() for s in configured.split(",") if s.strip()) if configured else DEFAULT_SUFFIXES
        flow_path = Path(flow_file).absolute()
        files: dict[str, bytes] = {}
        user_bytes = 0
        for path in _user_files(flow_path.parent, suffixes):
            data = path.read_bytes()
            user_bytes += len(data)
            files[f"{USER_FOLDER}/{path.relative_to(flow_path.parent).as_posix()}"] = data
        if user_bytes > MAX_USER_BYTES:
            raise ConfigError(
                f"the flow's folder {flow_path.parent} holds {user_bytes // 2**20} MiB of "
                f"{', '.join(suffixes)} files, too much for a code package; move the flow into a folder "
                "of its own or narrow METAFLOW_DEFAULT_PACKAGE_SUFFIXES"
            )
        distributions = []
        for name, version, package_dir, entry_points in _flow_distributions(registry):
            distributions.append(f"{name}=={version}")
            for path in sorted(package_dir.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    files[f"{LIB_FOLDER}/{package_dir.name}/{path.relative_to(package_dir).as_posix()}"] = \
                        path.read_bytes()
            info = f"{LIB_FOLDER}/{name.replace('-', '_')}-{version}.dist-info"
            files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
            if entry_points:
                files[f"{info}/entry_points.txt"] = entry_points.encode()
        blob = _deterministic_tar_gz(files)
        return cls(blob, hashlib.sha256(blob).hexdigest(), f"{USER_FOLDER}/{flow_path.name}",
                   tuple(sorted(distributions)), flow_requirements(backends, used))


def flow_library(registry: PluginRegistry, root: Path) -> Path:
    """A folder that makes flow-core and the loaded plugins importable, entry points and all,
    in another interpreter on this machine (a step's ``@pypi`` environment) when put on its
    PYTHONPATH: the code package's ``lib/`` made of links to the installed packages."""
    distributions = list(_flow_distributions(registry))
    digest = hashlib.sha256(json.dumps([[n, v, str(d), e] for n, v, d, e in distributions]).encode()).hexdigest()
    folder = root / digest[:32]
    if folder.is_dir():
        return folder
    building = root / f".{digest[:32]}.{os.getpid()}"
    building.mkdir(parents=True, exist_ok=True)
    for name, version, package_dir, entry_points in distributions:
        (building / package_dir.name).symlink_to(package_dir, target_is_directory=True)
        info = building / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        if entry_points:
            (info / "entry_points.txt").write_text(entry_points)
    try:
        building.rename(folder)
    except OSError:  # another run made it first
        shutil.rmtree(building, ignore_errors=True)
    return folder


def _user_files(folder: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    for root, dirs, names in os.walk(folder):
        # A hidden folder, a virtualenv or a cache never belongs to the flow's code.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS
                         and not (Path(root) / d / "pyvenv.cfg").exists())
        for name in sorted(names):
            if name.endswith(suffixes) and not name.startswith("."):
                yield Path(root) / name


def _flow_distributions(registry: PluginRegistry) -> Iterator[tuple[str, str, Path, str]]:
    """flow-core and each loaded plugin: (name, version, package folder, entry_points.txt)."""
    yield CORE_PLUGIN_NAME, registry.versions[CORE_PLUGIN_NAME], Path(__file__).parents[1], ""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in registry.versions or ep.name == CORE_PLUGIN_NAME:
            continue  # not loaded here (disabled, or failed to import): not needed there either
        spec = importlib.util.find_spec(ep.module.split(".")[0])
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"plugin {ep.name} is not a package Flow can put in a code package")
        entry_points = (ep.dist.read_text("entry_points.txt") if ep.dist else None) or \
            f"[{ENTRY_POINT_GROUP}]\n{ep.name} = {ep.value}\n"
        yield ep.name, registry.versions[ep.name], Path(list(spec.submodule_search_locations)[0]), entry_points


def flow_requirements(backends: Backends, used: Iterable[str] = ()) -> tuple[str, ...]:
    """What flow-core, the plugins of the configured datastore and metadata backends and the
    distributions named in ``used`` need from outside Flow, as they declare it: what a task's
    image (or its ``@pypi`` environment) must provide. The other plugins travel along in a
    code package but are not imported unless a flow selects them."""
    needed = {CORE_PLUGIN_NAME, *used,
              *(_provider(backends.registry, kind, backends.settings) for kind in ("datastore", "metadata"))}
    return tuple(sorted({r for distribution in needed for r in _third_party_requirements(distribution)}))


def _provider(registry: PluginRegistry, kind: str, settings: Settings) -> str:
    """The distribution that provides the configured ``kind`` backend."""
    entry = registry.backends(kind).get(settings.backend_name(kind))
    return entry.plugin if entry else CORE_PLUGIN_NAME


def _third_party_requirements(distribution: str) -> list[str]:
    """What ``distribution`` needs from outside Flow, without conditional ones (extras,
    markers): the image is a plain Python, and Flow's own packages travel in the package."""
    try:
        declared = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [r.replace(" ", "") for r in declared if ";" not in r and not r.lower().startswith("flow-")]


def _deterministic_tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(files):
                info = tarfile.TarInfo(name)
                info.size = len(files[name])
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()
