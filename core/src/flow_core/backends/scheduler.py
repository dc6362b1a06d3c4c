"""The scheduler interface: deploy a flow, trigger it, list and delete deployments.

A deployment runs in its own namespace, ``production:<token>``, so its runs are told
apart from anyone's experiments. The token is kept across re-deployments of the same flow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import attrs

if TYPE_CHECKING:
    from flow_core.backends.compute import TaskSpec
    from flow_core.backends.selection import Backends
    from flow_core.model.graph import FlowGraph
    from flow_core.plugin.settings import Settings


def new_production_token(flow_name: str) -> str:
    import secrets  # not at the top: every process that loads plugins imports this module

    return f"{flow_name.lower()}-{secrets.token_hex(4)}"


@attrs.frozen
class DeployRequest:
    """Everything a scheduler needs to deploy one flow."""

    flow_file: str
    flow_name: str
    graph: "FlowGraph"
    tags: tuple[str, ...] = ()
    #: ``cron`` expression from ``@schedule``, if any.
    schedule: str | None = None
    #: ``@schedule(timezone=…)``: the IANA time zone the cron expression is in (None: UTC).
    schedule_timezone: str | None = None
    #: Each step's first task as its decorators shape it (compute, resources, retries, time
    #: limit), with placeholder ids: what a scheduler compiles into its own terms.
    steps: Mapping[str, "TaskSpec"] = attrs.field(factory=dict)
    #: Options of the scheduler's own command line (``--max-workers``, ``--authorize``...).
    options: Mapping[str, Any] = attrs.field(factory=dict)
    #: The name to deploy under: ``@project``'s ``project.branch.Flow``, else the flow's name.
    deployed_name: str = ""
    #: Options ``flow init`` needs to start runs shaped as this deployment's (its @project
    #: branch, its configs' values as the deploy fixed them).
    init_options: tuple[str, ...] = ()
    #: Variables every task of the deployment needs besides the settings (the same two, as
    #: the tasks read them).
    environment: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Deployment:
    flow_name: str
    scheduler: str
    production_token: str
    flow_file: str
    created_at: float
    schedule: str | None = None
    #: Scheduler-specific facts to show (a state machine ARN, a log folder, ...).
    details: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def namespace(self) -> str:
        return f"production:{self.production_token}"


class SchedulerBackend(ABC):
    """Runs deployed flows without anyone's laptop: Step Functions, a local daemon, ...

    ::

        class EchoScheduler(SchedulerBackend):
            name = "echo"

            @classmethod
            def from_settings(cls, settings, backends):
                return cls()

            def deploy(self, request):
                print("would deploy", request.flow_name)
                return Deployment(request.flow_name, self.name, "tok", request.flow_file, time.time())
            ...
    """

    #: The name ``flow deploy --scheduler`` and ``METAFLOW_DEFAULT_SCHEDULER`` select it by.
    name: ClassVar[str]
    #: True when every task of a deployed run runs on another machine (Step Functions' Batch
    #: jobs): the steps' ``@pypi`` environments are then staged in the datastore at deploy time.
    runs_remotely: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: "Settings", backends: "Backends") -> "SchedulerBackend":
        """Build the scheduler from configuration; ``backends`` holds the command's storage,
        metadata and computes, for a scheduler that deploys onto them."""

    @abstractmethod
    def deploy(self, request: DeployRequest) -> Deployment:
        """Create or update the flow's deployment; keep its production token if it had one."""

    @abstractmethod
    def trigger(self, flow_name: str, parameters: Mapping[str, str] | None = None) -> str:
        """Start a run of the deployed flow now; return what identifies it (a pathspec, an ARN).
        ``flow_name`` is the name it was deployed under (`DeployRequest.deployed_name`)."""

    @abstractmethod
    def list_deployments(self) -> list[Deployment]:
        """Every flow deployed to this scheduler."""

    @abstractmethod
    def delete(self, flow_name: str) -> None:
        """Remove the deployment (its past runs stay)."""
