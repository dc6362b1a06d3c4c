"""Command lines from keyword arguments, and the subprocess that runs one.

The Runner API drives the real ``flow`` command line in a subprocess, as Metaflow's does, so
a run started from Python is exactly the run ``flow run`` would start. No reflection over the
click commands: the mapping is a small fixed table.

- top-level options (``Runner(..., metadata="local")``): ``metadata``, ``datastore``,
  ``branch`` → ``--metadata local``; ``quiet``, ``verbose``, ``debug``, ``production`` → flags
  when true; ``config={"name": "file.json"}`` → ``--config name file.json``,
  ``config_value={"name": {...}}`` → ``--config-value name '{...}'``.
- run options (``.run(...)``/``.resume(...)``): ``tags=["a", "b"]`` → ``--tag a --tag b``,
  ``max_workers=4`` → ``--max-workers 4``, ``max_num_splits``, ``compute``;
  ``decospecs=["retry"]`` (Metaflow's name; ``with_`` too) → ``--with retry``;
  ``user_namespace="user:alice"`` (Metaflow's name for ``run --namespace``) → ``--namespace=user:alice``,
  ``user_namespace=""`` → ``--namespace=`` (the global namespace inside the steps); for ``resume``,
  ``origin_run_id`` → ``--origin-run-id`` and ``step_to_rerun`` → the STEP argument.
- anything else given to ``run`` is a flow parameter: ``alpha=5`` → ``--alpha 5``, a list or
  dict as JSON, ``True``/``False`` as text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any, Iterable, Mapping

STREAMS = ("stdout", "stderr")

_VALUE_OPTIONS = {"metadata", "datastore", "environment", "branch", "max_workers", "max_num_splits", "compute",
                  "origin_run_id"}
_FLAG_OPTIONS = {"quiet", "verbose", "debug", "production"}
_PAIR_OPTIONS = {"config", "config_value"}
TOP_LEVEL = {"metadata", "datastore", "environment", "branch", "quiet", "verbose", "debug", "production", "config",
             "config_value", "decospecs", "with_"}
RUN_OPTIONS = {"tags", "max_workers", "max_num_splits", "compute", "decospecs", "with_", "branch", "production",
               "config", "config_value", "user_namespace"}
RESUME_OPTIONS = RUN_OPTIONS | {"origin_run_id", "step_to_rerun"}


def _flag(name: str) -> str:
    return "--" + name.rstrip("_").replace("_", "-")


def _many(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) or not isinstance(value, Iterable) else list(value)


def as_text(value: Any) -> str:
    """A parameter's value as the command line takes it: JSON for lists and dicts."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def options(kwargs: Mapping[str, Any], allowed: set[str], what: str, parameters: bool = False) -> list[str]:
    """The command-line words for ``kwargs``; a keyword that is neither an option in ``allowed``
    nor (when ``parameters``) a flow parameter is a TypeError, as for a Python call."""
    words: list[str] = []
    for key, value in kwargs.items():
        if value is None or (key in _FLAG_OPTIONS and value is False):
            continue
        if key not in allowed:
            if not parameters:
                raise TypeError(f"{what} got an unexpected keyword argument '{key}' "
                                f"(it takes {', '.join(sorted(allowed))})")
            words += [f"--{key}", as_text(value)]
        elif key in _FLAG_OPTIONS:
            words.append(_flag(key))
        elif key in _VALUE_OPTIONS:
            words += [_flag(key), str(value)]
        elif key in _PAIR_OPTIONS:
            pairs = value.items() if isinstance(value, Mapping) else value
            for name, given in pairs:
                words += [_flag(key), str(name), given if isinstance(given, str) else json.dumps(given)]
        elif key == "tags":
            for tag in _many(value):
                words += ["--tag", str(tag)]
        elif key in ("decospecs", "with_"):
            for spec in _many(value):
                words += ["--with", str(spec)]
        elif key == "user_namespace":
            words.append(f"--namespace={value}")  # one word, so that the empty (global) one survives
        elif key == "step_to_rerun":
            words.insert(0, str(value))  # resume's STEP argument, before its options
    return words


def flow_command(top_level: list[str], verb: str, flow_file: str, rest: list[str]) -> list[str]:
    """``python -m flow_core [top-level] VERB FILE [options]``: works for any flow file, with or
    without its ``__main__`` block."""
    return [sys.executable, "-m", "flow_core", *top_level, verb, flow_file, *rest]


def environment(env: Mapping[str, str] | None, profile: str | None) -> dict[str, str]:
    """This process's environment (so the datastore settings carry over), then ``env``."""
    merged = {**os.environ, **(env or {})}
    if profile:
        merged["METAFLOW_PROFILE"] = profile
    merged["PYTHONUNBUFFERED"] = "1"  # lines arrive as printed, for stream_log
    return merged


class CommandProcess:
    """One subprocess with its output kept in memory, line by line, and optionally echoed."""

    def __init__(self, command: list[str], env: Mapping[str, str], cwd: str | None, show_output: bool):
        self.command = command
        self.started = time.monotonic()
        self.lines: dict[str, list[str]] = {name: [] for name in STREAMS}
        self.process = subprocess.Popen(command, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        encoding="utf-8", errors="replace")
        self._readers = [threading.Thread(target=self._read, args=(name, show_output), daemon=True)
                         for name in STREAMS]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, show_output: bool) -> None:
        echo = getattr(sys, name)
        for line in getattr(self.process, name):
            self.lines[name].append(line)
            if show_output:
                echo.write(line)
                echo.flush()

    @property
    def returncode(self) -> int | None:
        """None until the process has ended and all its output is read."""
        code = self.process.poll()
        if code is None or any(reader.is_alive() for reader in self._readers):
            return None
        return code

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for reader in self._readers:
            reader.join()
        return self.process.returncode

    def text(self, stream: str) -> str:
        if stream not in STREAMS:
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        return "".join(self.lines[stream])

    def failure(self) -> str:
        """What went wrong, for an exception: the command and what it printed."""
        message = f"Error executing: '{' '.join(self.command)}'"
        for stream in STREAMS:
            if self.text(stream).strip():
                message += f"\n\n{stream.capitalize()}:\n{self.text(stream).rstrip()}"
        return message
