"""``@secrets``: before a step's code runs, put secrets' keys into the task's environment.

As in Metaflow: ``@secrets(sources=["name", "aws-secrets-manager.name", {"id": "arn:…",
"options": {...}, "role": "arn:…"}], role=None, allow_override=False)``. The secrets are
read in the task process itself, so they never pass through the runtime, the datastore or
the metadata, and a remote task reads them with its own credentials.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from flow_core.plugin_api import DecoratorError, FlowError, Setting, Settings, StepDecorator

AWS_SECRETS_MANAGER = "aws-secrets-manager"
#: Metaflow's ``inline`` type: the source's ``options["env_vars"]`` are the secret itself
#: (for tests and examples: the values sit in the flow's code).
INLINE = "inline"

SETTINGS = (
    Setting("METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE", AWS_SECRETS_MANAGER,
            "where @secrets looks up a source that names no backend type"),
    Setting("METAFLOW_DEFAULT_SECRETS_ROLE", None,
            "IAM role @secrets assumes to read secrets when neither the source nor the decorator names one"),
    Setting("METAFLOW_AWS_SECRETS_MANAGER_DEFAULT_REGION", None,
            "AWS region of secrets given by name (an ARN carries its own region)"),
)

#: Options a source may give, per backend type (a typo fails instead of being ignored).
KNOWN_OPTIONS = {AWS_SECRETS_MANAGER: ("json", "env_var_name", "region"), INLINE: ("env_vars",)}

#: Metaflow's rule: an environment variable name, never one of Flow's own settings.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_PREFIX = "METAFLOW_"


class SecretsError(FlowError):
    """A secret cannot be read or put into the environment; the message names the secret."""


@dataclass(frozen=True)
class SecretSpec:
    """One source of ``@secrets``, resolved: which backend, which secret, how to read it."""

    backend: str
    id: str
    options: Mapping[str, Any] = field(default_factory=dict)
    role: str | None = None

    def __str__(self) -> str:
        return f"'{self.id}' ({self.backend})"


def parse_sources(sources: Any, role: str | None, default_backend: str, where: str) -> list[SecretSpec]:
    """The sources of a ``@secrets`` as specs; ``where`` ("@secrets on step x") starts every
    error. A bare string is one source, so ``--with secrets:sources=name`` works too."""
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, (list, tuple)):
        raise DecoratorError(f"{where}: sources must be a list of secret names or dicts, not {sources!r}")
    if role is not None and not isinstance(role, str):
        raise DecoratorError(f"{where}: role must be a string (an IAM role ARN), not {role!r}")
    return [_parse_source(source, role, default_backend, where) for source in sources]


def _parse_source(source: Any, role: str | None, default_backend: str, where: str) -> SecretSpec:
    if isinstance(source, str):
        # Metaflow's rule: "type.id" names the backend; an id without a dot uses the default.
        backend, dot, secret_id = source.partition(".")
        spec = SecretSpec(backend, secret_id, {}, role) if dot else SecretSpec(default_backend, source, {}, role)
    elif isinstance(source, Mapping):
        unknown = set(source) - {"type", "id", "options", "role"}
        if unknown:
            raise DecoratorError(f"{where}: a source has no key {', '.join(sorted(map(str, unknown)))}; "
                                 "it accepts type, id, options, role")
        backend = source.get("type", default_backend)
        secret_id, options = source.get("id"), source.get("options", {})
        source_role = source.get("role", role)
        for key, value, kind in (("type", backend, str), ("id", secret_id, str), ("options", options, Mapping)):
            if not isinstance(value, kind):
                raise DecoratorError(f"{where}: a source's {key} must be a {'dict' if kind is Mapping else 'string'}, "
                                     f"not {value!r}")
        if source_role is not None and not isinstance(source_role, str):
            raise DecoratorError(f"{where}: the role of source '{secret_id}' must be a string, not {source_role!r}")
        spec = SecretSpec(backend, secret_id, dict(options), source_role)
    else:
        raise DecoratorError(f"{where}: each source must be a secret name or a dict, not {source!r}")
    if not spec.id:
        raise DecoratorError(f"{where}: a source names no secret id")
    if spec.backend not in KNOWN_OPTIONS:
        raise DecoratorError(f"{where}: source '{spec.id}' asks for secrets backend type '{spec.backend}', which is "
                             f"not installed (installed: {', '.join(KNOWN_OPTIONS)})")
    unknown = set(spec.options) - set(KNOWN_OPTIONS[spec.backend])
    if unknown:
        raise DecoratorError(f"{where}: source '{spec.id}' has no option {', '.join(sorted(map(str, unknown)))}; "
                             f"{spec.backend} accepts {', '.join(KNOWN_OPTIONS[spec.backend])}")
    return spec


def _reader(backend: str) -> Callable[[SecretSpec, Settings], dict[str, str]]:
    """The function that reads a secret of this backend type (boto3 is imported only here)."""
    if backend == INLINE:
        return read_inline_secret
    from .aws import read_secret

    return {AWS_SECRETS_MANAGER: read_secret}[backend]


def read_inline_secret(spec: SecretSpec, settings: Settings) -> dict[str, str]:
    """An ``inline`` source's variables: its ``env_vars`` option, as Metaflow's inline provider."""
    variables = spec.options.get("env_vars", {})
    if not isinstance(variables, Mapping):
        raise SecretsError(f"secret {spec}: env_vars must be a dict of variable names to values")
    return {str(name): str(value) for name, value in variables.items()}


def check_names(spec: SecretSpec, variables: Mapping[str, str]) -> None:
    """Every variable a secret gives must be a valid name outside Flow's own settings."""
    for name in variables:
        if not _ENV_NAME.fullmatch(name):
            raise SecretsError(f"secret {spec} gives '{name}', which is not a valid environment variable name")
        if name.startswith(_RESERVED_PREFIX):
            raise SecretsError(f"secret {spec} gives '{name}', but variables starting with {_RESERVED_PREFIX} "
                               "are Flow's settings and cannot come from a secret")


def secret_environment(specs: list[SecretSpec], settings: Settings, allow_override: bool,
                       environ: Mapping[str, str]) -> dict[str, str]:
    """The variables all ``specs`` give, read and checked before any is set: no two secrets
    may give the same one, nor (unless ``allow_override``) one already in ``environ``."""
    given_by: dict[str, SecretSpec] = {}
    variables: dict[str, str] = {}
    for spec in specs:
        values = _reader(spec.backend)(spec, settings)
        check_names(spec, values)
        for name, value in values.items():
            if name in given_by:
                raise SecretsError(f"secrets {given_by[name]} and {spec} both give the variable {name}")
            if not allow_override and name in environ:
                raise SecretsError(f"secret {spec} gives {name}, which is already set in the environment; "
                                   "pass allow_override=True to @secrets to replace it")
            given_by[name] = spec
            variables[name] = value
    return variables


class secrets(StepDecorator):
    """Put secrets into the step's environment before its code runs:
    ``@secrets(sources=["db-credentials"])`` gives one variable per key of the secret's JSON."""

    name = "secrets"
    defaults = {"sources": [], "role": None, "allow_override": False}

    def _specs(self, sources: Any, step_name: str, settings: Settings) -> list[SecretSpec]:
        role = self.attributes["role"] or settings.get("METAFLOW_DEFAULT_SECRETS_ROLE")
        default_backend = settings.get("METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE", AWS_SECRETS_MANAGER)
        return parse_sources(sources, role, default_backend, f"@secrets on step {step_name}")

    def step_init(self, flow_cls, graph, step_name):
        if not isinstance(self.attributes["allow_override"], bool):
            raise DecoratorError(f"@secrets on step {step_name}: allow_override must be True or False, "
                                 f"not {self.attributes['allow_override']!r}")
        if not callable(self.attributes["sources"]):  # a callable's list is checked in the task
            self._specs(self.attributes["sources"], step_name, _settings())

    def task_pre_step(self, ctx):
        settings = _settings()
        sources = self.attributes["sources"]
        if callable(sources):
            sources = sources(ctx.flow)
            if not isinstance(sources, (list, tuple)):
                raise DecoratorError(f"@secrets on step {ctx.step_name}: the sources callable must return a list, "
                                     f"not {type(sources).__name__}")
        specs = self._specs(sources, ctx.step_name, settings)
        os.environ.update(secret_environment(specs, settings, bool(self.attributes["allow_override"]), os.environ))


def _settings() -> Settings:
    return Settings(SETTINGS)
