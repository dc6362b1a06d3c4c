"""End to end: real flows with @secrets, run by the `flow` command on local compute, reading
secrets from moto's Secrets Manager over HTTP as they would from AWS."""

from __future__ import annotations

import base64
import json

import pytest
from flow_core.testing import last_error
from flow_core.testing.servers import free_port

SECRETS_FLOW = """
import json, os
from flow_core import FlowSpec, secrets, step

ARN = os.environ["WEST_ARN"]


class SecretsFlow(FlowSpec):
    @secrets(sources=[
        "flow-tests/db",
        {"type": "aws-secrets-manager", "id": "flow-tests/token", "options": {"json": False}},
        {"id": "flow-tests/key", "options": {"env_var_name": "signing-key"}},
        {"id": ARN},
    ])
    @step
    def start(self):
        self.seen = {k: os.environ.get(k) for k in ("user", "pass_word", "port", "flow_tests_token",
                                                   "signing_key", "marker")}
        print("SEEN", json.dumps(self.seen, sort_keys=True))
        self.next(self.assumed)

    @secrets(sources=["aws-secrets-manager.flow-tests/db"], role="arn:aws:iam::123456789012:role/reader")
    @step
    def assumed(self):
        print("ASSUMED", os.environ.get("user"))
        self.next(self.end)

    @step
    def end(self):
        print("END", os.environ.get("user"))


if __name__ == "__main__":
    SecretsFlow()
"""

MISSING_FLOW = """
import os
from flow_core import FlowSpec, secrets, step


class MissingFlow(FlowSpec):
    @secrets(sources=["flow-tests/does-not-exist"])
    @step
    def start(self):
        print("STEP CODE RAN")
        self.next(self.end)

    @step
    def end(self):
        pass
"""

PLAIN_FLOW = """
import os
from flow_core import FlowSpec, step


class PlainFlow(FlowSpec):
    @step
    def start(self):
        print("START", os.environ.get("user"), os.environ.get("pass_word"))
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def seen(stdout: str, marker: str) -> str:
    (line,) = [line for line in stdout.splitlines() if f" {marker} " in f" {line.split('] ', 1)[-1]}"]
    return line.split(f"{marker} ", 1)[1]


def test_a_step_with_secrets_sees_each_key_as_a_variable(aws_env, create_secret, write_flow, flow_cli):
    create_secret("flow-tests/db", {"user": "ana", "pass-word": "s3cr3t", "port": 5432})
    create_secret("flow-tests/token", "tok-123 not json")
    create_secret("flow-tests/key", b"\x00\x01raw key")
    west = create_secret("flow-tests/west", {"marker": "from us-west-2"}, region="us-west-2")

    result = flow_cli("run", str(write_flow("secrets_flow.py", SECRETS_FLOW)), env={"WEST_ARN": west})

    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(seen(result.stdout, "SEEN")) == {
        "user": "ana", "pass_word": "s3cr3t", "port": "5432",   # a JSON object: a variable per key, as strings
        "flow_tests_token": "tok-123 not json",                  # json=False: the whole string, named by the secret
        "signing_key": base64.b64encode(b"\x00\x01raw key").decode(),  # binary: base64, under env_var_name
        "marker": "from us-west-2",                              # an ARN: read in its own region
    }
    assert seen(result.stdout, "ASSUMED") == "ana"  # read with the role's credentials from STS
    assert seen(result.stdout, "END") == "None"     # a step without @secrets has none of them


def test_run_with_secrets_gives_every_step_the_secret(aws_env, create_secret, write_flow, flow_cli):
    create_secret("flow-tests/db", {"user": "bo", "pass-word": "hunter2"})

    result = flow_cli("run", str(write_flow("plain.py", PLAIN_FLOW)), "--with", "secrets:sources=flow-tests/db")

    assert result.returncode == 0, result.stdout + result.stderr
    assert seen(result.stdout, "START") == "bo hunter2"


def test_a_missing_secret_fails_the_task_in_one_sentence(aws_env, moto, write_flow, flow_cli):
    result = flow_cli("run", str(write_flow("missing.py", MISSING_FLOW)))

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert (f"secret 'flow-tests/does-not-exist' (aws-secrets-manager) does not exist in AWS Secrets Manager "
            f"(region eu-west-1, endpoint {moto.endpoint_url})") in output, output
    assert "STEP CODE RAN" not in output
    assert "Traceback" not in output and "botocore" not in output, output


def test_an_unreachable_endpoint_fails_the_task_in_one_sentence(aws_env, point_at, write_flow, flow_cli):
    nowhere = f"http://127.0.0.1:{free_port()}"
    point_at(nowhere, METAFLOW_AWS_SECRETS_MANAGER_DEFAULT_REGION="eu-west-1")

    result = flow_cli("run", str(write_flow("missing.py", MISSING_FLOW)))

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert (f"cannot reach AWS at {nowhere} to read secret 'flow-tests/does-not-exist' (aws-secrets-manager) "
            "(region eu-west-1)") in output, output
    assert "Traceback" not in output and "botocore" not in output, output


@pytest.mark.parametrize("sources, sentence", [
    ('["flow-tests/plain"]', "secret 'flow-tests/plain' (aws-secrets-manager) is not JSON; give its source "
                             "options={'json': False} to put the whole string in one variable"),
    ('["flow-tests/db", {"id": "flow-tests/user-again"}]',
     "secrets 'flow-tests/db' (aws-secrets-manager) and 'flow-tests/user-again' (aws-secrets-manager) both give "
     "the variable user"),
    ('["flow-tests/reserved"]', "secret 'flow-tests/reserved' (aws-secrets-manager) gives 'METAFLOW_USER', but "
                                "variables starting with METAFLOW_ are Flow's settings and cannot come from a secret"),
    ('["flow-tests/home"]', "secret 'flow-tests/home' (aws-secrets-manager) gives HOME, which is already set in the "
                            "environment; pass allow_override=True to @secrets to replace it"),
])
def test_a_secret_that_breaks_metaflows_rules_fails_the_task(aws_env, create_secret, write_flow, flow_cli,
                                                             sources, sentence):
    create_secret("flow-tests/plain", "not json")
    create_secret("flow-tests/db", {"user": "ana"})
    create_secret("flow-tests/user-again", {"user": "bo"})
    create_secret("flow-tests/reserved", {"METAFLOW_USER": "mallory"})
    create_secret("flow-tests/home", {"HOME": "/elsewhere"})

    result = flow_cli("run", str(write_flow("broken.py", MISSING_FLOW.replace('["flow-tests/does-not-exist"]',
                                                                              sources))))

    assert result.returncode != 0
    assert sentence in result.stdout + result.stderr, result.stdout + result.stderr
    assert "STEP CODE RAN" not in result.stdout


def test_allow_override_replaces_a_variable(aws_env, create_secret, write_flow, flow_cli):
    create_secret("flow-tests/home", {"HOME": "/elsewhere"})
    source = MISSING_FLOW.replace('sources=["flow-tests/does-not-exist"]',
                                  'sources=["flow-tests/home"], allow_override=True')
    source = source.replace('print("STEP CODE RAN")', 'print("HOME", os.environ["HOME"])')

    result = flow_cli("run", str(write_flow("override.py", source)))

    assert result.returncode == 0, result.stdout + result.stderr
    assert seen(result.stdout, "HOME") == "/elsewhere"


def test_a_mistaken_source_is_refused_before_anything_runs(aws_env, write_flow, flow_cli):
    source = MISSING_FLOW.replace('["flow-tests/does-not-exist"]',
                                  '[{"id": "flow-tests/db", "options": {"jsn": False}}]')

    result = flow_cli("run", str(write_flow("typo.py", source)))

    assert result.returncode != 0
    assert last_error(result) == ("Error: @secrets on step start: source 'flow-tests/db' has no option jsn; "
                                  "aws-secrets-manager accepts json, env_var_name, region"), result.stderr
    assert "Workflow starting" not in result.stdout


def test_a_denied_secret_fails_the_task_in_one_sentence(moto_with_iam, write_flow, flow_cli):
    source = MISSING_FLOW.replace("flow-tests/does-not-exist", "flow-tests/guarded")

    result = flow_cli("run", str(write_flow("denied.py", source)))

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert (f"access denied when trying to read secret 'flow-tests/guarded' (aws-secrets-manager) "
            f"(region eu-west-1, endpoint {moto_with_iam.endpoint_url}): ") in output, output
    assert "STEP CODE RAN" not in output
    assert "Traceback" not in output and "botocore" not in output, output


INLINE_FLOW = """
import os
from flow_core import FlowSpec, secrets, step


class InlineFlow(FlowSpec):
    @secrets(sources=[{"type": "inline", "id": "1",
                       "options": {"env_vars": {"secret_1": "Pizza is a vegetable.", "SECRET_2": 2}}}])
    @step
    def start(self):
        print("INLINE", os.environ.get("secret_1"), os.environ.get("SECRET_2"))
        self.next(self.end)

    @step
    def end(self):
        print("END", os.environ.get("secret_1"))


if __name__ == "__main__":
    InlineFlow()
"""


def test_an_inline_source_gives_its_env_vars_as_metaflows_inline_provider(write_flow, flow_cli):
    result = flow_cli("run", str(write_flow("inline_flow.py", INLINE_FLOW)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen(result.stdout, "INLINE") == "Pizza is a vegetable. 2"
    assert seen(result.stdout, "END") == "None"
