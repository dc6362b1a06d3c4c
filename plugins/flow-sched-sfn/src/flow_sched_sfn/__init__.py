"""Flow's scheduler that deploys flows to AWS Step Functions."""

__version__ = "0.1.0"
