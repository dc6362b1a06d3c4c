"""What a task ran with, from the Client API: ``environment_lock(task)``."""

from __future__ import annotations

from typing import Any

from flow_core.plugin_api import Backends, NotFound

from .lock import LOCKS_PREFIX, Lock


def environment_lock(task: Any) -> Lock:
    """The lock of the environment a task ran in (a Client ``Task``), with every package's
    exact version and SHA-256, read from the datastore where the run stored it."""
    name = task.metadata_dict.get("environment")
    if not name:
        raise NotFound(f"task {task.pathspec} ran with its run's own Python, not a @pypi/@conda environment")
    digest_prefix = name.split(":", 1)[1]
    storage = Backends.configured().storage
    keys = list(storage.list(f"{LOCKS_PREFIX}/{digest_prefix}"))
    if not keys:
        raise NotFound(f"the lock of environment {name} (task {task.pathspec}) is not in {storage.describe()}")
    return Lock.from_json(storage.get(keys[0]))
