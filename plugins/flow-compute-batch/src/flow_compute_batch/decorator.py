"""``@batch``: send one step (or, with ``run --with batch``, every step) to AWS Batch."""

from __future__ import annotations

from typing import Any

import attrs
from flow_core.plugin_api import DecoratorError, StepDecorator, TaskSpec

#: Where `BatchCompute` finds a step's ``@batch`` attributes: ``TaskSpec.resources.options_for(RESOURCES_KEY)``.
RESOURCES_KEY = "batch"
_NUMBERS = ("cpu", "memory", "gpu", "shared_memory", "max_swap", "swappiness", "tmpfs_size")


class batch(StepDecorator):
    """Run the step as an AWS Batch job. ``cpu``, ``memory`` (MiB) and ``gpu`` combine with
    ``@resources`` by taking the larger of each; the rest default to the METAFLOW_BATCH_*
    settings."""

    name = "batch"
    defaults = {
        "cpu": None, "memory": None, "gpu": None,
        "image": None, "queue": None, "iam_role": None, "execution_role": None,
        "shared_memory": None, "max_swap": None, "swappiness": None,
        "use_tmpfs": False, "tmpfs_size": None, "tmpfs_path": "/metaflow_temp",
        "host_volumes": None, "privileged": False,
    }

    def step_init(self, flow_cls: type, graph: Any, step_name: str) -> None:
        for key in _NUMBERS:
            value = self.attributes[key]
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = -1
            if number < 0 or (key != "cpu" and number != int(number)):
                raise DecoratorError(f"@batch on step {step_name}: {key} must be a number >= 0, not {value!r}")
        volumes = self.attributes["host_volumes"]
        if volumes is not None and not (isinstance(volumes, (list, tuple, str))):
            raise DecoratorError(f"@batch on step {step_name}: host_volumes must be a path or a list of paths")

    def runtime_task_spec(self, spec: TaskSpec) -> TaskSpec:
        given = {k: v for k, v in self.attributes.items() if v is not None and v != self.defaults[k]}
        return attrs.evolve(spec, compute="batch", resources=spec.resources.with_options(RESOURCES_KEY, given))

    def task_metadata(self) -> dict[str, str]:
        return {f"batch-{k}": str(v) for k, v in self.attributes.items() if v not in (None, False)}
