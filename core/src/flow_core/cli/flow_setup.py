"""What a command does with a flow before anything else: read its configs, check its flow
decorators, and place the run in its @project branch.

The results go into the command's settings overrides, so every task of the run (forked,
a new interpreter, or remote) gets them in its environment.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import click

from flow_core.cli.state import CliState
from flow_core.engine.run_start import add_sticky_system_tags
from flow_core.model.config import (CONFIG_VALUES_VARIABLE, flow_configs, resolve_configs,
                                    set_config_values)
from flow_core.model.decorators import flow_decorators
from flow_core.model.parameters import ParameterContext
from flow_core.model.project import PROJECT_VARIABLE, ProjectInfo, project_info
from flow_core.plugin.settings import Settings


def prepare_flow(state: CliState, configs: Mapping[str, Any] | None = None) -> ProjectInfo | None:
    """Fix the flow's configs (``configs`` by name, e.g. an origin run's; else from the
    command line), validate its flow decorators, and return its @project branch, if any."""
    flow = state.flow
    user = Settings(overrides=state.overrides).user
    if configs is None:
        configs = resolve_configs(flow.cls, state.config_files, state.config_texts,
                                  lambda name: ParameterContext(flow.name, user, name))
    set_config_values(flow.cls, configs)
    # Set even when empty: a flow started from a step of another must not inherit its values.
    state.overrides[CONFIG_VALUES_VARIABLE] = json.dumps({flow.name: dict(configs)}, default=str) if configs else ""
    state.overrides[PROJECT_VARIABLE] = ""
    decorators = flow_decorators(flow.cls)
    options = {"branch": state.branch, "production": state.production}
    for decorator in decorators:
        decorator.flow_init(flow.cls, options)
    project = next((d for d in decorators if d.name == "project"), None)
    if project is None:
        if state.branch is not None or state.production:
            raise click.UsageError(f"--branch and --production need a @project decorator on {flow.name}")
        return None
    info = project_info(flow.name, project.attributes["name"], state.production, state.branch, user)
    state.overrides[PROJECT_VARIABLE] = info.to_json()
    add_sticky_system_tags(info.system_tags)
    state.console().info(f"Project: {info.project_name}, Branch: {info.branch_name}")
    return info


def config_attributes(flow_cls: type, configs: Mapping[str, Any]) -> dict[str, Any]:
    """The configs' values by attribute name: how the run stores them, as artifacts."""
    return {attribute: configs.get(config.name) for attribute, config in flow_configs(flow_cls).items()}
