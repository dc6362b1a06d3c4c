"""``@pypi``, ``@pypi_base``, ``@conda`` and ``@conda_base``, spelled and merged as Metaflow's.

They only say what a step needs; the environment (`flow_env.environment`) reads them before
the run starts. A step-level value extends or overrides the flow-level one: packages are
merged (the step's version wins), ``python`` and ``disabled`` fall back to the flow's.
"""

from __future__ import annotations

from typing import Any, Mapping

from flow_core.plugin_api import DecoratorError, FlowDecorator, StepDecorator

#: The environments that honour these decorators, as Metaflow names them in its message.
ENVIRONMENTS = ("conda", "pypi")


def _check_packages(name: str, packages: Any) -> None:
    if not isinstance(packages, Mapping) or not all(isinstance(k, str) for k in packages):
        raise DecoratorError(f"@{name}(packages=...) takes a dict of package names to versions, "
                             f"e.g. {{'pandas': '2.2.3'}}; got {packages!r}")
    for package, version in packages.items():
        if not isinstance(version, str):
            raise DecoratorError(f"@{name}: the version of {package} must be a string such as '2.2.3' "
                                 f"or '>=2.0' (or '' for any); got {version!r}")


class pypi(StepDecorator):
    """The PyPI packages (and Python version) the step runs with."""

    name = "pypi"
    defaults = {"packages": {}, "python": None, "disabled": None}
    environments = ENVIRONMENTS

    def step_init(self, flow_cls: type, graph: Any, step_name: str) -> None:
        _check_packages(self.name, self.attributes["packages"])


class conda(StepDecorator):
    """The conda packages (and Python version) the step runs with."""

    name = "conda"
    defaults = {"packages": {}, "libraries": {}, "python": None, "disabled": None}
    environments = ENVIRONMENTS

    def step_init(self, flow_cls: type, graph: Any, step_name: str) -> None:
        _check_packages(self.name, self.attributes["packages"])
        _check_packages(self.name, self.attributes["libraries"])


class pypi_base(FlowDecorator):
    """The PyPI packages (and Python version) of every step of the flow."""

    name = "pypi_base"
    defaults = {"packages": {}, "python": None, "disabled": None}
    environments = ENVIRONMENTS

    def flow_init(self, flow_cls: type, options: Mapping[str, Any]) -> None:
        _check_packages(self.name, self.attributes["packages"])


class conda_base(FlowDecorator):
    """The conda packages (and Python version) of every step of the flow."""

    name = "conda_base"
    defaults = {"packages": {}, "libraries": {}, "python": None, "disabled": None}
    environments = ENVIRONMENTS

    def flow_init(self, flow_cls: type, options: Mapping[str, Any]) -> None:
        _check_packages(self.name, self.attributes["packages"])
        _check_packages(self.name, self.attributes["libraries"])
