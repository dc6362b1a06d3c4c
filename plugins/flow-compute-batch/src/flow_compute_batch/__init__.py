"""Flow's compute backend that runs steps as AWS Batch jobs."""

__version__ = "0.1.0"
