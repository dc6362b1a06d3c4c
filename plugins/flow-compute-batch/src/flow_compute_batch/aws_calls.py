"""boto3 clients and calls whose failures reach the user as one sentence.

Shared with flow-sched-sfn (through `flow_compute_batch.api`): both talk to AWS the same way,
with adaptive retries, and turn a refusal into an error of their own kind.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from flow_core.plugin_api import ConfigError, FlowError


def aws_clients(service: str, *names: str, **config: Any) -> list[Any]:
    """boto3 clients of ``names``, retrying with back-off; ``service`` names what needs them
    in the error a missing region gives."""
    settings = Config(retries={"max_attempts": 10, "mode": "adaptive"}, connect_timeout=10, read_timeout=60,
                      **config)
    try:
        return [boto3.client(name, config=settings) for name in names]
    except NoRegionError:
        raise ConfigError(f"{service} needs a region: set AWS_DEFAULT_REGION or a region in your AWS config") \
            from None


def call_aws(what: str, error: type[FlowError], method: Any, **kwargs: Any) -> Any:
    """``method(**kwargs)``; a failure becomes ``error`` (or a ConfigError without credentials)
    saying it could not do ``what``, and why."""
    try:
        return method(**kwargs)
    except NoCredentialsError:
        raise ConfigError(f"could not {what}: no AWS credentials were found; configure them as for the "
                          "AWS CLI") from None
    except ClientError as exc:
        detail = exc.response.get("Error", {})
        raise error(f"AWS refused to {what}: {detail.get('Message') or detail.get('Code')}") from None
    except BotoCoreError as exc:
        raise error(f"could not {what}: {exc}") from None
