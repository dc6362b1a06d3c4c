"""What each step asks for, from its decorators and the flow's: an `EnvironmentSpec`.

Steps that ask for the same thing share one spec, so a flow resolves and builds each
distinct environment once, however many steps use it.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import attrs

from flow_core.plugin_api import DecoratorError, EnvironmentRequest

PYPI, CONDA = "pypi", "conda"
_OPERATOR = re.compile(r"^\s*(==|!=|<=|>=|<|>|~=|===)")


@attrs.frozen
class EnvironmentSpec:
    """One environment as asked for: the kind of packages, the Python, and the packages."""

    kind: str
    #: The Python version asked for (``"3.11"``), or None for the runtime's own.
    python: str | None
    #: ``(name, version)`` pairs, sorted; a version of ``""`` takes any.
    packages: tuple[tuple[str, str], ...] = ()

    def requirements(self) -> list[str]:
        """The packages as the resolver reads them: ``pandas==2.2.3``, ``numpy>=2``, ``rich``."""
        return [_requirement(self.kind, name, version) for name, version in self.packages]

    def describe(self) -> str:
        wanted = ", ".join(self.requirements()) or "no packages"
        return f"@{self.kind}: {wanted} on {f'Python {self.python}' if self.python else 'this run’s Python'}"


def describe_steps(steps: list[str]) -> str:
    """``step 'a'`` or ``steps 'a', 'b'``: who an error is about."""
    names = ", ".join(f"'{s}'" for s in steps)
    return f"step {names}" if len(steps) == 1 else f"steps {names}"


def _requirement(kind: str, name: str, version: str) -> str:
    version = version.strip()
    if not version:
        return name
    if _OPERATOR.match(version):
        return f"{name}{version}" if kind == PYPI else f"{name} {version}"
    return f"{name}=={version}"


def step_specs(request: EnvironmentRequest) -> dict[str, EnvironmentSpec | None]:
    """Each step's spec; None for a step whose environment is ``disabled``, which runs with
    the runtime's own Python. A step without a decorator gets the flow-level one, or an
    environment with no packages of its own: under ``--environment=pypi`` no step sees what
    merely happens to be installed here."""
    specs: dict[str, EnvironmentSpec | None] = {}
    for step in request.steps:
        on_step = {name: step.decorators[name] for name in (PYPI, CONDA) if name in step.decorators}
        if len(on_step) > 1:
            raise DecoratorError(f"step '{step.name}' has both @pypi and @conda; give it one of them "
                                 "(a @conda environment can list PyPI packages' conda builds)")
        kind = next(iter(on_step), None)
        if kind is None:
            kind = CONDA if "conda_base" in request.flow_decorators else PYPI
        base = request.flow_decorators.get(f"{kind}_base")
        specs[step.name] = _merged(kind, on_step.get(kind), base)
    return specs


def _merged(kind: str, step_decorator: Any | None, base: Any | None) -> EnvironmentSpec | None:
    step_attrs: Mapping[str, Any] = step_decorator.attributes if step_decorator else {}
    base_attrs: Mapping[str, Any] = base.attributes if base else {}
    disabled = step_attrs.get("disabled")
    if disabled is None:
        disabled = base_attrs.get("disabled")
    if disabled:
        return None
    packages = {**_packages(base_attrs), **_packages(step_attrs)}
    python = step_attrs.get("python") or base_attrs.get("python")
    return EnvironmentSpec(kind, str(python) if python else None, tuple(sorted(packages.items())))


def _packages(attributes: Mapping[str, Any]) -> dict[str, str]:
    # @conda's `libraries` is Metaflow's older name for `packages`, which wins.
    return {**(attributes.get("libraries") or {}), **(attributes.get("packages") or {})}
