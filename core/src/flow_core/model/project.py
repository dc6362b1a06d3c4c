"""``@project``: flows of one project, run on branches (``user.<name>``, ``test.<b>``, ``prod``).

The command line works out the project and branch once (`project_info`); the result travels
to every task in `PROJECT_VARIABLE`, where `current.project_name` and friends read it.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import attrs

from flow_core.errors import FlowError

#: The variable that tells a task its project and branch (JSON of `ProjectInfo`).
PROJECT_VARIABLE = "FLOW_PROJECT"
#: Who a branch belongs to when no user runs it (an orchestrator), as in Metaflow.
OWNER_VARIABLE = "METAFLOW_OWNER"

_INVALID = re.compile(r"[^a-z0-9_]")
MAX_PROJECT_NAME_LENGTH = 128


class ProjectError(FlowError):
    """A @project name or a --branch is not a valid name."""


@attrs.frozen
class ProjectInfo:
    """Where a run of a @project flow belongs."""

    project_name: str
    branch_name: str
    project_flow_name: str
    is_production: bool
    is_user_branch: bool

    @property
    def system_tags(self) -> list[str]:
        return [f"project:{self.project_name}", f"project_branch:{self.branch_name}"]

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))


def _check(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ProjectError("@project needs a name; try @project(name='some_name')" if what == "name"
                           else f"the {what} must be a non-empty string")
    if _INVALID.search(value):
        raise ProjectError(f"the {'@project name' if what == 'name' else what} {value!r} must contain only "
                           "lowercase alphanumeric characters and underscores")
    if len(value) > MAX_PROJECT_NAME_LENGTH:
        raise ProjectError(f"the {'@project name' if what == 'name' else what} must be shorter than "
                           f"{MAX_PROJECT_NAME_LENGTH} characters")
    return value


def project_info(flow_name: str, project_name: Any, production: bool, branch: str | None,
                 user: str) -> ProjectInfo:
    """The branch a run goes to, named as Metaflow names it."""
    _check("name", project_name)
    if branch:
        _check("branch name", branch)
        branch_name = f"prod.{branch}" if production else f"test.{branch}"
    elif production:
        branch_name = "prod"
    else:
        branch_name = f"user.{os.environ.get(OWNER_VARIABLE) or user}"
    return ProjectInfo(project_name, branch_name, f"{project_name}.{branch_name}.{flow_name}",
                       bool(production), not branch and not production)


def carried_project() -> dict[str, Any]:
    """The project a task belongs to, from its environment (empty when none)."""
    text = os.environ.get(PROJECT_VARIABLE)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
