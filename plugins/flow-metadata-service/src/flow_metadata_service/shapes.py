"""Database rows as the JSON objects of metaflow-service's API.

``run_number`` and ``task_id`` show a client-chosen name where there is one, else the
allocated number; steps show the run as a string, as upstream's do. Steps, tasks and
artifacts carry their run's tags: Metaflow's client filters namespaces on its own, on
whatever tags a listing returns.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg


def tag_list(value: Any) -> list[str]:
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else list(value)


def exposed_id(number: int, name: str | None) -> Any:
    return name if name is not None else number


def flow_json(row: asyncpg.Record) -> dict:
    return {"flow_id": row["flow_id"], "user_name": row["user_name"], "ts_epoch": row["ts_epoch"],
            "tags": tag_list(row["tags"]), "system_tags": tag_list(row["system_tags"])}


def run_json(row: asyncpg.Record) -> dict:
    return {"flow_id": row["flow_id"], "run_number": exposed_id(row["run_number"], row["run_id"]),
            "run_id": row["run_id"], "user_name": row["user_name"], "ts_epoch": row["ts_epoch"],
            "last_heartbeat_ts": row["last_heartbeat_ts"], "tags": tag_list(row["tags"]),
            "system_tags": tag_list(row["system_tags"]), "status": row["status"],
            "recorded_status": row["recorded_status"], "finished_at": row["finished_at"],
            "origin_run_id": row["origin_run_id"]}


def step_json(row: asyncpg.Record) -> dict:
    return {"flow_id": row["flow_id"], "run_number": str(exposed_id(row["run_number"], row["run_id"])),
            "step_name": row["step_name"], "user_name": row["user_name"], "ts_epoch": row["ts_epoch"],
            "tags": tag_list(row["tags"]), "system_tags": tag_list(row["system_tags"])}


def task_json(row: asyncpg.Record) -> dict:
    return {"flow_id": row["flow_id"], "run_number": exposed_id(row["run_number"], row["run_id"]),
            "step_name": row["step_name"], "task_id": exposed_id(row["task_id"], row["task_name"]),
            "user_name": row["user_name"], "ts_epoch": row["ts_epoch"],
            "last_heartbeat_ts": row["last_heartbeat_ts"], "tags": tag_list(row["tags"]),
            "system_tags": tag_list(row["system_tags"]), "attempt": row["attempt"], "status": row["status"],
            "finished_at": row["finished_at"]}


def metadata_json(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "flow_id": row["flow_id"], "run_number": exposed_id(row["run_number"], row["run_id"]),
            "step_name": row["step_name"], "task_id": exposed_id(row["task_id"], row["task_name"]),
            "field_name": row["field_name"], "value": row["value"], "type": row["type"],
            "user_name": row["user_name"], "ts_epoch": row["ts_epoch"], "tags": tag_list(row["tags"]),
            "system_tags": tag_list(row["system_tags"])}


def artifact_json(row: asyncpg.Record) -> dict:
    return {"flow_id": row["flow_id"], "run_number": exposed_id(row["run_number"], row["run_id"]),
            "step_name": row["step_name"], "task_id": exposed_id(row["task_id"], row["task_name"]),
            "attempt_id": row["attempt_id"], "name": row["name"], "location": row["location"],
            "ds_type": row["ds_type"], "sha": row["sha"], "type": row["type"],
            "content_type": row["content_type"], "size": row["size"], "user_name": row["user_name"],
            "ts_epoch": row["ts_epoch"], "tags": tag_list(row["tags"]), "system_tags": tag_list(row["system_tags"])}


def attempt_json(row: asyncpg.Record) -> dict:
    """One attempt; times in milliseconds like every ``ts_epoch``, ``finished_at`` null while it runs."""
    ok = row["ok"]
    return {"step_name": row["step_name"], "task_id": exposed_id(row["task_id"], row["task_name"]),
            "attempt": row["attempt"], "started_at": row["started_at"] or row["first_ts"],
            "finished_at": row["finished_at"],
            "status": "running" if ok is None else "succeeded" if ok else "failed"}
