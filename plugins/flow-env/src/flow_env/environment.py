"""``--environment=pypi`` and ``--environment=conda``: each step's packages, resolved once per
run before any task starts, built from a cache, the same on this machine and on Batch.

For every distinct `EnvironmentSpec` of the flow: reuse the resumed run's lock, else the
cached resolution of the same spec, else resolve it; then build it in the local cache for
steps that run here, and stage its files in the datastore for steps that run elsewhere.
The run records which lock each step used (``environments/runs/<flow>/<run>.json`` in the
datastore), which is how ``resume`` and ``environment show`` find them.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Mapping

from flow_core.plugin_api import (
    Backends,
    BlobNotFound,
    EnvironmentBackend,
    EnvironmentRequest,
    Interpreter,
    Settings,
)

from .cache import EnvironmentCache, cache_root
from .interpreters import find_python
from .lock import Lock, lock_key
from .pypi_resolver import native_platform, remote_platform, resolve_pypi
from .remote import remote_interpreter, stage
from .spec import CONDA, EnvironmentSpec, step_specs

DEFAULT_CONDA_CHANNELS = ("conda-forge",)


def conda_channels(settings: Settings) -> list[str]:
    """METAFLOW_CONDA_CHANNELS, comma-separated (names or URLs), else conda-forge."""
    configured = settings.get("METAFLOW_CONDA_CHANNELS") or ""
    return [c.strip() for c in configured.split(",") if c.strip()] or list(DEFAULT_CONDA_CHANNELS)

RUNS_PREFIX = "environments/runs"


def run_record_key(flow_name: str, run_id: str) -> str:
    return f"{RUNS_PREFIX}/{flow_name}/{run_id}.json"


class PackageEnvironment(EnvironmentBackend):
    """What ``pypi`` and ``conda`` share; they differ only in their name, as in Metaflow,
    where either honours both decorators."""

    def __init__(self, settings: Settings, backends: Backends):
        self.settings = settings
        self.backends = backends
        self.cache = EnvironmentCache(cache_root(settings))
        self._prepared: dict[str, dict[str, str]] = {}
        #: Each step's lock, as the last `prepare` resolved it.
        self.prepared_locks: dict[str, Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings, backends: Backends) -> "PackageEnvironment":
        return cls(settings, backends)

    def prepare(self, request: EnvironmentRequest) -> Mapping[str, Interpreter]:
        specs = step_specs(request)
        origin = self.run_record(request.flow_name, request.origin_run_id) if request.origin_run_id else {}
        remote_steps = {s.name for s in request.steps if s.remote}
        # Steps that share a spec (and where they run) share one environment.
        groups: dict[tuple[EnvironmentSpec, bool], list[str]] = {}
        for step in request.steps:
            spec = specs[step.name]
            if spec is not None:
                groups.setdefault((spec, step.name in remote_steps), []).append(step.name)
        interpreters: dict[str, Interpreter] = {}
        self._prepared, self.prepared_locks = {}, {}
        for (spec, remote), steps in groups.items():
            spec_key = self._spec_key(spec, request.flow_requirements, remote)
            lock, how = self._lock(spec, spec_key, origin, steps, request, remote)
            interpreter, built = self._interpreter(lock, spec, steps, remote)
            request.report(f"Environment {lock.name} for {', '.join(steps)}: {how}, {built}.")
            for step in steps:
                interpreters[step] = interpreter
                self._prepared[step] = {"lock": lock.digest, "spec": spec_key}
                self.prepared_locks[step] = lock
        return interpreters

    def record(self, flow_name: str, run_id: str) -> None:
        data = json.dumps(self._prepared, sort_keys=True).encode()
        self.backends.storage.put(run_record_key(flow_name, run_id), data)

    def run_record(self, flow_name: str, run_id: str | None) -> dict[str, dict[str, str]]:
        """Which lock each step of a run used: ``{step: {"lock": digest, "spec": key}}``."""
        if not run_id:
            return {}
        try:
            return json.loads(self.backends.storage.get(run_record_key(flow_name, run_id)))
        except BlobNotFound:
            return {}

    def cached_locks(self, request: EnvironmentRequest) -> dict[str, Lock | None]:
        """Each step's lock as this machine resolved it before, without resolving anything;
        None for a step not resolved yet. Steps with a disabled environment are left out."""
        specs = step_specs(request)
        return {step.name: self.cache.resolution(self._spec_key(spec, request.flow_requirements, step.remote))
                for step in request.steps if (spec := specs[step.name]) is not None}

    def _spec_key(self, spec: EnvironmentSpec, flow_requirements: tuple[str, ...], remote: bool) -> str:
        """Names a resolution: the same key resolves to the same lock until the cache is cleared."""
        platform = remote_platform() if remote else native_platform()
        channels = conda_channels(self.settings) if spec.kind == CONDA else []
        text = json.dumps([spec.kind, spec.python or find_python(None, "", spec.kind)[1], list(spec.packages),
                           list(flow_requirements), platform, channels])
        return hashlib.sha256(text.encode()).hexdigest()

    def stored_lock(self, digest: str) -> Lock:
        lock = self.cache.lock(digest)
        if lock is None:
            lock = Lock.from_json(self.backends.storage.get(lock_key(digest)))
            self.cache.store_lock(lock)
        return lock

    # -- one environment ----------------------------------------------------------------------

    def _lock(self, spec: EnvironmentSpec, spec_key: str, origin: dict[str, dict[str, str]], steps: list[str],
              request: EnvironmentRequest, remote: bool) -> tuple[Lock, str]:
        for step in steps:  # a resumed run gets exactly what its origin ran with
            recorded = origin.get(step)
            if recorded and recorded.get("spec") == spec_key:
                return self.stored_lock(recorded["lock"]), f"reused from run {request.origin_run_id}"
        cached = self.cache.resolution(spec_key)
        if cached is not None:
            return cached, "resolved before (cached)"
        started = time.monotonic()
        lock = self._resolve(spec, steps, request, remote)
        self.cache.remember_resolution(spec_key, lock)
        self.backends.storage.put(lock.key, lock.to_json(), overwrite=False)
        return lock, f"resolved {len(lock.packages)} packages in {time.monotonic() - started:.1f}s"

    def _resolve(self, spec: EnvironmentSpec, steps: list[str], request: EnvironmentRequest, remote: bool) -> Lock:
        python, version = find_python(spec.python, steps[0], spec.kind)
        if spec.kind == CONDA:
            from .conda import resolve_conda

            return resolve_conda(spec, request.flow_requirements, python, version, remote, steps, self.settings)
        platform = remote_platform() if remote else native_platform()
        return resolve_pypi(spec, request.flow_requirements, python, version, platform, steps)

    def _interpreter(self, lock: Lock, spec: EnvironmentSpec, steps: list[str],
                     remote: bool) -> tuple[Interpreter, str]:
        if remote:
            started = time.monotonic()
            uv_key = stage(lock, self.backends.storage)
            return remote_interpreter(lock, uv_key), f"in the datastore ({time.monotonic() - started:.1f}s)"
        if self.cache.is_built(lock):
            executable = self.cache.launcher(lock) if lock.kind == CONDA else self.cache.python(lock)
            return Interpreter(lock.name, python=str(executable)), "built before (cached)"
        started = time.monotonic()
        python, _version = find_python(lock.python, steps[0], spec.kind)
        if lock.kind == CONDA:
            from .conda import build_conda

            executable = build_conda(self.cache, lock, python)
        else:
            executable = self.cache.build_pypi(lock, python)
        return Interpreter(lock.name, python=str(executable)), f"built in {time.monotonic() - started:.1f}s"




class PypiEnvironment(PackageEnvironment):
    name = "pypi"


class CondaEnvironment(PackageEnvironment):
    name = "conda"
