"""Flow's storage backend on Amazon S3 and S3-compatible stores."""

__version__ = "0.1.0"
