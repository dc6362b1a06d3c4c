"""The container image Batch test jobs run in, built here with no registry.

A minimal Debian (``debootstrap``, cached between test sessions) with its own Python, plus
the task's third-party libraries from a wheelhouse built on the host by uv for the image's
Python, imported into the engine as one layer. It holds no Flow code: jobs fetch that from
the datastore. Test AWS credentials are baked in, as a real job gets them from its role.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from .docker_engine import DockerEngine

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: Debian bookworm's Python, for which the wheelhouse is resolved.
IMAGE_PYTHON = "3.11"
SITE_PACKAGES = f"usr/local/lib/python{IMAGE_PYTHON}/dist-packages"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "flow-tests"


def pinned(requirements: Iterable[str]) -> list[str]:
    """Each requirement at the version installed here, so jobs run what the host tested."""
    result = []
    for requirement in requirements:
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
        try:
            result.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            result.append(requirement)
    return result


class TaskImage:
    def __init__(self, engine: DockerEngine, requirements: Iterable[str], environment: Mapping[str, str],
                 tag: str = "flow-batch-task:test"):
        self.engine = engine
        self.requirements = pinned(requirements)
        self.environment = dict(environment)
        self.tag = tag

    def build(self) -> str:
        base = self.debian_rootfs()
        with tempfile.TemporaryDirectory(prefix="flow-image-") as scratch:
            site = Path(scratch) / "site"
            uv = shutil.which("uv")
            if uv is None:
                raise RuntimeError("uv is not on PATH; scripts/test installs it")
            subprocess.run(
                [uv, "pip", "install", "--quiet", "--target", str(site), "--python-version", IMAGE_PYTHON,
                 "--python-platform", f"{platform.machine()}-manylinux_2_28", *self.requirements],
                check=True,
            )
            image_tar = Path(scratch) / "image.tar"
            with tarfile.open(image_tar, "w") as out, tarfile.open(base) as rootfs:
                for member in rootfs:
                    out.addfile(member, rootfs.extractfile(member) if member.isfile() else None)
                for entry in sorted(site.iterdir()):  # the folder itself is Debian's already
                    out.add(entry, arcname=f"{SITE_PACKAGES}/{entry.name}", filter=_root_owned)
            changes = [arg for k, v in sorted(self.environment.items()) for arg in ("--change", f"ENV {k}={v}")]
            self.engine.docker("import", *changes, str(image_tar), self.tag)
        return self.tag

    def debian_rootfs(self) -> Path:
        """A tar of minimal Debian with python3, made once and kept in the cache folder."""
        target = cache_dir() / f"debian-{DEBIAN_SUITE}-python3-{platform.machine()}.tar"
        if target.exists():
            return target
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed; scripts/test installs Debian's debootstrap")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Test sessions running side by side (pytest-xdist's workers) make it once between them.
        with open(target.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                self._debootstrap(target)
        return target

    def _debootstrap(self, target: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="flow-rootfs-", dir="/tmp") as scratch:
            root = Path(scratch) / "root"
            result = subprocess.run(
                ["debootstrap", "--variant=minbase", "--include=python3", DEBIAN_SUITE, str(root), DEBIAN_MIRROR],
                capture_output=True, text=True,
            )
            if result.returncode != 0:
                raise RuntimeError(f"debootstrap failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
            partial = target.with_suffix(".partial")
            with tarfile.open(partial, "w") as tar:
                for entry in sorted(os.listdir(root)):
                    tar.add(root / entry, arcname=entry)
            partial.rename(target)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info
