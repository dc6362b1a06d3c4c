"""The uv binary that the ``uv`` package from PyPI ships."""

from __future__ import annotations

import functools
import shutil

from flow_core.plugin_api import ConfigError


@functools.lru_cache(maxsize=1)
def uv_path() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise ConfigError("flow-env needs uv, which it could not find; reinstall flow-env (pip install flow-env)")


def uv_command() -> list[str]:
    return [uv_path()]
