from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def site(tmp_path, monkeypatch, flow_env):
    """A folder on sys.path where tests install throwaway plugin distributions."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", "") and str(folder) in sys.modules[name].__file__:
            del sys.modules[name]


@pytest.fixture
def install_plugin(site):
    """``install_plugin("flow-x", source)``: a module plus a dist-info with a flow.plugins entry point."""

    def install(dist: str, module_source: str, version: str = "9.9.9") -> Path:
        module = dist.replace("-", "_")
        (site / f"{module}.py").write_text(textwrap.dedent(module_source))
        info = site / f"{module}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[flow.plugins]\n{dist} = {module}\n")
        return site

    return install


