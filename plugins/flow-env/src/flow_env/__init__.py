"""flow-env: Flow's ``@pypi`` and ``@conda`` environments (``--environment=pypi`` / ``conda``).

``environment_lock(task)`` tells what a task of the Client API ran with. It is imported on
first use: in a container, `flow_env.rattler_process` runs in a virtualenv holding
py-rattler alone, where importing Flow would fail.
"""

from typing import Any

__all__ = ["environment_lock"]


def __getattr__(name: str) -> Any:
    if name == "environment_lock":
        from flow_env.client import environment_lock

        return environment_lock
    raise AttributeError(f"module 'flow_env' has no attribute {name!r}")
