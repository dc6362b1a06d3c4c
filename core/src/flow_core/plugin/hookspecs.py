"""The hooks a Flow plugin can implement: the reference for plugin authors.

A plugin is a module of hook implementations, registered through the ``flow.plugins``
entry-point group, one entry point per distribution, named after it::

    # plugins/flow-datastore-s3/pyproject.toml
    [project.entry-points."flow.plugins"]
    flow-datastore-s3 = "flow_datastore_s3.plugin"

    # flow_datastore_s3/plugin.py
    from flow_core.plugin_api import Backend, hookimpl

    @hookimpl
    def flow_storage_backends():
        return [Backend("s3", "flow_datastore_s3.storage:S3Storage")]

Backend hooks take no arguments and return `Backend` descriptors: a name and the class, or
its ``"module:Class"`` import path so that a heavy dependency (boto3) is imported only when
that backend is selected. The class's own ``name`` attribute must equal the descriptor's.
Backends are chosen by name from configuration, so the order plugins load in never matters.
Flow's own local backends are registered through these same hooks.

Every hook returns a list (possibly empty); a plugin implements only the hooks it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from flow_core.model.cards.card_class import MetaflowCard
    from flow_core.model.decorators import FlowDecorator, StepDecorator
    from flow_core.plugin_api import Backend, Setting

PROJECT = "flow"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def flow_storage_backends() -> "list[Backend]":
    """Datastore storage backends this plugin provides.

    The class subclasses `flow_core.plugin_api.StorageBackend`: it moves named blobs
    (batched put/get/exists/list, atomic per object). Flow's content-addressed store sits
    on top, so the backend never sees artifacts, hashes or compression. Selected by
    ``METAFLOW_DEFAULT_DATASTORE`` or ``--datastore``::

        @hookimpl
        def flow_storage_backends():
            return [Backend("s3", "flow_datastore_s3.storage:S3Storage")]

    Test it with ``flow_core.testing.StorageConformance``.
    """


@hookspec
def flow_compute_backends() -> "list[Backend]":
    """Compute backends this plugin provides.

    The class subclasses `flow_core.plugin_api.ComputeBackend`: given a `TaskSpec`, it runs
    the task command line (``TaskSpec.command()``) somewhere and reports its output and exit
    status. Selected by ``METAFLOW_DEFAULT_COMPUTE`` or ``flow run --compute NAME``::

        @hookimpl
        def flow_compute_backends():
            return [Backend("batch", "flow_compute_batch.compute:BatchCompute")]

    Its ``from_settings(settings, backends)`` also receives the command's `Backends`, so
    it shares the run's storage and metadata instead of opening its own. A backend whose
    tasks run on other machines sets ``remote = True``: the runtime then refuses a datastore
    only this machine reaches, and relays a local-only metadata backend's records through the
    datastore. Such a backend ships the code with `flow_core.plugin_api.CodePackage` and
    fetches it from ``StorageBackend.location(key)``.

    Test it with ``flow_core.testing.ComputeConformance``.
    """


@hookspec
def flow_metadata_backends() -> "list[Backend]":
    """Metadata backends this plugin provides.

    The class subclasses `flow_core.plugin_api.MetadataBackend`: it allocates run and task
    ids, records every attempt, artifact pointer, tag and field, and answers the Client API's
    queries. Selected by ``METAFLOW_DEFAULT_METADATA`` or ``--metadata``::

        @hookimpl
        def flow_metadata_backends():
            return [Backend("service", "flow_metadata_service.client:ServiceMetadata")]

    Test it with ``flow_core.testing.MetadataConformance``.
    """


@hookspec
def flow_scheduler_backends() -> "list[Backend]":
    """Schedulers this plugin provides: where ``flow deploy`` puts a flow for production.

    The class subclasses `flow_core.plugin_api.SchedulerBackend` (deploy, trigger, list the
    deployments, delete); like a compute backend, it is built with ``from_settings(settings,
    backends)``. Selected by ``METAFLOW_DEFAULT_SCHEDULER`` or
    ``flow deploy --scheduler NAME``::

        @hookimpl
        def flow_scheduler_backends():
            return [Backend("local", "flow_core.backends.local_scheduler:LocalScheduler")]
    """


@hookspec
def flow_environment_backends() -> "list[Backend]":
    """Environments this plugin provides: which Python, with which packages, each step runs in.

    The class subclasses `flow_core.plugin_api.EnvironmentBackend`: before any task starts it
    resolves and builds what the steps' decorators ask for (``@pypi``) and returns an
    `flow_core.plugin_api.Interpreter` per step; like a compute backend, it is built with
    ``from_settings(settings, backends)``. Selected by ``METAFLOW_DEFAULT_ENVIRONMENT`` or
    ``--environment NAME``::

        @hookimpl
        def flow_environment_backends():
            return [Backend("pypi", "flow_env.environment:PypiEnvironment")]
    """


@hookspec
def flow_step_decorators() -> "list[type[StepDecorator]]":
    """Step decorators this plugin adds, as `flow_core.plugin_api.StepDecorator` subclasses.

    Each becomes importable as ``from flow_core import <name>`` and attachable to every step
    with ``run --with <name>``. The decorator's hooks run in the task and in the runtime::

        class Sleepy(StepDecorator):
            name = "sleepy"
            defaults = {"seconds": 1}

            def task_pre_step(self, ctx):
                time.sleep(self.attributes["seconds"])

        @hookimpl
        def flow_step_decorators():
            return [Sleepy]
    """


@hookspec
def flow_flow_decorators() -> "list[type[FlowDecorator]]":
    """Flow-level decorators (``@schedule``), as `flow_core.plugin_api.FlowDecorator` subclasses.

    Like step decorators they are importable from ``flow_core`` by name::

        class Owner(FlowDecorator):
            name = "owner"
            defaults = {"team": None}

        @hookimpl
        def flow_flow_decorators():
            return [Owner]
    """


@hookspec
def flow_card_types() -> "list[type[MetaflowCard]]":
    """Card types this plugin adds, as `flow_core.plugin_api.MetaflowCard` subclasses (Metaflow's
    contract: a ``type`` name and ``render(task)`` returning the card's HTML).

    ``@card(type=NAME, options={...})`` then renders the step's tasks with it. ``render``
    receives a `flow_core.cards.CardTask` (``task.pathspec``, ``task.data.NAME``); with
    ``ALLOW_USER_COMPONENTS = True`` the card is given the HTML of what the step appended
    (``components``); with ``RUNTIME_UPDATABLE = True``, ``render_runtime(task, data)`` shows
    it while the task runs, each time the step calls ``current.card.refresh(data)``::

        class Scores(MetaflowCard):
            type = "scores"

            def __init__(self, options=None, **kwargs):
                self.title = (options or {}).get("title", "Scores")

            def render(self, task):
                return f"<html><body><h1>{self.title}</h1>{task.data.score}</body></html>"

        @hookimpl
        def flow_card_types():
            return [Scores]

    Type names are letters, digits and underscores, and unique among installed plugins.
    """


@hookspec
def flow_exports() -> "dict[str, str]":
    """Other names ``from flow_core import NAME`` gives (a client such as ``S3``), as
    ``"module:attribute"`` paths imported only when the name is first asked for::

        @hookimpl
        def flow_exports():
            return {"S3": "flow_datastore_s3.s3_client:S3"}
    """


@hookspec
def flow_cli_commands() -> "list[click.Command]":
    """Extra ``flow`` sub-commands that need no flow (``flow metadata-service …``).

    Return click commands or groups; they are added to the ``flow`` command by name::

        @click.command("hello")
        def hello():
            click.echo("hi")

        @hookimpl
        def flow_cli_commands():
            return [hello]
    """


@hookspec
def flow_flow_commands() -> "list[click.Command]":
    """Commands that act on one flow, reached both as ``python myflow.py NAME …`` and as
    ``flow NAME myflow.py …`` (``step-functions create``, as Metaflow users type it).

    The command finds the flow, the configured backends and the console in the
    `flow_core.plugin_api.CliState` that ``click.pass_obj`` hands it::

        @click.command("lines")
        @click.pass_obj
        def lines(state):
            click.echo(f"{state.flow.name}: {len(state.flow.graph().nodes)} steps")

        @hookimpl
        def flow_flow_commands():
            return [lines]

    A command (or a group's sub-command) with ``passes_flow_parameters = True`` gets one
    option per flow parameter, none required, as ``trigger`` has; `flow_core.plugin_api.given_parameters`
    turns its keyword arguments into the parameters given.
    """


@hookspec
def flow_settings() -> "list[Setting]":
    """Configuration settings this plugin reads, so ``flow configure show`` lists them.

    Values resolve like every setting: command-line option, environment, profile file,
    default::

        @hookimpl
        def flow_settings():
            return [Setting("METAFLOW_S3_ENDPOINT_URL", None, "S3-compatible endpoint")]
    """
