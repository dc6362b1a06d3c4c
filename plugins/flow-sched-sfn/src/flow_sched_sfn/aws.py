"""The Step Functions and EventBridge calls a deployment makes, in plain terms.

Every AWS failure leaves here as a `FlowError` with one sentence saying what went wrong;
botocore already retries throttling and transient errors with back-off.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from botocore.exceptions import BotoCoreError, ClientError
from flow_compute_batch.api import aws_clients, call_aws
from flow_core.plugin_api import FlowError


class StepFunctionsError(FlowError):
    """Step Functions or EventBridge refused a call."""


class StepFunctionsClients:
    def __init__(self) -> None:
        self.sfn, self.events, self.scheduler = aws_clients("Step Functions", "stepfunctions", "events", "scheduler")

    def _call(self, what: str, method: Any, **kwargs: Any) -> Any:
        return call_aws(what, StepFunctionsError, method, **kwargs)

    # -- state machines ------------------------------------------------------------------------

    def state_machines(self) -> Iterator[tuple[str, str, float]]:
        """(name, ARN, creation time) of every state machine of the account and region."""
        token = None
        while True:
            page = self._call("list state machines", self.sfn.list_state_machines,
                              **({"nextToken": token} if token else {}))
            for machine in page["stateMachines"]:
                yield machine["name"], machine["stateMachineArn"], machine["creationDate"].timestamp()
            token = page.get("nextToken")
            if not token:
                return

    def state_machine_arn(self, name: str) -> str | None:
        for found, arn, _ in self.state_machines():
            if found == name:
                return arn
        return None

    def tags(self, arn: str) -> dict[str, str]:
        tags = self._call("read the state machine's tags", self.sfn.list_tags_for_resource, resourceArn=arn)["tags"]
        return {tag["key"]: tag["value"] for tag in tags}

    def put_state_machine(self, name: str, definition: str, role: str, tags: Mapping[str, str],
                          existing: str | None) -> str:
        """Create the state machine, or update the ``existing`` one in place (its executions stay)."""
        tag_list = [{"key": k, "value": v} for k, v in tags.items()]
        if existing is None:
            return self._call(f"create state machine {name}", self.sfn.create_state_machine, name=name,
                              definition=definition, roleArn=role, type="STANDARD",
                              tags=tag_list)["stateMachineArn"]
        self._call(f"update state machine {name}", self.sfn.update_state_machine, stateMachineArn=existing,
                   definition=definition, roleArn=role)
        self._call(f"tag state machine {name}", self.sfn.tag_resource, resourceArn=existing, tags=tag_list)
        return existing

    def delete_state_machine(self, arn: str) -> None:
        self._call("delete the state machine", self.sfn.delete_state_machine, stateMachineArn=arn)

    def start_execution(self, arn: str, name: str, input_json: str) -> str:
        return self._call("start an execution", self.sfn.start_execution, stateMachineArn=arn, name=name,
                          input=input_json)["executionArn"]

    def executions(self, arn: str) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self._call("list executions", self.sfn.list_executions, stateMachineArn=arn,
                              **({"nextToken": token} if token else {}))
            yield from page["executions"]
            token = page.get("nextToken")
            if not token:
                return

    # -- schedules ----------------------------------------------------------------------------

    def put_schedule(self, name: str, cron: str, target_arn: str, role: str, input_json: str) -> None:
        """An EventBridge rule that starts the state machine on ``cron`` with ``input_json``."""
        self._call(f"create the schedule rule {name}", self.events.put_rule, Name=name,
                   ScheduleExpression=f"cron({cron})", State="ENABLED",
                   Description=f"Flow: runs {name} on Step Functions")
        self._call(f"point the schedule rule {name} at the state machine", self.events.put_targets, Rule=name,
                   Targets=[{"Id": "flow", "Arn": target_arn, "RoleArn": role, "Input": input_json}])

    def put_zoned_schedule(self, name: str, cron: str, timezone: str, target_arn: str, role: str,
                           input_json: str) -> None:
        """An EventBridge Scheduler schedule (rules know only UTC) that starts the state machine
        on ``cron`` in ``timezone`` with ``input_json``."""
        request = {"Name": name, "ScheduleExpression": f"cron({cron})", "ScheduleExpressionTimezone": timezone,
                   "FlexibleTimeWindow": {"Mode": "OFF"}, "State": "ENABLED",
                   "Description": f"Flow: runs {name} on Step Functions",
                   "Target": {"Arn": target_arn, "RoleArn": role, "Input": input_json}}
        if self._zoned_schedule_exists(name):
            self._call(f"update the schedule {name}", self.scheduler.update_schedule, **request)
        else:
            self._call(f"create the schedule {name}", self.scheduler.create_schedule, **request)

    def _zoned_schedule_exists(self, name: str) -> bool:
        try:
            self.scheduler.get_schedule(Name=name)
        except self.scheduler.exceptions.ResourceNotFoundException:
            return False
        except (ClientError, BotoCoreError) as exc:
            raise StepFunctionsError(f"could not look up the schedule {name}: {exc}") from None
        return True

    def remove_schedule(self, name: str) -> None:
        """Remove what ``put_schedule`` or ``put_zoned_schedule`` made, if anything."""
        if self._zoned_schedule_exists(name):
            self._call(f"remove the schedule {name}", self.scheduler.delete_schedule, Name=name)
        try:
            self.events.describe_rule(Name=name)
        except self.events.exceptions.ResourceNotFoundException:
            return
        except (ClientError, BotoCoreError) as exc:
            raise StepFunctionsError(f"could not look up the schedule rule {name}: {exc}") from None
        self._call(f"remove the schedule rule {name}'s target", self.events.remove_targets, Rule=name, Ids=["flow"])
        self._call(f"remove the schedule rule {name}", self.events.delete_rule, Name=name)
