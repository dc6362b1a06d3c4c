"""The one family of errors a user may see.

Everything Flow raises on purpose derives from `FlowError`. Its message is written for the
person at the terminal: one plain sentence saying what is wrong and what to do. The CLI prints
it without a traceback (unless `--debug`); anything else that escapes is a bug in Flow.
"""

from __future__ import annotations


class FlowError(Exception):
    """Base of every error Flow reports to a user."""

    #: Process exit status the CLI uses when this error ends a command.
    exit_code: int = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(FlowError):
    """A setting is missing or malformed."""


class PluginError(FlowError):
    """A plugin is missing, broken, or two plugins claim the same backend."""


class BackendNotInstalled(PluginError):
    """Configuration names a backend that no installed plugin provides."""


class GraphError(FlowError):
    """The flow's graph is invalid; carries the file and line of the offending code."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        self.file = file
        self.line = line
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}")


class FlowLoadError(FlowError):
    """A flow file cannot be found or imported."""


class ParameterError(FlowError):
    """A run parameter is missing or has a value of the wrong type."""


class DataStoreError(FlowError):
    """The datastore cannot be read or written."""


class BlobNotFound(DataStoreError):
    """A key asked of a storage backend does not exist."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"the datastore has no object '{key}'; it may have been deleted or never written")


class MetadataError(FlowError):
    """The metadata backend cannot be read or written."""


class NotFound(FlowError, KeyError):
    """A flow, run, step, task or artifact named by the user does not exist.

    Also a `KeyError`: Metaflow's ``run["nostep"]`` raises one, so a notebook's
    ``except KeyError`` keeps working. ``str()`` stays the plain sentence (`FlowError`'s),
    not KeyError's quoted repr."""


class RunFailed(FlowError):
    """A run ended with a failed task; the message names it and the cause."""


class NameNotInFlow(FlowError, ImportError):
    """``from flow_core import kubernetes``: a Metaflow name Flow does not have. An
    `ImportError`, so the import fails as any missing name does, with a sentence saying what
    the name is and what to use instead."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name


class AttributeNotInFlow(FlowError, AttributeError):
    """``flow_core.kubernetes`` or ``hasattr(flow_core, "kubernetes")``: the same sentence, as
    an `AttributeError` so ``hasattr`` and ``getattr(..., default)`` keep working."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name
