"""Compute backends: where a task's command line runs."""
