"""The OpenAPI description, built from the route table so that it cannot drift from it."""

from __future__ import annotations

import re

from .api import COMPATIBLE_VERSION, ROUTES

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
                               "409": _ERROR, "422": _ERROR, "503": _ERROR}}
    if method in ("POST", "PATCH"):
        array = path.endswith(("/metadata", "/artifact", "/attempts"))
        operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": {
            "type": "array", "items": {"type": "object"}} if array else {"type": "object"}}}}
    return operation


def openapi_document() -> dict:
    paths: dict[str, dict] = {}
    for method, path, handler in ROUTES:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, handler)
    paths["/health"] = {"get": {"operationId": "health", "responses": {"200": {"description": "serving"},
                                                                         "503": _ERROR}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Flow metadata service",
                 "description": "metaflow-service's metadata API on PostgreSQL, with Flow's additions.",
                 "version": COMPATIBLE_VERSION},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
        "security": [{"bearer": []}, {"apiKey": []}, {}],
        "paths": paths,
    }
