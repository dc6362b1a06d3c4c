"""The OpenAPI description, built from the route table so that it cannot drift from it.

Request bodies are described with the service's limits (`limits`) as ``maxLength`` and
``maxItems``, so a generated client or a fuzzer knows them; the body size, which a JSON
schema cannot say, is in the description and in ``x-limits``.
"""

from __future__ import annotations

import re

from .api import COMPATIBLE_VERSION, ROUTES
from .limits import (
    LIMITS,
    MAX_ARTIFACTS,
    MAX_EVENTS,
    MAX_METADATA,
    MAX_NAME,
    MAX_TAG,
    MAX_TAGS,
    MAX_TEXT,
    MAX_VALUE,
)

_PARAM = re.compile(r"{(\w+)}")
_QUERY = {
    "GET /flows": ["_limit", "_cursor"],
    "GET /flows/{flow_id}/runs": ["_limit", "_cursor", "tag", "status"],
    "GET /flows/{flow_id}/runs/{run}/steps": ["_limit", "_cursor"],
    "GET /flows/{flow_id}/runs/{run}/metadata": ["_limit", "_cursor"],
    "GET /flows/{flow_id}/runs/{run}/steps/{step}/tasks": ["_limit", "_cursor"],
    "GET /flows/{flow_id}/runs/{run}/steps/{step}/tasks/{task}/metadata": ["_limit", "_cursor"],
    "GET /flows/{flow_id}/runs/{run}/steps/{step}/filtered_tasks": ["metadata_field_name", "pattern"],
}
_ERROR = {"description": "an error, explained", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"message": {"type": "string"}}}}}}
_OVER_LIMIT = {"description": "over one of the limits (x-limits): which one, and its value", "content": {
    "application/json": {"schema": {"type": "object", "properties": {
        "message": {"type": "string"}, "limit": {"type": "string", "enum": list(LIMITS)},
        "maximum": {"type": "integer"}}}}}}


def _text(max_length: int) -> dict:
    return {"type": "string", "maxLength": max_length}


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


_NAME = _text(MAX_NAME)
_ID = {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": "^[^/\\u0000]+$"}
_TAGS = {"type": "array", "maxItems": MAX_TAGS, "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG}}
_OWNED = {"user_name": _NAME, "tags": _TAGS, "system_tags": _TAGS}
_FIELD = _object({"field_name": _NAME, "value": _text(MAX_VALUE), "type": _NAME, **_OWNED}, ("field_name",))
_ARTIFACT = _object({"name": _NAME, "attempt_id": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                     "location": _text(MAX_TEXT), "ds_type": _NAME, "sha": _NAME, "type": _text(MAX_TEXT),
                     "content_type": _NAME, "size": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                     **_OWNED}, ("name", "location", "ds_type", "sha"))
_BODIES = {
    "create_flow": _object(_OWNED),
    "create_run": _object({**_OWNED, "run_number": _NAME, "origin_run_id": _NAME}),
    "finish_run": _object({"status": {"type": "string", "enum": ["succeeded", "failed"]}}, ("status",)),
    "mutate_tags": _object({"tags_to_add": _TAGS, "tags_to_remove": _TAGS}),
    "record_attempts": {"type": "array", "maxItems": MAX_EVENTS, "items": _object(
        {"step_name": _ID, "task_id": _ID, "metadata": {"type": "array", "maxItems": MAX_METADATA, "items": _FIELD},
         "artifacts": {"type": "array", "maxItems": MAX_ARTIFACTS, "items": _ARTIFACT}}, ("step_name", "task_id"))},
    "create_step": _object({"user_name": _NAME}),
    "create_task": _object({"user_name": _NAME, "task_id": _NAME}),
    "create_tasks": _object({"user_name": _NAME, "count": {"type": "integer", "minimum": 1, "maximum": 100_000}}),
    "add_metadata": {"type": "array", "maxItems": MAX_METADATA, "items": _FIELD},
    "add_artifacts": {"type": "array", "maxItems": MAX_ARTIFACTS, "items": _ARTIFACT},
}


def _operation(method: str, path: str, handler) -> dict:
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "integer", "minimum": 0} if name == "attempt" else
                   {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/\\u0000]+$"}}
                  for name in _PARAM.findall(path)]
    for name in _QUERY.get(f"{method} {path}", []):
        schema = {"type": "integer", "minimum": 1, "maximum": 10000} if name == "_limit" else {"type": "string"}
        parameters.append({"name": name, "in": "query", "required": False, "schema": schema})
    operation = {"operationId": handler.__name__, "parameters": parameters,
                 "responses": {"200": {"description": "success"}, "400": _ERROR, "401": _ERROR, "404": _ERROR,
                               "409": _ERROR, "413": _OVER_LIMIT, "422": _OVER_LIMIT, "503": _ERROR}}
    if method in ("POST", "PATCH"):
        schema = _BODIES.get(handler.__name__, {"type": "object"})
        operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": schema}}}
    return operation


def _limits_description() -> str:
    lines = [f"- {name}: at most {maximum} {what}" for name, (maximum, what) in LIMITS.items()]
    return ("\n\nLimits (a request over one is refused whole: 413 for the body size, 422 otherwise, with a "
            "message naming the limit and `limit`/`maximum` fields):\n" + "\n".join(lines))


def openapi_document() -> dict:
    paths: dict[str, dict] = {}
    for method, path, handler in ROUTES:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, handler)
    paths["/health"] = {"get": {"operationId": "health", "responses": {"200": {"description": "serving"},
                                                                         "503": _ERROR}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Flow metadata service",
                 "description": "metaflow-service's metadata API on PostgreSQL, with Flow's additions."
                                + _limits_description(),
                 "version": COMPATIBLE_VERSION},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
        "security": [{"bearer": []}, {"apiKey": []}, {}],
        "x-limits": {name: {"maximum": maximum, "of": what} for name, (maximum, what) in LIMITS.items()},
        "paths": paths,
    }
