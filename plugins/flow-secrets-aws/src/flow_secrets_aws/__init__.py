"""flow-secrets-aws: Metaflow's ``@secrets`` step decorator, reading AWS Secrets Manager.

``from flow_core import secrets`` once this package is installed.
"""
