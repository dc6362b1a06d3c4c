"""Flow's metadata service on PostgreSQL, and its client."""

__version__ = "0.1.0"
