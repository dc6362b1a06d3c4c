"""The step decorators Flow ships: @retry, @catch, @timeout, @resources, @environment."""

from __future__ import annotations

import math
import os
import signal
import traceback
from typing import Any, Callable

import attrs

from flow_core.errors import FlowError
from flow_core.model.decorators import DecoratorError, StepDecorator

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
        return f"{self.type}: {self.message}"


class catch(StepDecorator):
    """Turn the step's final failure into success, keeping the exception in artifact ``var``."""

    name = "catch"
    defaults = {"var": None, "print_exception": True}

    def task_exception(self, exception, ctx):
        if ctx.retry_count < ctx.max_user_code_retries:
            return False  # @retry gets its turn first
        if self.attributes["print_exception"]:
            print(f"@catch caught {type(exception).__name__}: {exception}")
        if self.attributes["var"]:
            setattr(ctx.flow, self.attributes["var"], CaughtException(
                type(exception).__name__, str(exception), "".join(traceback.format_exception(exception))))
        return True


class TaskTimeout(FlowError):
    """A step ran longer than its @timeout allows."""


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


BUILTIN_STEP_DECORATORS = [retry, catch, timeout, resources, environment]
