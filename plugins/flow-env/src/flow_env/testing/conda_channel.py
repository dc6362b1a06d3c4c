"""A conda channel on disk, made from scratch, so ``@conda`` can be tested without reaching
conda-forge: small ``noarch: generic`` packages, indexed by rattler's own indexer.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path


def tool_script(name: str, version: str) -> str:
    """A command that prints its name and version: what a test checks a step can run."""
    return f"#!/bin/sh\necho {name} {version}\n"


def noarch_package(folder: Path, name: str, version: str, files: dict[str, str],
                   depends: tuple[str, ...] = ()) -> Path:
    """Write ``<name>-<version>-0.tar.bz2`` into ``folder``: ``files`` (path → text, all
    executable) and the ``info/`` metadata an installer reads."""
    index = {"name": name, "version": version, "build": "0", "build_number": 0, "noarch": "generic",
             "subdir": "noarch", "depends": list(depends), "license": "Apache-2.0", "timestamp": 1700000000000}
    paths = {"paths_version": 1, "paths": [
        {"_path": path, "path_type": "hardlink", "sha256": hashlib.sha256(text.encode()).hexdigest(),
         "size_in_bytes": len(text.encode())} for path, text in sorted(files.items())]}
    members = {"info/index.json": (json.dumps(index, indent=2), 0o644),
               "info/paths.json": (json.dumps(paths, indent=2), 0o644),
               "info/files": ("".join(f"{path}\n" for path in sorted(files)), 0o644),
               **{path: (text, 0o755) for path, text in files.items()}}
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"{name}-{version}-0.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        for path, (text, mode) in members.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, 1700000000
            tar.addfile(info, io.BytesIO(data))
    return archive


def make_channel(root: Path, tools: dict[str, tuple[str, ...]]) -> Path:
    """A channel at ``root`` holding, for each tool name, one package per version (each with
    ``bin/<tool>`` printing ``<tool> <version>``), indexed; returns ``root``."""
    for name, versions in tools.items():
        for version in versions:
            noarch_package(root / "noarch", name, version, {f"bin/{name}": tool_script(name, version)})
    (root / "linux-64").mkdir(parents=True, exist_ok=True)
    # In a child process: py-rattler may crash the interpreter that used it as it exits.
    subprocess.run([sys.executable, "-m", "flow_env.rattler_process", "index", str(root)], check=True)
    return root
