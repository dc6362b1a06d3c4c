"""`StepFunctionsScheduler`: deploy a flow as a state machine, trigger it, schedule it, remove it.

A deployment is the state machine itself: its tags hold the production token and who
deployed it, so a second user is refused without ``--authorize`` and nothing else needs a
table of its own. Everything a deploy creates is checked before the first AWS call.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
from typing import Any, Mapping

import attrs
from flow_compute_batch.api import BatchJobRunner, job_queue
from flow_core.plugin_api import (
    Backends,
    CodePackage,
    ConfigError,
    Deployment,
    DeployRequest,
    FlowError,
    NotFound,
    SchedulerBackend,
    Settings,
    new_production_token,
)

from .aws import StepFunctionsClients
from .compiler import CompileOptions, StepJob, compile_state_machine
from .job_definitions import step_definitions
from .limits import MAX_PARAMETERS_JSON

NAME = "step-functions"
TOKEN_TAG, OWNER_TAG, CREATED_BY_TAG = "flow:production-token", "flow:deployer", "created-by"
#: Execution ids become run ids ``sfn-<id>``.
RUN_ID_PREFIX = "sfn-"
DEFAULT_MAX_WORKERS = 100
#: Past this many splits a foreach runs as a Distributed Map: an inline Map runs at most 40
#: iterations at once on AWS, a Distributed Map thousands. States.ArrayRange makes at most 1,000.
DEFAULT_INLINE_MAP_MAX = 40
INLINE_MAP_MAX = 1000
#: What --only-json puts where the production token goes: it asks AWS nothing.
TOKEN_PLACEHOLDER = "<production-token>"


@attrs.frozen
class Compiled:
    #: The state machine's definition (Amazon States Language).
    definition: dict[str, Any]
    #: Step name -> (name, container properties) of its Batch job definition.
    job_definitions: dict[str, tuple[str, dict[str, Any]]]
    package: CodePackage


class StepFunctionsScheduler(SchedulerBackend):
    """Deploys flows to AWS Step Functions, their steps as AWS Batch jobs."""

    name = NAME
    runs_remotely = True

    def __init__(self, backends: Backends):
        self.backends = backends
        self.settings: Settings = backends.settings
        self._clients: StepFunctionsClients | None = None

    @classmethod
    def from_settings(cls, settings: Settings, backends: Backends) -> "StepFunctionsScheduler":
        return cls(backends)

    @property
    def aws(self) -> StepFunctionsClients:
        if self._clients is None:
            self._clients = StepFunctionsClients()
        return self._clients

    # -- deploying ------------------------------------------------------------------------------

    def compile(self, request: DeployRequest, token: str = TOKEN_PLACEHOLDER) -> Compiled:
        """The state machine's definition, each step's job definition and the code package,
        without touching AWS (``--only-json``): nothing is uploaded or registered."""
        storage = self.backends.storage
        self._check_storage()
        package = CodePackage.build(request.flow_file, self.backends, used=["flow-compute-batch", "flow-sched-sfn"])
        url = storage.location(package.key)
        in_foreach = {node.name for node in request.graph
                      if any(request.graph[parent].type == "foreach" for parent in node.split_parents)}
        definitions = step_definitions(request, package, url, storage, self.settings, token, in_foreach)
        jobs = {step: _step_job(name, request.steps[step]) for step, (name, _) in definitions.items()}
        options = CompileOptions(job_queue=job_queue(self.settings),
                                 foreach_root=self.settings.require("METAFLOW_DATASTORE_SYSROOT_S3",
                                                                    "Step Functions runs keep their data on S3"),
                                 max_workers=int(request.options.get("max_workers") or DEFAULT_MAX_WORKERS),
                                 inline_map_max=_inline_map_max(self.settings))
        return Compiled(compile_state_machine(request.graph, request.flow_name, jobs, options), definitions, package)

    def deploy(self, request: DeployRequest) -> Deployment:
        name = request.options.get("name") or request.deployed_name or request.flow_name
        self._check_requirements(request)
        schedule = validated_cron(request.schedule) if request.schedule else None
        timezone = validated_timezone(request.schedule_timezone) if schedule and request.schedule_timezone else None
        existing = self.aws.state_machine_arn(name)
        token = self._production_token(request, existing)
        # Who deployed first owns the deployment; others update it with its token.
        owner = (self.aws.tags(existing).get(OWNER_TAG) if existing else None) or self.settings.user
        compiled = self.compile(request, token)
        compiled.package.store(self.backends.storage)
        runner = BatchJobRunner(job_queue(self.settings))
        for definition_name, properties in compiled.job_definitions.values():
            runner.fixed_definition(definition_name, properties)
        tags = {TOKEN_TAG: token, OWNER_TAG: owner, CREATED_BY_TAG: "flow",
                "flow:flow_name": request.flow_name, "flow:flow_file": request.flow_file}
        arn = self.aws.put_state_machine(name, json.dumps(compiled.definition), self._role(), tags, existing)
        if existing:
            self.aws.remove_schedule(name)  # what an earlier deploy scheduled, rule or zoned
        no_parameters = json.dumps({"parameters": {}})
        if timezone:
            self.aws.put_zoned_schedule(name, schedule, timezone, arn, self._events_role(), no_parameters)
        elif schedule:
            self.aws.put_schedule(name, schedule, arn, self._events_role(), no_parameters)
        return Deployment(flow_name=request.flow_name, scheduler=self.name, production_token=token,
                          flow_file=request.flow_file, created_at=time.time(), schedule=schedule,
                          details={"state_machine": arn, "name": name, "timezone": timezone})

    def _production_token(self, request: DeployRequest, existing: str | None) -> str:
        authorize = request.options.get("authorize")
        if existing is None:
            return authorize or new_production_token(request.flow_name)
        tags = self.aws.tags(existing)
        token, owner = tags.get(TOKEN_TAG), tags.get(OWNER_TAG)
        if token is None or owner == self.settings.user or authorize == token:
            return token or authorize or new_production_token(request.flow_name)
        raise ConfigError(
            f"{request.flow_name} is deployed to Step Functions by {owner}; to deploy it too, pass their "
            f"production token with --authorize TOKEN (they see it in the state machine's {TOKEN_TAG} tag)")

    def _check_requirements(self, request: DeployRequest) -> None:
        self._check_storage()
        if self.backends.metadata.name != "service":
            raise ConfigError("Step Functions tasks record their runs in a metadata service every container "
                              "reaches; set METAFLOW_DEFAULT_METADATA=service and METAFLOW_SERVICE_URL")
        job_queue(self.settings)
        self._role()
        if request.schedule:
            self._events_role()

    def _check_storage(self) -> None:
        if self.backends.storage.name != "s3":
            raise ConfigError("Step Functions runs keep their data on S3; set METAFLOW_DEFAULT_DATASTORE=s3 and "
                              "METAFLOW_DATASTORE_SYSROOT_S3")

    def _role(self) -> str:
        return self.settings.require("METAFLOW_SFN_IAM_ROLE", "set it to the IAM role the state machine runs as")

    def _events_role(self) -> str:
        return self.settings.require("METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE",
                                     "set it to the IAM role EventBridge starts the flow's @schedule runs with")

    # -- running ---------------------------------------------------------------------------------

    def trigger(self, flow_name: str, parameters: Mapping[str, str] | None = None) -> str:
        given = json.dumps(dict(parameters or {}))
        if len(given.encode()) > MAX_PARAMETERS_JSON:
            raise FlowError(f"the parameters given are {len(given.encode()):,} bytes as JSON, more than the "
                            f"{MAX_PARAMETERS_JSON:,} a Step Functions run passes to its first task; pass large "
                            "values through a file on S3 instead (an IncludeFile, or a path as the parameter)")
        arn = self._existing(flow_name)
        execution = uuid.uuid4().hex
        self.aws.start_execution(arn, execution, json.dumps({"parameters": dict(parameters or {})}))
        return f"{self.aws.tags(arn).get('flow:flow_name', flow_name)}/{RUN_ID_PREFIX}{execution}"

    def list_runs(self, flow_name: str, states: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The state machine's executions, newest first: run id, status, start and stop."""
        runs = []
        for execution in self.aws.executions(self._existing(flow_name)):
            if states and execution["status"] not in states:
                continue
            runs.append({"run_id": RUN_ID_PREFIX + execution["name"], "status": execution["status"],
                         "started": execution.get("startDate"), "stopped": execution.get("stopDate")})
        return runs

    def list_deployments(self) -> list[Deployment]:
        found = []
        for name, arn, created in self.aws.state_machines():
            tags = self.aws.tags(arn)
            if tags.get(CREATED_BY_TAG) != "flow":
                continue
            found.append(Deployment(flow_name=tags.get("flow:flow_name", name), scheduler=self.name,
                                    production_token=tags.get(TOKEN_TAG, ""),
                                    flow_file=tags.get("flow:flow_file", ""), created_at=created,
                                    details={"state_machine": arn, "name": name}))
        return found

    def delete(self, flow_name: str) -> None:
        arn = self._existing(flow_name)
        self.aws.remove_schedule(flow_name)
        self.aws.delete_state_machine(arn)

    def _existing(self, name: str) -> str:
        arn = self.aws.state_machine_arn(name)
        if arn is None:
            raise NotFound(f"{name} is not deployed to Step Functions; deploy it with "
                           "`python FLOW.py step-functions create` first")
        return arn


def _inline_map_max(settings: Settings) -> int:
    value = settings.get("METAFLOW_SFN_INLINE_MAP_MAX") or str(DEFAULT_INLINE_MAP_MAX)
    if not value.isdigit() or not 0 < int(value) <= INLINE_MAP_MAX:
        raise ConfigError(f"METAFLOW_SFN_INLINE_MAP_MAX is {value!r}; it must be a whole number from 1 to "
                          f"{INLINE_MAP_MAX} (an inline Map's States.ArrayRange makes at most that many)")
    return int(value)


def _step_job(definition_name: str, spec: Any) -> StepJob:
    timeout = spec.resources.timeout_seconds
    return StepJob(job_definition=definition_name, timeout_seconds=math.ceil(timeout) if timeout else None,
                   retries=spec.max_user_code_retries + spec.max_error_retries,
                   retry_interval_seconds=int(spec.retry_delay))


_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/#LW-]+$")


def validated_cron(expression: str) -> str:
    """An EventBridge cron expression (six fields, one of day-of-month and day-of-week ``?``),
    or a one-sentence error quoting it."""
    fields = expression.split()
    problem = None
    if len(fields) != 6:
        problem = f"has {len(fields)} fields, and EventBridge's cron has six (minutes hours day-of-month month " \
                  "day-of-week year)"
    elif not all(_CRON_FIELD.match(field) for field in fields):
        problem = "holds characters EventBridge's cron does not allow"
    elif "?" not in (fields[2], fields[4]) or fields[2] == fields[4] == "?":
        problem = "must have ? in exactly one of day-of-month and day-of-week"
    if problem:
        raise FlowError(f"@schedule(cron={expression!r}) {problem}, as in '0 10 * * ? *'")
    return expression


def validated_timezone(timezone: str) -> str:
    """An IANA time zone name, or a one-sentence error quoting it."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise FlowError(f"@schedule(timezone={timezone!r}) is not a time zone name; use an IANA name such as "
                        "'Europe/Amsterdam' or 'America/Los_Angeles'") from None
    return timezone
