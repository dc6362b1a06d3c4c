"""npm's ``asl-validator``, installed on first use into a cache folder, run on a definition.

::

    validator = AslValidator(cache_dir)      # e.g. request.config.cache.mkdir("asl-validator")
    validator.check(definition)              # raises AslInvalid with the validator's findings

Node and npm must be on PATH: without them `AslValidator` raises `RuntimeError` (never skips),
so a machine that cannot validate fails loudly.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

#: The asl-validator release the tests pin.
ASL_VALIDATOR_VERSION = "4.0.0"


class AslInvalid(AssertionError):
    """asl-validator rejected a definition; the message holds its findings."""


class AslValidator:
    def __init__(self, cache_dir: str | Path, version: str = ASL_VALIDATOR_VERSION):
        for tool in ("node", "npm"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not on PATH: install Node.js (with npm) to validate state machines")
        self.version = version
        self.prefix = Path(cache_dir) / f"asl-validator-{version}"

    def install(self) -> Path:
        """Install the pinned asl-validator under the cache folder, once; returns its command."""
        binary = self.prefix / "node_modules" / ".bin" / "asl-validator"
        if binary.exists():
            return binary
        self.prefix.mkdir(parents=True, exist_ok=True)
        # Test sessions running side by side (pytest-xdist's workers) install it once between them.
        with open(self.prefix / "install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not binary.exists():
                result = subprocess.run(
                    ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(self.prefix),
                     f"asl-validator@{self.version}"],
                    capture_output=True, text=True, timeout=600,
                )
                if result.returncode != 0 or not binary.exists():
                    raise RuntimeError(
                        f"npm could not install asl-validator@{self.version}:\n{result.stdout}{result.stderr}")
        return binary

    def findings(self, definition: dict[str, Any]) -> list[str]:
        """What asl-validator says is wrong with ``definition`` (empty when it is valid)."""
        binary = self.install()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "definition.json"
            path.write_text(json.dumps(definition))
            result = subprocess.run([str(binary), "--json-path", str(path)], capture_output=True, text=True,
                                    timeout=120)
        if result.returncode == 0:
            return []
        output = (result.stdout + result.stderr).strip()
        return [line for line in output.splitlines() if line.strip()] or [f"exit status {result.returncode}"]

    def check(self, definition: dict[str, Any]) -> None:
        problems = self.findings(definition)
        if problems:
            raise AslInvalid("asl-validator rejects the definition:\n" + "\n".join(problems))


def validate_asl(definition: dict[str, Any], cache_dir: str | Path) -> None:
    """Raise `AslInvalid` unless asl-validator accepts ``definition``."""
    AslValidator(cache_dir).check(definition)
