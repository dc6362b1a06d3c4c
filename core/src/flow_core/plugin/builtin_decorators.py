"""The decorators Flow ships: steps' @retry, @catch, @timeout, @resources, @environment,
@parallel, @card (its own module), and flows' @project, @schedule, @trigger, @trigger_on_finish."""

from __future__ import annotations

import math
import os
import signal
import traceback
from typing import Any, Callable

import attrs

from flow_core.errors import FlowError
from flow_core.model.decorators import DecoratorError, FlowDecorator, StepDecorator
from flow_core.model.current import Parallel, current
from flow_core.model.parallel import gang_from_environment
from flow_core.model.project import project_info
from flow_core.plugin.card_decorator import card

#: Longest @timeout: the process timer takes no more (about 31 years).
MAX_TIMEOUT_SECONDS = 10**9


def _number(decorator: str, step_name: str, attribute: str, value: Any) -> float | int:
    """An attribute that must be a finite number >= 0, as a number: ``--with`` and code may
    give ``"10"`` as well as ``10``. Anything else is the user's mistake, said in one sentence."""
    number: float | int | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value) if value.strip().lstrip("+").isdigit() else float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < 0:
        raise DecoratorError(f"@{decorator} on step {step_name}: {attribute} must be a number >= 0, not {value!r}")
    return number


class retry(StepDecorator):
    """Run a failed task again, up to ``times`` more times, ``minutes_between_retries`` apart."""

    name = "retry"
    defaults = {"times": 3, "minutes_between_retries": 2}

    def step_init(self, flow_cls, graph, step_name):
        times = self.attributes["times"]
        if not isinstance(times, int) or times < 0:
            raise DecoratorError(f"@retry on step {step_name}: times must be a whole number >= 0, not {times!r}")
        self.attributes["minutes_between_retries"] = _number(
            "retry", step_name, "minutes_between_retries", self.attributes["minutes_between_retries"])

    def runtime_task_spec(self, spec):
        return attrs.evolve(
            spec,
            max_user_code_retries=max(spec.max_user_code_retries, int(self.attributes["times"])),
            retry_delay=float(self.attributes["minutes_between_retries"]) * 60,
        )


@attrs.frozen
class CaughtException:
    """What ``@catch(var=...)`` stores: the exception's type, message and traceback as text."""

    type: str
    message: str
    traceback: str

    def __str__(self) -> str:
        return f"{self.type.rsplit('.', 1)[-1]}: {self.message}"

    @property
    def exception(self) -> str:
        """The message, under the name Metaflow's recorded exception gives it."""
        return self.message

    @property
    def stacktrace(self) -> str:
        return self.traceback


class FailureHandledByCatch(FlowError):
    """What ``@catch`` records when the task failed without its code raising: its process was
    killed (out of memory, a segfault, SIGKILL) on every attempt."""


FailureHandledByCatch.__module__ = "flow_core"  # its public name, as the artifact records it


class catch(StepDecorator):
    """Turn the step's final failure into success, keeping the exception in artifact ``var``.

    A failure the code did not raise (the process was killed) leaves no exception to keep, so
    ``@catch`` asks the runtime for one attempt more; that attempt runs no user code and
    records `FailureHandledByCatch` instead, as Metaflow's does."""

    name = "catch"
    defaults = {"var": None, "print_exception": True}

    def runtime_task_spec(self, spec):
        return attrs.evolve(spec, max_error_retries=max(spec.max_error_retries, 1))

    def task_decorate(self, step_function, ctx):
        if ctx.retry_count <= ctx.max_user_code_retries:
            return step_function
        attempts = ctx.retry_count

        def fallback(*_inputs):
            raise FailureHandledByCatch(
                f"step '{ctx.step_name}' failed on each of its {attempts} attempt(s) without its code "
                "raising an exception: its process was killed (out of memory, a crash, a signal)")

        return fallback

    def task_exception(self, exception, ctx):
        if ctx.retry_count < ctx.max_user_code_retries:
            return False  # @retry gets its turn first
        kind = type(exception)
        if self.attributes["print_exception"]:
            print(f"@catch caught {kind.__name__}: {exception}")
        if self.attributes["var"]:
            setattr(ctx.flow, self.attributes["var"], CaughtException(
                f"{kind.__module__}.{kind.__qualname__}", str(exception),
                "".join(traceback.format_exception(exception))))
        return True


class TaskTimeout(FlowError):
    """A step ran longer than its @timeout allows."""


TaskTimeout.__module__ = "flow_core"  # its public name, as @catch records it


class timeout(StepDecorator):
    """Fail the task if the step's code runs longer than ``hours + minutes + seconds``."""

    name = "timeout"
    defaults = {"seconds": 0, "minutes": 0, "hours": 0}

    @property
    def limit(self) -> float:
        a = self.attributes
        return float(a["seconds"]) + 60 * float(a["minutes"]) + 3600 * float(a["hours"])

    def step_init(self, flow_cls, graph, step_name):
        for unit in ("seconds", "minutes", "hours"):
            self.attributes[unit] = _number("timeout", step_name, unit, self.attributes[unit])
        if self.limit <= 0:
            raise DecoratorError(f"@timeout on step {step_name} needs seconds, minutes or hours above zero")
        if self.limit > MAX_TIMEOUT_SECONDS:
            raise DecoratorError(f"@timeout on step {step_name} is {self.limit:g} seconds long; "
                                 f"the most it can be is {MAX_TIMEOUT_SECONDS:g} seconds")

    def runtime_task_spec(self, spec):
        # Remote compute enforces the limit as well (AWS Batch's attempt duration), which
        # also catches a task stuck before or after the step's code.
        return attrs.evolve(spec, resources=attrs.evolve(spec.resources, timeout_seconds=self.limit))

    def task_decorate(self, step_function: Callable[[], None], ctx: Any) -> Callable[[], None]:
        limit = self.limit

        def on_alarm(signum, frame):
            raise TaskTimeout(f"step '{ctx.step_name}' timed out after {limit:g} seconds")

        def with_timeout() -> None:
            previous = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                step_function()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

        return with_timeout


class resources(StepDecorator):
    """What the step needs; compute backends map it onto their resources. Locally a task
    with ``cpu=N`` takes N of the run's ``--max-workers`` slots."""

    name = "resources"
    defaults = {"cpu": 1, "memory": 4096, "gpu": 0, "disk": None, "shared_memory": None}

    def step_init(self, flow_cls, graph, step_name):
        for key, value in self.attributes.items():
            if value is not None:
                self.attributes[key] = _number("resources", step_name, key, value)

    def runtime_task_spec(self, spec):
        return attrs.evolve(spec, resources=spec.resources.with_defaults(**self.attributes))

    def task_metadata(self):
        return {f"requested-{k}": str(v) for k, v in self.attributes.items() if v is not None}


class environment(StepDecorator):
    """Set environment variables for the step's process: ``@environment(vars={"K": "v"})``."""

    name = "environment"
    defaults = {"vars": {}}

    def step_init(self, flow_cls, graph, step_name):
        if not isinstance(self.attributes["vars"], dict):
            raise DecoratorError(f"@environment on step {step_name}: vars must be a dict of strings")

    def runtime_task_spec(self, spec):
        return attrs.evolve(spec, environment={**spec.environment, **{
            str(k): str(v) for k, v in self.attributes["vars"].items()}})

    def task_pre_step(self, ctx):
        os.environ.update({str(k): str(v) for k, v in self.attributes["vars"].items()})


class parallel(StepDecorator):
    """Run the step as a gang of ``num_parallel`` tasks started together (the step before it
    calls ``self.next(self.<step>, num_parallel=N)``); each reads ``current.parallel``."""

    name = "parallel"
    defaults: dict = {}

    def task_pre_step(self, ctx):
        main_ip, num_nodes, node_index, control_task_id = gang_from_environment(os.environ)
        stack = ctx.flow._foreach_stack
        if stack:  # the task's own place in the gang is its innermost foreach frame
            num_nodes, node_index = stack[-1].num_splits, stack[-1].index
        current._set(parallel=Parallel(main_ip, num_nodes, node_index, control_task_id))


BUILTIN_STEP_DECORATORS = [retry, catch, timeout, resources, environment, parallel, card]


class project(FlowDecorator):
    """Put the flow in project ``name``; runs go to a branch chosen with --branch/--production."""

    name = "project"
    defaults = {"name": None}

    def flow_init(self, flow_cls, options):
        project_info(flow_cls.__name__, self.attributes["name"], bool(options.get("production")),
                     options.get("branch"), "user")


class schedule(FlowDecorator):
    """When a production scheduler runs the flow: ``cron``, or ``hourly``/``daily``/``weekly``.
    Locally it is only recorded; a scheduler backend reads `cron_expression`."""

    name = "schedule"
    defaults = {"cron": None, "weekly": False, "daily": True, "hourly": False, "timezone": None}

    def flow_init(self, flow_cls, options):
        for key in ("cron", "timezone"):
            value = self.attributes[key]
            if value is not None and not isinstance(value, str):
                raise DecoratorError(f"@schedule: {key} must be a string, not {value!r}")

    @property
    def cron_expression(self) -> str | None:
        """The schedule as an EventBridge cron expression (UTC unless ``timezone``)."""
        a = self.attributes
        if a["cron"]:
            return a["cron"]
        if a["weekly"]:
            return "0 0 ? * SUN *"
        if a["hourly"]:
            return "0 * * * ? *"
        if a["daily"]:
            return "0 0 * * ? *"
        return None


def _names(decorator: str, one_key: str, many_key: str, attributes: dict) -> list:
    """``event=``/``events=`` (or ``flow=``/``flows=``): exactly one of them, each entry a name
    or a dict with a ``name``."""
    one, many = attributes[one_key], attributes[many_key]
    if one and many:
        raise DecoratorError(f"@{decorator}: give either {one_key} or {many_key}, not both")
    entries = [one] if one else list(many) if isinstance(many, (list, tuple)) else None
    if entries is None:
        raise DecoratorError(f"@{decorator}: {many_key} must be a list, not {many!r}")
    if not entries:
        raise DecoratorError(f"@{decorator} needs {one_key}= or {many_key}=")
    for entry in entries:
        if isinstance(entry, dict):
            if not isinstance(entry.get("name"), str) or not entry["name"]:
                raise DecoratorError(f"@{decorator}: every {one_key} given as a dict needs a 'name'")
        elif not isinstance(entry, str) or not entry:
            raise DecoratorError(f"@{decorator}: a {one_key} is a name or a dict with a 'name', not {entry!r}")
    return entries


class trigger(FlowDecorator):
    """Start a production run when an event arrives: ``event="name"`` or ``events=[...]``.
    Locally it is only recorded."""

    name = "trigger"
    defaults = {"event": None, "events": [], "options": {}}

    def flow_init(self, flow_cls, options):
        self.triggers = _names("trigger", "event", "events", self.attributes)


class trigger_on_finish(FlowDecorator):
    """Start a production run when another flow finishes: ``flow="Name"`` or ``flows=[...]``.
    Locally it is only recorded."""

    name = "trigger_on_finish"
    defaults = {"flow": None, "flows": [], "options": {}}

    def flow_init(self, flow_cls, options):
        self.triggers = _names("trigger_on_finish", "flow", "flows", self.attributes)


BUILTIN_FLOW_DECORATORS = [project, schedule, trigger, trigger_on_finish]
