"""Resolving ``@pypi`` packages to a `Lock` with ``uv pip compile``.

uv writes a PEP 751 ``pylock.toml``: every package pinned, with the URL and SHA-256 of
the one wheel that fits the target platform. Only wheels: an environment built on another
machine (a Batch container without index access) cannot build an sdist.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from flow_core.plugin_api import ConfigError

from .lock import Lock, LockedPackage
from .spec import PYPI, EnvironmentSpec, describe_steps
from .uv_binary import uv_command


def native_platform() -> str:
    """This machine, as ``uv --python-platform`` names it. On Linux the manylinux_2_28 baseline,
    so that the same lock fits this machine and a Debian or Amazon Linux container."""
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    if sys.platform.startswith("linux"):
        return f"{machine}-manylinux_2_28"
    if sys.platform == "darwin":
        return f"{machine}-apple-darwin"
    return f"{machine}-pc-windows-msvc"


def remote_platform() -> str:
    """Where remote tasks run: Linux, on this machine's architecture when it is a Linux one."""
    native = native_platform()
    return native if native.endswith("manylinux_2_28") else "x86_64-manylinux_2_28"


def resolve_pypi(spec: EnvironmentSpec, flow_requirements: tuple[str, ...], python: str, python_version: str,
                 target_platform: str, steps: list[str]) -> Lock:
    """Lock ``spec`` for ``python`` on ``target_platform``; a ConfigError names the steps and
    what to change when it cannot be had."""
    requested = tuple(spec.requirements())
    with tempfile.TemporaryDirectory(prefix="flow-env-") as folder:
        source = Path(folder) / "requirements.in"
        source.write_text("\n".join([*requested, *flow_requirements]) + "\n")
        output = Path(folder) / "pylock.toml"
        result = subprocess.run(
            [*uv_command(), "pip", "compile", str(source), "--format", "pylock.toml", "-o", str(output),
             "--python", python, "--python-platform", target_platform, "--only-binary", ":all:",
             "--no-header", "--quiet", "--no-progress"],
            capture_output=True, text=True, env=_uv_environment())
        if result.returncode != 0:
            cause = _cause(result.stderr)
            ours = [r for r in flow_requirements if re.split(r"[=<>!~]", r)[0].lower() in cause.lower()]
            hint = f" (Flow itself needs {', '.join(ours)} in every environment)" if ours else ""
            raise ConfigError(f"{describe_steps(steps)}: {spec.describe()} cannot be installed: {cause}{hint}; "
                              "change the package's name or version in the decorator")
        locked = tomllib.loads(output.read_text())
    packages = []
    for entry in locked.get("packages", []):
        wheels = entry.get("wheels") or []
        if not wheels:
            raise ConfigError(f"{describe_steps(steps)}: {entry['name']} {entry.get('version', '')} has no wheel for "
                              f"{target_platform}, and @pypi installs wheels only; pick a version that has one")
        wheel = wheels[0]
        filename = wheel.get("name") or wheel["url"].rsplit("/", 1)[-1]
        packages.append(LockedPackage(entry["name"], str(entry.get("version", "")), filename, wheel["url"],
                                      wheel["hashes"]["sha256"], wheel.get("size")))
    return Lock(PYPI, python_version, target_platform, requested, tuple(flow_requirements),
                tuple(sorted(packages, key=lambda p: p.name)))


def _uv_environment() -> dict[str, str]:
    import os

    # Never download a Python: a missing one is the user's to install, and says so.
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"}


def _cause(stderr: str) -> str:
    """uv's reason, in one line: the text after ``cause:`` (or its last error line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("cause:") or line.startswith("╰─▶"):
            reason = " ".join([line.split(":", 1)[1] if line.startswith("cause:") else line[3:]]
                              + [l for l in lines[index + 1:] if not l.startswith(("hint:", "help:"))])
            return reason.strip().rstrip(".")
    return (lines[-1].removeprefix("error:").strip() if lines else "uv failed without saying why").rstrip(".")
