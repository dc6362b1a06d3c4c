"""Each step's AWS Batch job definition for a deployed flow, built from flow-compute-batch's parts.

The definition holds everything that is the same for every task of the step (the image and
resources, the bootstrap, the task command line, the environment); a state submits it with
only the ``Ref::`` parameters of the README's table, which keeps every submission tiny.
"""

from __future__ import annotations

import attrs
from flow_compute_batch.api import JobShape, container_command, container_environment, default_image, fixed_definition
from flow_core.plugin_api import CodePackage, DeployRequest, Settings, StorageBackend, TaskSpec, task_environment

from .internal_decorator import EXECUTION_VARIABLE, INTERNAL_DECORATOR

#: The Batch parameters a state fills in (see the README).
RUN_ID, TASK_ID, INPUT_PATHS, RETRY_COUNT, SPLIT_INDEX, PARAMETERS, EXECUTION = (
    "run_id", "task_id", "input_paths", "retry_count", "split_index", "parameters", "execution")
#: The ``_parameters`` task `flow init` makes.
PARAMETERS_TASK = "params"


def ref(name: str) -> str:
    return f"Ref::{name}"


def step_commands(spec: TaskSpec, flow_file: str, in_foreach: bool) -> list[list[str]]:
    """What every task of the step runs: building its environment when it has one (``@pypi``),
    then ``flow step`` with its per-task values as ``Ref::`` placeholders."""
    *setup, template = spec.remote_commands(flow_file)
    words = []
    replace = {"--run-id": ref(RUN_ID), "--task-id": ref(TASK_ID), "--input-paths": ref(INPUT_PATHS),
               "--retry-count": ref(RETRY_COUNT)}
    skip = False
    for word in template:
        if skip:
            skip = False
            continue
        words.append(word)
        if word in replace:
            words.append(replace[word])
            skip = True
    if in_foreach:
        words += ["--split-index", ref(SPLIT_INDEX)]
    return [*setup, words + ["--with", INTERNAL_DECORATOR]]


def init_command(flow_file: str, token: str, request: DeployRequest) -> list[str]:
    """``flow init``: the run and its parameters, before ``start`` (asked again on a retry, it
    changes nothing), in the deployment's @project branch and with its configs."""
    words = ["python3", "-m", "flow_core", "init", flow_file, "--run-id", ref(RUN_ID), "--task-id",
             PARAMETERS_TASK, "--parameters-json", ref(PARAMETERS), "--production-token", token,
             "--runtime", "step-functions", *request.init_options]
    for tag in request.tags:
        words += ["--tag", tag]
    return words


def step_definitions(request: DeployRequest, package: CodePackage, package_url: str, storage: StorageBackend,
                     settings: Settings, token: str, foreach_steps: set[str]) -> dict[str, tuple[str, dict]]:
    """Step name -> (name, container properties) of its job definition. Names carry the
    content's digest, so a redeploy of unchanged steps registers nothing."""
    environment = container_environment({**task_environment(settings, token), **request.environment}, package,
                                        storage)
    image = default_image(settings)
    role = settings.get("METAFLOW_ECS_S3_ACCESS_IAM_ROLE")
    definitions = {}
    for step_name, spec in request.steps.items():
        spec = _with_tags(spec, request.tags)
        commands = step_commands(spec, package.flow_file, step_name in foreach_steps)
        if step_name == "start":
            commands.insert(0, init_command(package.flow_file, token, request))
        shape = JobShape.from_resources(spec.resources, image, role)
        command = container_command(package, package_url, *commands,
                                    job_environment={EXECUTION_VARIABLE: ref(EXECUTION)})
        # The step's own variables too: @environment's, and the name of its @pypi environment.
        definitions[step_name] = fixed_definition(shape, command, {**environment, **spec.environment})
    return definitions


def _with_tags(spec: TaskSpec, tags: tuple[str, ...]) -> TaskSpec:
    return attrs.evolve(spec, tags=tuple(dict.fromkeys((*spec.tags, *tags))))
