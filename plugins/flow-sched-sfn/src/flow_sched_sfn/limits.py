"""The limits of Step Functions and AWS Batch a compiled state machine must respect, and how
the compiler checks them before anything is deployed.

Ids grow at run time (execution names, foreach indices), so the Batch ``Parameters`` and job
names of every Task state are checked with the longest values they can take: an execution name
of `MAX_EXECUTION_NAME` characters, foreach indices of `MAX_INDEX_DIGITS` digits at the state's
real nesting depth, and a start ``parameters`` JSON of `MAX_PARAMETERS_JSON` bytes (whoever
starts an execution must refuse larger parameters).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

#: Step Functions' limit on a state's name.
MAX_STATE_NAME = 80
#: Step Functions' limit on an execution's name (``run_id`` is ``sfn-`` and that name).
MAX_EXECUTION_NAME = 80
#: Step Functions' limit on a state machine definition, in bytes.
MAX_DEFINITION_BYTES = 1024 * 1024
#: Step Functions' limit on the data a state receives or passes on, in bytes.
MAX_PAYLOAD_BYTES = 256 * 1024
#: AWS Batch's limit on a job submission's overrides (``Parameters`` included), in bytes.
BATCH_OVERRIDE_LIMIT = 8 * 1024
#: What the compiler lets a Task state's Batch ``Parameters`` take: well under Batch's limit.
BATCH_PARAMETERS_BUDGET = 6 * 1024
#: The largest ``parameters`` JSON (start's Batch parameter) an execution may carry, in bytes.
MAX_PARAMETERS_JSON = 4 * 1024
#: AWS Batch's limit on a job name.
MAX_JOB_NAME = 128
#: Foreach indices are assumed to have at most this many digits (a million splits per level).
MAX_INDEX_DIGITS = 6
#: Retry counts are assumed to have at most this many digits.
MAX_RETRY_DIGITS = 3

_FORMAT = re.compile(r"States\.Format\('((?:[^'\\]|\\.)*)'((?:\s*,\s*[^,()]+)*)\)\Z")
_JSON_TO_STRING = re.compile(r"States\.JsonToString\(([^()]+)\)\Z")


def worst_case_values(depth: int) -> dict[str, str]:
    """The longest value of each path a Task state reads, ``depth`` foreach levels deep."""
    index = "9" * MAX_INDEX_DIGITS
    return {
        "$.run_id": "sfn-" + "x" * MAX_EXECUTION_NAME,
        # An execution's ARN: partition, region, account, state machine and execution names.
        "$.execution": "arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:" + "m" * 80 + ":"
                       + "x" * MAX_EXECUTION_NAME,
        "$.stack": f"-{index}" * depth,
        "$.parent_stack": f"-{index}" * max(depth - 1, 0),
        "$.split_index": index,
        "$$.State.RetryCount": "9" * MAX_RETRY_DIGITS,
        "$.parameters": "p" * MAX_PARAMETERS_JSON,  # as JSON text, after States.JsonToString
    }


def evaluate(expression: str, values: Mapping[str, str]) -> str:
    """The value of one of the compiler's own expressions (a path, ``States.Format`` of paths,
    ``States.JsonToString`` of a path) given ``values`` for the paths."""
    expression = expression.strip()
    if expression in values:
        return values[expression]
    match = _JSON_TO_STRING.match(expression)
    if match:
        return evaluate(match.group(1), values)
    match = _FORMAT.match(expression)
    if match is None:
        raise ValueError(f"cannot evaluate {expression!r}")
    template = re.sub(r"\\(.)", lambda m: m.group(1), match.group(1).replace("{}", "\0"))
    args = [a for a in (part.strip() for part in match.group(2).split(",")) if a]
    if template.count("\0") != len(args):
        raise ValueError(f"{expression!r} has {template.count(chr(0))} placeholders for {len(args)} arguments")
    for arg in args:
        template = template.replace("\0", evaluate(arg, values), 1)
    return template


def worst_case(template: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """A payload template (``"key.$": expression`` and static values) with every expression
    replaced by its longest value."""
    result: dict[str, Any] = {}
    for key, value in template.items():
        if key.endswith(".$"):
            result[key[:-2]] = evaluate(value, values)
        elif isinstance(value, Mapping):
            result[key] = worst_case(value, values)
        else:
            result[key] = value
    return result


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())
