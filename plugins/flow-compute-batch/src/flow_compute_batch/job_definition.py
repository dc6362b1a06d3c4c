"""What a task's Batch job definition says, and its name, derived from its content.

A job definition is registered once per distinct content (image, resources, roles, mounts)
and reused by every task, run and user that asks for the same: its name carries the
content's digest, so finding it is one describe call and two different requests never share
a name.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

import attrs
from flow_core.plugin_api import Resources

#: Metaflow's defaults for a task that asks for nothing.
DEFAULT_CPU = 1
DEFAULT_MEMORY = 4096
NAME_PREFIX = "flow-task"
#: A @parallel gang's job definition, one per gang (its nodes' commands name their tasks).
GANG_PREFIX = "flow-gang"
#: A job definition holding its command (an orchestrator's step, whose jobs pass only parameters).
FIXED_PREFIX = "flow-step"


@attrs.frozen
class JobShape:
    """Everything about a task's container that belongs in its job definition."""

    image: str
    cpu: float = DEFAULT_CPU
    memory: int = DEFAULT_MEMORY
    gpu: int = 0
    job_role: str | None = None
    execution_role: str | None = None
    shared_memory: int | None = None
    max_swap: int | None = None
    swappiness: int | None = None
    tmpfs_size: int | None = None
    tmpfs_path: str | None = None
    host_volumes: tuple[str, ...] = ()
    privileged: bool = False

    @classmethod
    def from_resources(cls, resources: Resources, image: str, job_role: str | None) -> "JobShape":
        """Combine ``@resources`` and ``@batch`` (the larger of each number, as Metaflow does)."""
        batch = dict(resources.options_for("batch"))

        def larger(key: str, default: float) -> float:
            values = [v for v in (getattr(resources, key), batch.get(key)) if v is not None]
            return max(float(v) for v in values) if values else default

        volumes = batch.get("host_volumes") or ()
        tmpfs = bool(batch.get("use_tmpfs")) or batch.get("tmpfs_size") is not None
        return cls(
            image=batch.get("image") or image,
            cpu=larger("cpu", DEFAULT_CPU),
            memory=int(larger("memory", DEFAULT_MEMORY)),
            gpu=int(larger("gpu", 0)),
            job_role=batch.get("iam_role") or job_role,
            execution_role=batch.get("execution_role"),
            shared_memory=_int_or_none(batch.get("shared_memory") or resources.shared_memory),
            max_swap=_int_or_none(batch.get("max_swap")),
            swappiness=_int_or_none(batch.get("swappiness")),
            # Batch's tmpfs needs a size; Metaflow's default is half the memory.
            tmpfs_size=_int_or_none(batch.get("tmpfs_size")) or (int(larger("memory", DEFAULT_MEMORY)) // 2
                                                                 if tmpfs else None),
            tmpfs_path=batch.get("tmpfs_path") if tmpfs else None,
            host_volumes=(volumes,) if isinstance(volumes, str) else tuple(volumes),
            privileged=bool(batch.get("privileged")),
        )

    def container_properties(self) -> dict[str, Any]:
        # Whole CPUs are written as "2", not "2.0": Batch rejects fractions on EC2.
        cpu = str(int(self.cpu)) if self.cpu == int(self.cpu) else str(self.cpu)
        properties: dict[str, Any] = {
            "image": self.image,
            "command": ["python3", "--version"],  # every job overrides it
            "resourceRequirements": [{"type": "VCPU", "value": cpu},
                                     {"type": "MEMORY", "value": str(self.memory)}],
        }
        if self.gpu:
            properties["resourceRequirements"].append({"type": "GPU", "value": str(self.gpu)})
        if self.job_role:
            properties["jobRoleArn"] = self.job_role
        if self.execution_role:
            properties["executionRoleArn"] = self.execution_role
        if self.privileged:
            properties["privileged"] = True
        linux: dict[str, Any] = {}
        if self.shared_memory is not None:
            linux["sharedMemorySize"] = self.shared_memory
        if self.max_swap is not None:
            linux["maxSwap"] = self.max_swap
            linux["swappiness"] = 60 if self.swappiness is None else self.swappiness
        if self.tmpfs_size is not None:
            linux["tmpfs"] = [{"containerPath": self.tmpfs_path or "/metaflow_temp", "size": self.tmpfs_size,
                               "mountOptions": ["rw"]}]
        if linux:
            properties["linuxParameters"] = linux
        if self.host_volumes:
            names = [f"volume{i}" for i in range(len(self.host_volumes))]
            properties["volumes"] = [{"name": n, "host": {"sourcePath": p}} for n, p in zip(names, self.host_volumes)]
            properties["mountPoints"] = [{"sourceVolume": n, "containerPath": p, "readOnly": False}
                                         for n, p in zip(names, self.host_volumes)]
        return properties

    @property
    def definition_name(self) -> str:
        return f"{NAME_PREFIX}-{_digest(self.container_properties())}"

    def node_properties(self, nodes: Sequence[tuple[list[str], Mapping[str, str]]]) -> dict[str, Any]:
        """A multi-node job of one node per (command, environment), node 0 the main one.

        Each node's command and environment live in the job definition itself: Batch (and
        moto) start a multi-node job's containers from it, not from per-job overrides.
        """
        ranges = []
        for index, (command, environment) in enumerate(nodes):
            container = {**self.container_properties(), "command": list(command),
                         "environment": [{"name": k, "value": str(v)} for k, v in sorted(environment.items())]}
            ranges.append({"targetNodes": str(index), "container": container})
        return {"numNodes": len(nodes), "mainNode": 0, "nodeRangeProperties": ranges}


def gang_definition_name(node_properties: Mapping[str, Any]) -> str:
    return f"{GANG_PREFIX}-{_digest(node_properties)}"


def fixed_definition(shape: JobShape, command: Sequence[str],
                     environment: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """The name and container properties of a job definition that holds its command and
    environment itself (an orchestrator's step, whose jobs pass only ``Ref::`` parameters).
    The name is the content's digest: known without asking AWS, shared by equal content."""
    properties = {**shape.container_properties(), "command": list(command),
                  "environment": [{"name": k, "value": str(v)} for k, v in sorted(environment.items())]}
    return f"{FIXED_PREFIX}-{_digest(properties)}", properties


def _digest(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
