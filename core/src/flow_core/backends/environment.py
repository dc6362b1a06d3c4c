"""The environment-backend interface: which Python, with which packages, each step runs in.

The ``local`` environment runs every task with the runtime's own interpreter. A plugin's
environment (``--environment=pypi``, from flow-env) resolves each step's packages before any
task starts and hands the runtime an `Interpreter` per step: a Python with those packages,
built on this machine for local tasks, and a command that builds it from the datastore for
tasks on other machines.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

import attrs

if TYPE_CHECKING:
    from flow_core.backends.selection import Backends
    from flow_core.plugin.settings import Settings


@attrs.frozen
class Interpreter:
    """A Python other than the runtime's own that a step's tasks run with.

    Flow makes its own packages (flow-core and the loaded plugins) importable in it; the
    environment provides everything else, Flow's third-party requirements included (see
    `EnvironmentRequest.flow_requirements`).
    """

    #: What it is, for the console and the task's metadata (``pypi:3f2a9c…``).
    name: str
    #: Its executable on this machine, already built; None when only remote steps use it.
    python: str | None = None
    #: A command that builds it on a fresh machine from the datastore, run in the task's
    #: container after the code package is unpacked (``lib/`` on its PYTHONPATH)...
    remote_setup: tuple[str, ...] = ()
    #: ...after which this is its executable there.
    remote_python: str | None = None


@attrs.frozen
class StepRequest:
    """One step, as an environment needs to see it."""

    name: str
    #: The step's decorators, by name (``pypi``, ``conda``, ``batch``, ...).
    decorators: Mapping[str, Any]
    #: Whether its tasks run on another machine (their environment is built there).
    remote: bool


@attrs.frozen
class EnvironmentRequest:
    """Everything an environment needs to prepare a run's steps, before any task starts."""

    flow_cls: type
    flow_name: str
    steps: tuple[StepRequest, ...]
    #: The flow's decorators, by name (``pypi_base``, ...).
    flow_decorators: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    #: The run this resumes: its environments are reused exactly as they were resolved.
    origin_run_id: str | None = None
    #: What Flow itself needs inside every environment (``attrs>=23.1``, ...): the third-party
    #: requirements of flow-core and of the plugins the run's tasks use, as they declare them.
    flow_requirements: tuple[str, ...] = ()
    #: Tells the user what is happening: one line per environment resolved or built.
    report: Callable[[str], None] = print


class EnvironmentBackend(ABC):
    """Decides the interpreter of each step's tasks: the runtime's own, or one it builds.

    ``prepare`` runs once per run (and once per deployment), before any task starts: it is
    where a plugin resolves and builds environments, and where a mistake (a package that
    does not exist) is reported, naming the step. ``record`` then ties what was prepared to
    the run, so that ``resume`` reuses it::

        class Pinned(EnvironmentBackend):
            name = "pinned"

            @classmethod
            def from_settings(cls, settings, backends):
                return cls()

            def prepare(self, request):
                return {step.name: Interpreter("pinned", python="/opt/py311/bin/python")
                        for step in request.steps}
    """

    #: The name ``--environment`` and ``METAFLOW_DEFAULT_ENVIRONMENT`` select it by.
    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: "Settings", backends: "Backends") -> "EnvironmentBackend":
        """Build the environment from configuration; ``backends`` holds the command's storage."""

    @abstractmethod
    def prepare(self, request: EnvironmentRequest) -> Mapping[str, Interpreter]:
        """Each step's interpreter (a step left out runs with the runtime's own)."""

    def record(self, flow_name: str, run_id: str) -> None:
        """The run ``prepare`` was for now has an id: remember what it resolved for it."""


class LocalEnvironment(EnvironmentBackend):
    """Every task runs with the runtime's own interpreter and whatever it has installed."""

    name = "local"

    @classmethod
    def from_settings(cls, settings: "Settings", backends: "Backends") -> "LocalEnvironment":
        return cls()

    def prepare(self, request: EnvironmentRequest) -> Mapping[str, Interpreter]:
        return {}
