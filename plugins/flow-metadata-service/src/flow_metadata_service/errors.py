"""The plugin's errors: each one sentence for the user, in Flow's `FlowError` family."""

from flow_core.plugin_api import MetadataError


class ServiceError(MetadataError):
    """The metadata service could not be reached or answered with an error."""


class SchemaError(MetadataError):
    """The database is not at the schema version this service needs."""


class LimitExceeded(ServiceError):
    """The service refused a request over one of its limits; ``limit`` names which."""

    def __init__(self, message: str, limit: str, maximum: int | None):
        super().__init__(message)
        self.limit, self.maximum = limit, maximum
