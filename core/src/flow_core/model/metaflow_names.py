"""Names ``metaflow`` exports that ``flow_core`` does not (yet): what each is, and what Flow
offers instead or which plugin provides it.

``from flow_core import kubernetes`` then fails with that sentence rather than a bare
"cannot import name". A name a plugin provides (``batch``, ``schedule``) is found through the
plugin registry first, so an entry here only speaks when nothing installed provides it.
"""

from __future__ import annotations

_LOCAL_OR_BATCH = "use @batch from the flow-compute-batch plugin, or local compute"
_ENVIRONMENTS = ("in Flow it comes with the flow-env plugin (run with --environment=pypi or conda): "
                 "from a Flow checkout, pip install ./plugins/flow-env")

METAFLOW_NAMES: dict[str, str] = {
    # compute
    "kubernetes": f"Metaflow's Kubernetes compute; Flow has no Kubernetes backend yet — {_LOCAL_OR_BATCH}",
    "batch": "Metaflow's AWS Batch compute; in Flow it comes with the flow-compute-batch plugin: "
             "from a Flow checkout, pip install ./plugins/flow-compute-batch",
    "slurm": f"a Metaflow extension's Slurm compute; Flow has no Slurm backend — {_LOCAL_OR_BATCH}",
    # environments
    "conda": f"Metaflow's per-step Conda environment; {_ENVIRONMENTS}",
    "conda_base": f"Metaflow's flow-wide Conda environment; {_ENVIRONMENTS}",
    "pypi": f"Metaflow's per-step PyPI environment; {_ENVIRONMENTS}",
    "pypi_base": f"Metaflow's flow-wide PyPI environment; {_ENVIRONMENTS}",
    "uv": "Metaflow's uv-managed environment; Flow has none, but its @pypi (the flow-env plugin) resolves and "
          "installs with uv",
    # features
    "secrets": "Metaflow's @secrets; in Flow it comes with the flow-secrets-aws plugin: "
               "from a Flow checkout, pip install ./plugins/flow-secrets-aws",
    "S3": "Metaflow's S3 client (metaflow.S3); in Flow it comes with the flow-datastore-s3 plugin: "
          "from a Flow checkout, pip install ./plugins/flow-datastore-s3",
    "argo_workflows": "Metaflow's Argo Workflows scheduler; Flow has none — use AWS Step Functions "
                      "from the flow-sched-sfn plugin",
    "airflow": "Metaflow's Airflow scheduler; Flow has none — use AWS Step Functions from the flow-sched-sfn plugin",
    "step_functions": "Metaflow's AWS Step Functions scheduler; in Flow it comes with the flow-sched-sfn plugin "
                      "(`python flow.py step-functions create`): from a Flow checkout, pip install ./plugins/flow-sched-sfn",
    "exit_hook": "Metaflow's @exit_hook; Flow has none yet — put the clean-up in the end step, "
                 "or wrap a step's body in try/finally",
    "nvidia": f"an extension's GPU compute; Flow has none — {_LOCAL_OR_BATCH} (@batch(gpu=1))",
    # mutators and custom decorators (Metaflow 2.16+)
    "FlowMutator": "Metaflow's FlowMutator; Flow has none — a plugin adds flow decorators through the "
                   "flow_flow_decorators hook (see flow_core.plugin_api)",
    "StepMutator": "Metaflow's StepMutator; Flow has none — a plugin adds step decorators through the "
                   "flow_step_decorators hook (see flow_core.plugin_api)",
    "user_step_decorator": "Metaflow's user_step_decorator; Flow has none — a plugin adds step decorators "
                           "through the flow_step_decorators hook (see flow_core.plugin_api)",
    # client
    "metadata": "Metaflow's metadata() switch; in Flow the backend comes from configuration "
                "(METAFLOW_DEFAULT_METADATA) and get_metadata() tells which is in use",
    "default_metadata": "Metaflow's default_metadata(); in Flow the backend comes from configuration "
                        "(METAFLOW_DEFAULT_METADATA) and get_metadata() tells which is in use",
    "Checkpoint": "an extension's checkpointing; Flow has none — save progress as artifacts and resume the run",
    "profile": "Metaflow's profile() timer; Flow has none — use time.perf_counter() in the step",
    "MetaflowException": "Metaflow's base exception; Flow's is flow_core.FlowError",
    "MetaflowNotFound": "Metaflow's not-found error; Flow's is flow_core.errors.NotFound (also a KeyError)",
}


def explain(name: str) -> str | None:
    """The sentence for a Metaflow name Flow lacks: ``"`kubernetes` is Metaflow's …"``."""
    text = METAFLOW_NAMES.get(name)
    return f"`{name}` is {text}" if text else None
