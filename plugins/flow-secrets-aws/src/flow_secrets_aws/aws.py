"""Reading one secret from AWS Secrets Manager, with Metaflow's rules for what it becomes.

A JSON object gives one variable per key (values made strings); ``options={"json": False}``
gives the whole string as one variable; a binary secret gives its bytes base64-encoded. The
one-variable cases are named by ``options["env_var_name"]`` or else by the secret's name.
Names have ``-``, ``.`` and ``/`` turned into ``_``. Every AWS failure becomes one sentence
naming the secret, the region and the endpoint, never a botocore traceback.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from flow_core.plugin_api import Settings

from .decorator import SecretsError, SecretSpec

_ARN_REGION = re.compile(r"arn:aws[a-z-]*:secretsmanager:([^:]+):")
_XML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)
_DENIED = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
           "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch"}


def secret_region(spec: SecretSpec, settings: Settings) -> str | None:
    """An ARN's own region, else the source's ``region`` option, else the setting; None leaves
    it to boto3 (AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config)."""
    match = _ARN_REGION.match(spec.id)
    if match:
        return match.group(1)
    return spec.options.get("region") or settings.get("METAFLOW_AWS_SECRETS_MANAGER_DEFAULT_REGION")


def env_name(key: str) -> str:
    """Metaflow's sanitising of a secret's key into a variable name."""
    return key.replace("-", "_").replace(".", "_").replace("/", "_")


def read_secret(spec: SecretSpec, settings: Settings) -> dict[str, str]:
    """The variables ``spec``'s secret gives. The endpoint is boto3's own choice, so
    ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` (or ``AWS_ENDPOINT_URL``) points it elsewhere."""
    client = _client(spec, secret_region(spec, settings))
    response = _call(spec, client, "read", lambda: client.get_secret_value(SecretId=spec.id))
    return secret_variables(spec, response)


def secret_variables(spec: SecretSpec, response: dict[str, Any]) -> dict[str, str]:
    """The variables of one GetSecretValue response, by Metaflow's rules."""
    name = spec.options.get("env_var_name") or response.get("Name") or spec.id
    if "SecretString" in response:
        text = response["SecretString"]
        if not spec.options.get("json", True):
            return _add({}, spec, name, text)
        try:
            value = json.loads(text)
        except ValueError:
            raise SecretsError(f"secret {spec} is not JSON; give its source options={{'json': False}} to put the "
                               "whole string in one variable") from None
        if not isinstance(value, dict):
            raise SecretsError(f"secret {spec} is JSON but a {type(value).__name__}, not an object; give its source "
                               "options={'json': False} to put the whole string in one variable")
        variables: dict[str, str] = {}
        for key, item in value.items():
            _add(variables, spec, key, str(item))
        return variables
    if "SecretBinary" in response:
        # boto3 hands over raw bytes; a variable cannot hold NUL bytes, hence base64 as in Metaflow.
        return _add({}, spec, name, base64.b64encode(response["SecretBinary"]).decode())
    raise SecretsError(f"AWS Secrets Manager returned secret {spec} with neither a string nor a binary value")


def _add(variables: dict[str, str], spec: SecretSpec, key: str, value: str) -> dict[str, str]:
    name = env_name(key)
    if name in variables:
        raise SecretsError(f"secret {spec} has two keys that both become the variable {name}")
    variables[name] = value
    return variables


def _client(spec: SecretSpec, region: str | None) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=30)
    session = boto3.session.Session()
    try:
        if spec.role:
            sts = session.client("sts", region_name=region, config=config)
            response = _call(spec, sts, f"assume role {spec.role} to read",
                             lambda: sts.assume_role(RoleArn=spec.role, RoleSessionName="flow-secrets"))
            credentials = response["Credentials"]
            session = boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                            aws_secret_access_key=credentials["SecretAccessKey"],
                                            aws_session_token=credentials["SessionToken"])
        return session.client("secretsmanager", region_name=region, config=config)
    except NoRegionError:
        raise SecretsError(f"no AWS region is set to read secret {spec}; set METAFLOW_AWS_SECRETS_MANAGER_DEFAULT_REGION "
                           "or AWS_DEFAULT_REGION, or give the secret's ARN") from None


def _one_line(message: str) -> str:
    """An error message fit for the end of one sentence: an XML error body (a proxy's, or
    an IAM-style one) reduced to its <Message>, on one line, not too long."""
    found = _XML_MESSAGE.search(message)
    text = " ".join((found.group(1) if found else message).split()).rstrip(".")
    return text if len(text) <= 300 else text[:297] + "..."


def _call(spec: SecretSpec, client: Any, action: str, call: Any) -> Any:
    """``call()``, its botocore errors turned into one sentence about ``action`` on the secret."""
    from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError, ConnectTimeoutError,
                                     EndpointConnectionError, NoCredentialsError, ReadTimeoutError)

    where = f"region {client.meta.region_name}, endpoint {client.meta.endpoint_url}"
    try:
        return call()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "error")), _one_line(str(error.get("Message") or ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "ResourceNotFoundException":
            raise SecretsError(f"secret {spec} does not exist in AWS Secrets Manager ({where})") from None
        if code in _DENIED or status == 403:
            raise SecretsError(f"access denied when trying to {action} secret {spec} ({where}): "
                               f"{message or code}") from None
        raise SecretsError(f"AWS refused to {action} secret {spec} ({where}): {code}"
                           f"{': ' + message if message else ''}") from None
    except NoCredentialsError:
        raise SecretsError(f"no AWS credentials to {action} secret {spec} ({where}); set AWS_PROFILE or "
                           "AWS_ACCESS_KEY_ID, or run where an instance role gives them") from None
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError):
        raise SecretsError(f"cannot reach AWS at {client.meta.endpoint_url} to {action} secret {spec} "
                           f"(region {client.meta.region_name})") from None
    except BotoCoreError as exc:
        raise SecretsError(f"cannot {action} secret {spec} ({where}): {exc}") from None
