"""Helpers for flow-env's own tests (and plugins that test against it)."""
