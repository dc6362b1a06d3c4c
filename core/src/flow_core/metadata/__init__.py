"""Metadata backends: the record of every run, step, task, attempt and artifact."""
