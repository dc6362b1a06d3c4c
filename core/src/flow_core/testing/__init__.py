"""Flow's test kit, loaded as a pytest plugin wherever flow-core is installed.

Backend authors subclass the conformance suites::

    from flow_core.testing import StorageConformance

    class TestMemoryStorage(StorageConformance):
        @pytest.fixture
        def storage(self):
            return MemoryStorage()

and get, as fixtures: ``flow_env`` (an isolated local root, profile folder and user for
the test), ``plugin_registry`` (a freshly loaded plugin manager), ``write_flow`` (writes a
flow file) and ``flow_cli`` (runs the ``flow`` command in a subprocess with that environment);
``chromium`` and ``offline_page`` for tests in a real browser with no network (`browser`).

The suites: `StorageConformance` (a ``storage`` fixture), `MetadataConformance` (a
``metadata_factory`` fixture) and `ComputeConformance` (a ``compute_name`` fixture: it runs
real tasks of a small flow on that compute backend, prepared as the runtime prepares them).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Mapping

import pytest

from flow_core.testing.browser import chromium, offline_page  # noqa: F401  (fixtures of the kit)
from flow_core.testing.compute import ComputeConformance
from flow_core.testing.metadata import MetadataConformance
from flow_core.testing.storage import StorageConformance

__all__ = ["ComputeConformance", "MetadataConformance", "StorageConformance", "FlowEnv", "BREAKABLE_FLOW",
           "assert_blob_intact", "last_error", "run_id_of"]

#: A flow whose middle step fails while BREAK_MIDDLE is set: run it broken, then resume it
#: (``write_flow("mends.py", BREAKABLE_FLOW)``). Its end holds ``total`` == 499500.
BREAKABLE_FLOW = """
import os
from flow_core import FlowSpec, step

class Mends(FlowSpec):
    @step
    def start(self):
        self.numbers = list(range(1000))
        self.next(self.middle)

    @step
    def middle(self):
        if os.environ.get("BREAK_MIDDLE"):
            raise RuntimeError("broken on purpose")
        self.total = sum(self.numbers)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def assert_blob_intact(key: str, blob: bytes) -> None:
    """Check that a stored datastore object (``data/<2 hex>/<digest>``) is whole: its content
    hashes to its name. A manifest of chunks is checked through its chunks' own objects."""
    from flow_core.datastore.cas import FLAG_MANIFEST, HEADER, ContentAddressedStore, DamagedObject

    digest = key.rsplit("/", 1)[-1]
    if HEADER.unpack_from(blob)[2] & FLAG_MANIFEST:
        return
    try:
        ContentAddressedStore(None)._open(digest, blob)  # type: ignore[arg-type]  # reading checks the hash
    except DamagedObject as exc:
        raise AssertionError(str(exc)) from None


def run_id_of(output: str) -> str:
    """The run id a ``run`` or ``resume`` announced in its output."""
    match = re.search(r"(?:Workflow starting|Resuming \S+) \(run-id (\d+)\)", output)
    assert match, f"no run id in the output:\n{output}"
    return match.group(1)


def last_error(result: subprocess.CompletedProcess) -> str:
    """The one line a failed command ends with on standard error."""
    lines = result.stderr.strip().splitlines()
    assert lines, "the command printed nothing on standard error"
    return lines[-1]


class FlowEnv(dict):
    """Environment variables that point Flow at a private local root; a dict for ``env=``."""

    @property
    def root(self) -> Path:
        return Path(self["METAFLOW_DATASTORE_SYSROOT_LOCAL"])


@pytest.fixture
def flow_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FlowEnv:
    """Point this test's Flow (in-process and in subprocesses) at fresh folders."""
    from flow_core.plugin.registry import reset_registry

    env = FlowEnv(
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(tmp_path / "flow-root"),
        METAFLOW_HOME=str(tmp_path / "metaflowconfig"),
        METAFLOW_USER="tester",
    )
    for name in [k for k in os.environ if k.startswith("METAFLOW_")]:
        monkeypatch.delenv(name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_registry()
    yield env
    reset_registry()


@pytest.fixture
def plugin_registry(flow_env: FlowEnv):
    """A plugin registry loaded fresh for this test."""
    from flow_core.plugin.registry import load_plugins

    return load_plugins()


@pytest.fixture
def write_flow(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write_flow("name.py", source)`` writes a flow file (dedented) and returns its path."""

    def write(name: str, source: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source).lstrip())
        return path

    return write


@pytest.fixture
def flow_cli(flow_env: FlowEnv) -> Callable[..., subprocess.CompletedProcess]:
    """``flow_cli("run", "hello.py", env={...})``: the real command line, in a subprocess."""

    def run(*args: str, env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **flow_env, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "flow_core", *args],
            env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
        )

    return run
