"""The compute-backend interface and `TaskSpec`, the contract every compute honours.

Every task, on any compute, is the same command line: ``flow step FILE STEP --run-id R
--task-id T --input-paths P ...`` with the datastore and metadata settings in its
environment. A compute backend only decides *where* that command runs.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Protocol

import attrs

from flow_core.backends.environment import Interpreter
from flow_core.model.parallel import Gang

if TYPE_CHECKING:
    from flow_core.backends.selection import Backends
    from flow_core.plugin.settings import Settings


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


@attrs.frozen
class Resources:
    """What a task asks of the machine that runs it, gathered from its step's decorators
    (``@resources``, ``@timeout``, ``@batch``); each compute backend maps it onto its own
    terms. None means the step did not say."""

    cpu: float | None = None
    #: MiB.
    memory: int | None = None
    gpu: int | None = None
    #: MiB.
    disk: int | None = None
    #: MiB of /dev/shm.
    shared_memory: int | None = None
    #: The attempt's time limit, which remote compute enforces as well.
    timeout_seconds: float | None = None
    #: Options for one compute backend, by its name: ``@batch(image=…)`` fills ``options["batch"]``.
    options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, converter=_frozen_mapping)

    def with_defaults(self, **values: Any) -> "Resources":
        """These values where the resources say nothing yet (an earlier decorator wins)."""
        return attrs.evolve(self, **{k: v for k, v in values.items() if getattr(self, k) is None})

    def with_options(self, backend: str, options: Mapping[str, Any]) -> "Resources":
        return attrs.evolve(self, options={**self.options, backend: dict(options)})

    def options_for(self, backend: str) -> Mapping[str, Any]:
        return self.options.get(backend, {})


@attrs.frozen
class TaskSpec:
    """One task attempt to run."""

    flow_file: str
    flow_name: str
    run_id: str
    step_name: str
    task_id: str
    #: Parent tasks as ``run_id/step/task_id``; a join has several.
    input_paths: tuple[str, ...] = ()
    split_index: int | None = None
    retry_count: int = 0
    max_user_code_retries: int = 0
    #: Attempts beyond those for failures that were not the code's own (its process was
    #: killed): ``@catch`` takes one, which records the failure and lets the run go on.
    max_error_retries: int = 0
    #: Seconds the runtime waits before launching a retry.
    retry_delay: float = 0.0
    tags: tuple[str, ...] = ()
    #: ``run --with`` decorator specs, passed on so the task attaches them too.
    decospecs: tuple[str, ...] = ()
    #: Settings and variables the task's process needs (datastore, metadata, user, ...).
    environment: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    #: The compute backend that runs it (a ``@batch`` step overrides the run's default).
    compute: str = "local"
    #: Resource requests and backend options gathered from the step's decorators.
    resources: Resources = attrs.field(factory=Resources)
    #: Set for the tasks of a ``@parallel`` step.
    gang: Gang | None = None
    #: The Python the task runs with when it is not the runtime's own (``@pypi``, ``@conda``).
    interpreter: Interpreter | None = None

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step_name}/{self.task_id}"

    @property
    def label(self) -> str:
        """How the console names the task: ``run/step/task``."""
        return f"{self.run_id}/{self.step_name}/{self.task_id}"

    @property
    def python(self) -> str:
        """The interpreter that runs the task on this machine."""
        return self.interpreter.python if self.interpreter and self.interpreter.python else sys.executable

    def command(self, python: str | None = None, flow_file: str | None = None) -> list[str]:
        """The task command line, with the task's interpreter on this machine. A remote backend
        uses `remote_commands` instead."""
        args = [
            python or self.python, "-m", "flow_core", "step", flow_file or self.flow_file, self.step_name,
            "--flow", self.flow_name,
            "--run-id", self.run_id,
            "--task-id", self.task_id,
            "--input-paths", ",".join(self.input_paths),
            "--retry-count", str(self.retry_count),
            "--max-user-code-retries", str(self.max_user_code_retries),
        ]
        if self.split_index is not None:
            args += ["--split-index", str(self.split_index)]
        for tag in self.tags:
            args += ["--tag", tag]
        for decospec in self.decospecs:
            args += ["--with", decospec]
        return args

    def remote_commands(self, flow_file: str, python: str = "python3") -> list[list[str]]:
        """What a fresh machine runs, in order, once the code package is unpacked there: the
        command that builds the task's interpreter (when it has its own), then the task
        command line with the flow file's path inside the package. ``python`` is the image's."""
        if self.interpreter is None:
            return [self.command(python=python, flow_file=flow_file)]
        setup = [list(self.interpreter.remote_setup)] if self.interpreter.remote_setup else []
        return [*setup, self.command(python=self.interpreter.remote_python or python, flow_file=flow_file)]


class TaskEvents(Protocol):
    """What a compute backend reports back while a task runs; callable from any thread."""

    def output(self, spec: TaskSpec, stream: str, line: str) -> None:
        """One line the task wrote to ``stream`` ("stdout" or "stderr"), without its newline."""

    def finished(self, spec: TaskSpec, returncode: int, reason: str | None = None) -> None:
        """The task's process ended; ``reason`` explains a failure the task could not report itself."""


class TaskHandle(ABC):
    """A launched task."""

    @abstractmethod
    def terminate(self) -> None:
        """Stop the task now (Ctrl-C, a failed run). Must be safe to call more than once."""


class ComputeBackend(ABC):
    """Runs task command lines somewhere: local processes, AWS Batch jobs, ...

    ``launch`` must return promptly; the backend reports each output line and the end of the
    task through ``events``, from whatever thread it likes.

    **A task is never reported finished before its records are written.** The task process
    writes its own attempt, artifact and status records before it exits (to the metadata
    backend, or into the datastore for the runtime to apply when it hears of the end; see
    `flow_core.engine.metadata_path`), so a backend that only runs the command line and
    reports its exit holds to this by itself. A backend that carries the records itself
    must write them before it calls ``events.finished``. A compute backend never opens the
    metadata backend on its own account, and never decides the route the records take::

        class InlineCompute(ComputeBackend):
            name = "inline"

            @classmethod
            def from_settings(cls, settings, backends):
                return cls()

            def launch(self, spec, events):
                proc = subprocess.run(spec.command(), env={**os.environ, **spec.environment})
                events.finished(spec, proc.returncode)
                return NothingToStop()
    """

    #: The name ``--compute`` and ``METAFLOW_DEFAULT_COMPUTE`` select this backend by.
    name: ClassVar[str]
    #: True when tasks run on other machines. They then need a datastore those machines
    #: reach, run from a code package (see `CodePackage`) rather than this folder, and, with
    #: a local-only metadata backend, hand their records back through the datastore.
    remote: ClassVar[bool] = False
    #: True when a remote backend can start a ``@parallel`` gang's tasks together on several
    #: machines (AWS Batch's multi-node jobs): it receives them as consecutive ``launch`` calls,
    #: each with ``spec.gang`` set, and starts them once it has all of them. The runtime refuses
    #: a gang on a remote backend without it; on this machine every task is a process anyway.
    runs_gangs: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: "Settings", backends: "Backends") -> "ComputeBackend":
        """Build the backend from configuration. ``backends`` holds the command's storage and
        metadata backends (built on first use), for a backend that needs them."""

    @abstractmethod
    def launch(self, spec: TaskSpec, events: TaskEvents) -> TaskHandle:
        """Start the task and return at once."""

    def prepare(self, spec: TaskSpec) -> None:
        """Get ready for tasks like ``spec`` (the run's first task, with placeholder ids) while
        the runtime records the run. Called once, before the runtime starts the run's threads
        (its heartbeat, its backends' I/O), so a backend may fork here if the process has no
        thread by then (preparing @pypi environments may have started some). Optional; the
        local compute forks its warm server."""

    def close(self) -> None:
        """Release what the backend holds (threads, sessions) at the end of a run."""
