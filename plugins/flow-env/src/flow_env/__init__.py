"""flow-env: Flow's ``@pypi`` and ``@conda`` environments (``--environment=pypi`` / ``conda``).

``environment_lock(task)`` tells what a task of the Client API ran with.
"""

from flow_env.client import environment_lock

__all__ = ["environment_lock"]
