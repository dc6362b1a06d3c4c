"""`task.exception`: what a failed task raised, shaped as Metaflow's recorded exception.

Metaflow hands back the ``_exception`` artifact, an ``Exception`` subclass with ``.type``
(``"builtins.ValueError"``), ``.exception`` (the message) and ``.stacktrace``. Flow records
``"ValueError: message"`` in the attempt's index and the traceback in its stderr, so this
object is rebuilt from those two; a notebook written against Metaflow reads the same fields.
"""

from __future__ import annotations

import builtins

TRACEBACK_START = "Traceback (most recent call last):"


def _qualified(type_name: str) -> str:
    """``ValueError`` → ``builtins.ValueError`` (Metaflow's form); a dotted name stays."""
    if "." in type_name:
        return type_name
    found = getattr(builtins, type_name, None)
    if isinstance(found, type) and issubclass(found, BaseException):
        return f"builtins.{type_name}"
    return type_name


def _last_traceback(stderr: str) -> str | None:
    start = stderr.rfind(TRACEBACK_START)
    return stderr[start:].rstrip("\n") + "\n" if start >= 0 else None


class TaskException(Exception):
    """The exception a task failed with: ``.type``, ``.exception`` (its message) and
    ``.stacktrace`` (None if the task left none). ``str()`` is the one line ``Type: message``."""

    def __init__(self, recorded: str, stderr: str = "", qualified_type: str | None = None):
        name, sep, message = recorded.partition(": ")
        if not sep or " " in name:  # no "Type: " prefix: the whole text is the message
            name, message = "Exception", recorded
        self.type: str = qualified_type or _qualified(name)
        self.exception: str = message
        self.stacktrace: str | None = _last_traceback(stderr)
        self._short = f"{name}: {message}"
        super().__init__(self._short)

    def __str__(self) -> str:
        return self._short

    def __repr__(self) -> str:
        return f"TaskException({self._short!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TaskException):
            return (self.type, self.exception) == (other.type, other.exception)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.type, self.exception))

    def __reduce__(self):  # picklable like Metaflow's wrapper, whatever the base class does
        return _rebuild, (self.__dict__.copy(),)


def _rebuild(state: dict) -> TaskException:
    obj = TaskException.__new__(TaskException)
    Exception.__init__(obj, state.get("_short", ""))
    obj.__dict__.update(state)
    return obj
