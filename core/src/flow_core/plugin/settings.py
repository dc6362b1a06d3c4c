"""Configuration: where every setting's value comes from.

Resolution order, first hit wins: a command-line option, the process environment, the profile
file (``~/.metaflowconfig/config.json``, or ``config_$METAFLOW_PROFILE.json``; the folder moves
with ``METAFLOW_HOME``), the declared default. Names are Metaflow's, so an existing
deployment's environment and profile files carry over unchanged.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Iterable, Mapping

import attrs

from flow_core.errors import ConfigError
from flow_core.model.names import text_problem


@attrs.frozen
class Setting:
    """A configuration setting a component declares, so `flow configure show` can list it."""

    name: str
    default: str | None = None
    help: str = ""


@attrs.frozen
class ResolvedSetting:
    name: str
    value: str | None
    source: str  # "option", "environment", "profile <path>" or "default"
    help: str = ""


LIVE_LOGS_MIN_INTERVAL = "METAFLOW_LIVE_LOGS_MIN_INTERVAL"
LIVE_LOGS_MAX_INTERVAL = "METAFLOW_LIVE_LOGS_MAX_INTERVAL"

CORE_SETTINGS = (
    Setting("METAFLOW_DEFAULT_DATASTORE", "local", "datastore backend for new runs"),
    Setting("METAFLOW_DEFAULT_METADATA", "local", "metadata backend for new runs and the Client API"),
    Setting("METAFLOW_DEFAULT_COMPUTE", "local", "compute backend `flow run` sends steps to"),
    Setting("METAFLOW_DEFAULT_SCHEDULER", "local", "scheduler `flow deploy` deploys to"),
    Setting("METAFLOW_DEFAULT_ENVIRONMENT", "local",
            "where steps get their Python packages: 'local' (this Python's), 'pypi' or 'conda' (flow-env)"),
    Setting("METAFLOW_DATASTORE_SYSROOT_LOCAL", None,
            "root of the local datastore and metadata (default: nearest ./.flow)"),
    Setting("METAFLOW_USER", None, "your name in namespaces and the user: tag (default: $USER)"),
    Setting("METAFLOW_DEFAULT_PACKAGE_SUFFIXES", ".py",
            "comma list: the files of the flow's folder a code package for remote tasks takes"),
    Setting(LIVE_LOGS_MIN_INTERVAL, "1",
            "seconds between saves of a running task's output to the datastore, at first (0: no live logs)"),
    Setting(LIVE_LOGS_MAX_INTERVAL, "30",
            "seconds that interval grows by as a task runs on (Metaflow's sigmoid, reached after ~20 minutes)"),
    Setting("METAFLOW_DISABLE_PLUGINS", None, "comma list of plugin distributions not to load"),
    Setting("METAFLOW_LOAD_PLUGINS", None, "comma list: load only these plugin distributions"),
)

LOCAL_ROOT_NAME = ".flow"


#: What `profile_path` reads: while these stay the same, so does the profile.
_PROFILE_VARIABLES = ("METAFLOW_HOME", "METAFLOW_PROFILE", "HOME")


def profile_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    home = Path(environ.get("METAFLOW_HOME") or Path.home() / ".metaflowconfig").expanduser()
    profile = environ.get("METAFLOW_PROFILE")
    return home / (f"config_{profile}.json" if profile else "config.json")


def _read_profile(path: Path) -> dict[str, str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the profile file {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # JSON is UTF-8, whatever the locale says
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the profile file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}); save it as UTF-8 or remove it") from None
    except ValueError as exc:
        raise ConfigError(f"the profile file {path} is not valid JSON ({exc}); fix or remove it") from None
    except RecursionError:
        raise ConfigError(f"the profile file {path} is nested too deeply to be read; fix or remove it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the profile file {path} must hold a JSON object of METAFLOW_* settings")
    profile = {str(k): str(v) for k, v in data.items() if v is not None}
    for key, value in profile.items():
        problem = text_problem(key) or text_problem(value)
        if problem:
            raise ConfigError(f"in the profile file {path}, {problem}; fix or remove it")
    return profile


class Settings:
    """The effective configuration of one command.

    Any name can be looked up, declared or not; declarations add defaults and help text.
    """

    def __init__(
        self,
        declared: Iterable[Setting] = CORE_SETTINGS,
        overrides: Mapping[str, str | None] | None = None,
        environ: Mapping[str, str] | None = None,
    ):
        self._environ = dict(os.environ if environ is None else environ)
        self._overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self._profile_path = profile_path(self._environ)
        self._profile = _read_profile(self._profile_path)
        self._declared: dict[str, Setting] = {}
        self.declare(declared)

    def declare(self, settings: Iterable[Setting]) -> None:
        for setting in settings:
            self._declared.setdefault(setting.name, setting)

    def with_environ(self, environ: Mapping[str, str]) -> "Settings":
        """The same settings seen through another environment (a forked task's), without
        reading the profile file again unless the environment moves it."""
        copy = object.__new__(Settings)
        copy._environ = dict(environ)
        copy._overrides = dict(self._overrides)
        if all(copy._environ.get(name) == self._environ.get(name) for name in _PROFILE_VARIABLES):
            copy._profile_path, copy._profile = self._profile_path, self._profile
        else:
            copy._profile_path = profile_path(copy._environ)
            copy._profile = self._profile if copy._profile_path == self._profile_path else _read_profile(copy._profile_path)
        copy._declared = dict(self._declared)
        return copy

    def resolve(self, name: str) -> ResolvedSetting:
        help_text = self._declared[name].help if name in self._declared else ""
        if name in self._overrides:
            return ResolvedSetting(name, self._overrides[name], "option", help_text)
        if self._environ.get(name, "") != "":
            return ResolvedSetting(name, self._environ[name], "environment", help_text)
        if name in self._profile:
            return ResolvedSetting(name, self._profile[name], f"profile {self._profile_path}", help_text)
        default = self._declared[name].default if name in self._declared else None
        return ResolvedSetting(name, default, "default", help_text)

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.resolve(name).value
        return default if value is None else value

    def require(self, name: str, why: str) -> str:
        value = self.get(name)
        if not value:
            raise ConfigError(f"{name} is not set; {why}")
        return value

    def all(self) -> list[ResolvedSetting]:
        """Every declared setting, plus any METAFLOW_* found in the environment or profile."""
        names = set(self._declared) | set(self._overrides) | set(self._profile)
        names |= {k for k in self._environ if k.startswith("METAFLOW_")}
        return [self.resolve(n) for n in sorted(names)]

    # -- settings every component needs -----------------------------------------------------

    @property
    def user(self) -> str:
        value = self.get("METAFLOW_USER") or self._environ.get("USER") or self._environ.get("LOGNAME")
        if not value:
            try:
                value = getpass.getuser()
            except Exception:  # no passwd entry, e.g. an anonymous container uid
                value = "unknown"
        if text_problem(value):  # it names namespaces and tags, which every backend stores as text
            raise ConfigError(f"your user name {value!r} is not valid UTF-8 text; set METAFLOW_USER to another name")
        return value

    @property
    def local_root(self) -> Path:
        """The local datastore and metadata root, absolute.

        Unset, it is the nearest ``.flow`` folder in the working directory or above it, so a
        notebook in a sub-folder sees the runs started from the project's top; with none, a
        new ``./.flow``.
        """
        value = self.get("METAFLOW_DATASTORE_SYSROOT_LOCAL")
        if value:
            return Path(value).expanduser().absolute()
        cwd = Path.cwd()
        for folder in (cwd, *cwd.parents):
            if (folder / LOCAL_ROOT_NAME).is_dir():
                return folder / LOCAL_ROOT_NAME
        return cwd / LOCAL_ROOT_NAME

    def backend_name(self, kind: str) -> str:
        return self.get(f"METAFLOW_DEFAULT_{kind.upper()}") or "local"

    def task_environment(self) -> dict[str, str]:
        """What a task needs in its environment to see this same configuration.

        Every non-default value is passed on (so remote tasks load the same backends), and
        the local root is pinned as an absolute path.
        """
        env = {r.name: r.value for r in self.all() if r.value is not None and r.source != "default"}
        for kind in ("datastore", "metadata"):
            env[f"METAFLOW_DEFAULT_{kind.upper()}"] = self.backend_name(kind)
        env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(self.local_root)
        env["METAFLOW_USER"] = self.user
        return env
