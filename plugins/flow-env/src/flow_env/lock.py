"""A lock: one environment resolved to exact files, named by the digest of its contents.

It is what a run records for each step and what every machine builds from, so a resumed
run, a Batch task and a laptop all get the same bytes. Stored content-addressed in the
datastore (``environments/locks/<digest>.json``) and in the local cache.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import attrs

LOCKS_PREFIX = "environments/locks"
WHEELS_PREFIX = "environments/packages"


@attrs.frozen
class LockedPackage:
    """One file the environment installs: a wheel, or a conda package with its record."""

    name: str
    version: str
    filename: str
    url: str
    sha256: str
    size: int | None = None
    #: For a conda package: its repodata record, which the installer needs.
    record: Mapping[str, Any] | None = None

    @property
    def key(self) -> str:
        """Where the datastore keeps the file, by its content."""
        return f"{WHEELS_PREFIX}/{self.sha256}/{self.filename}"


@attrs.frozen
class Lock:
    kind: str
    #: The exact Python version it was resolved for.
    python: str
    #: The platform its files are for (``x86_64-manylinux_2_28``, or a conda subdir).
    platform: str
    #: What the step asked for, and what Flow itself needs in it.
    requested: tuple[str, ...]
    flow_requirements: tuple[str, ...]
    packages: tuple[LockedPackage, ...]
    #: Conda channels it was solved against.
    channels: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        return json.dumps(attrs.asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()

    @property
    def key(self) -> str:
        return lock_key(self.digest)

    @property
    def name(self) -> str:
        """How the console and the task's metadata name it."""
        return f"{self.kind}:{self.digest[:16]}"

    @classmethod
    def from_json(cls, data: bytes) -> "Lock":
        raw = json.loads(data)
        packages = tuple(LockedPackage(**p) for p in raw.pop("packages"))
        return cls(packages=packages, **{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def lock_key(digest: str) -> str:
    return f"{LOCKS_PREFIX}/{digest}.json"
