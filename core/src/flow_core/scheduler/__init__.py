"""Schedulers: where `flow deploy` puts a flow to run in production."""
