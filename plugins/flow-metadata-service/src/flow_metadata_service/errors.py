"""The plugin's errors: each one sentence for the user, in Flow's `FlowError` family."""

from flow_core.plugin_api import MetadataError


class ServiceError(MetadataError):
    """The metadata service could not be reached or answered with an error."""


class SchemaError(MetadataError):
    """The database is not at the schema version this service needs."""
