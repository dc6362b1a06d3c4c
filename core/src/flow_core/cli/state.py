"""Options shared by every command, and the one place errors become a plain sentence."""

from __future__ import annotations

import gc
import json
import os
import sys
import traceback
from typing import Any, Callable, NoReturn

import attrs
import click

from flow_core.backends.selection import Backends
from flow_core.engine.console import NORMAL, QUIET, VERBOSE, Console
from flow_core.errors import FlowError, FlowLoadError
from flow_core.model.graph import FlowGraph
from flow_core.model.names import shown, text_problem
from flow_core.plugin.settings import Settings


@attrs.frozen
class FlowTarget:
    """The flow a per-flow command acts on: its class and its file."""

    cls: type
    file: str

    @property
    def name(self) -> str:
        return self.cls.__name__

    def graph(self) -> FlowGraph:
        """The flow's graph, checked: a bad graph is reported, with file and line, before anything runs."""
        if text_problem(self.file):
            # Every task is told where its flow file is, in messages and records that are UTF-8.
            raise FlowLoadError(f"the flow file's path {shown(self.file, 200)} is not valid UTF-8 text; rename "
                                "the file or its folders")
        return FlowGraph(self.cls, self.file)


@attrs.define
class CliState:
    """What the global options said, and the flow a command acts on; handed from ``flow`` to
    the per-flow commands (plugins' included, through ``click.pass_obj``)."""

    overrides: dict[str, str | None] = attrs.Factory(dict)
    verbosity: int = NORMAL
    debug: bool = False
    flow: FlowTarget | None = None
    #: @project's --branch and --production, wherever on the command line they were given.
    branch: str | None = None
    production: bool = False
    #: --config NAME FILE and --config-value NAME JSON, by config name.
    config_files: dict[str, str] = attrs.Factory(dict)
    config_texts: dict[str, str] = attrs.Factory(dict)
    #: ``--with`` given before the command (``python flow.py --with retry run``), as Metaflow allows.
    decospecs: tuple[str, ...] = ()
    _backends: Backends | None = None

    def settings(self) -> Settings:
        return self.backends().settings

    def backends(self) -> Backends:
        """The command's backends, built once from the settings the options give."""
        if self._backends is None:
            self._backends = Backends.configured(self.overrides)
        return self._backends

    def console(self) -> Console:
        return Console(self.verbosity)


def my_latest_run_id(backends: Backends, flow_name: str) -> str | None:
    """The id of this user's latest run of the flow: what `resume`, `tag` and `verify` act on
    when no run is named."""
    mine = backends.metadata.list_runs(flow_name, tags=[f"user:{backends.settings.user}"], limit=1)
    return mine[0].run_id if mine else None


def _remember(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A click callback storing an option's value in the `CliState`, so an option can be given
    before the command (as Metaflow users type ``--branch``) or after it (as ``flow run`` does)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        state = ctx.ensure_object(CliState)
        if field in ("config_files", "config_texts"):
            for name, given in value or ():
                problem = text_problem(name) or text_problem(given)
                if problem:
                    raise click.BadParameter(f"{problem}; give names in UTF-8", ctx, param)
                getattr(state, field)[name] = given
        elif field == "production":
            state.production = state.production or bool(value)
        elif value is not None:
            problem = text_problem(value)
            if problem:
                raise click.BadParameter(f"{problem}; give names in UTF-8", ctx, param)
            state.branch = value

    return callback


class _JsonPairs(click.Tuple):
    """``NAME VALUE`` pairs that an environment variable gives as one JSON object, as
    Metaflow's ``METAFLOW_FLOW_CONFIG`` and ``METAFLOW_FLOW_CONFIG_VALUE`` do."""

    def split_envvar_value(self, rv: str) -> list[str]:
        try:
            loaded = json.loads(rv)
        except ValueError:
            loaded = None
        if not isinstance(loaded, dict):
            raise click.BadParameter("the environment variable must hold a JSON object of config names to values")
        return [item if isinstance(item, str) else json.dumps(item) for pair in loaded.items() for item in pair]


def flow_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """@project's and Config's options: ``--branch``, ``--production``, ``--config``,
    ``--config-value``. Accepted before the command and by the commands that start runs."""
    options = [
        click.option("--branch", default=None, expose_value=False, callback=_remember("branch"),
                     envvar="METAFLOW_BRANCH", show_envvar=True,
                     help="Use this branch of the flow's @project (default: user.<your name>)."),
        click.option("--production", is_flag=True, default=False, expose_value=False, envvar="METAFLOW_PRODUCTION",
                     show_envvar=True, callback=_remember("production"), help="Use the @project's production branch."),
        click.option("--config", nargs=2, multiple=True, metavar="NAME FILE", expose_value=False,
                     type=_JsonPairs([str, str]), envvar="METAFLOW_FLOW_CONFIG", show_envvar=True,
                     callback=_remember("config_files"),
                     help="Read config NAME from FILE (the variable: a JSON object of names to files)."),
        click.option("--config-value", nargs=2, multiple=True, metavar="NAME JSON", expose_value=False,
                     type=_JsonPairs([str, str]), envvar="METAFLOW_FLOW_CONFIG_VALUE", show_envvar=True,
                     callback=_remember("config_texts"),
                     help="Give config NAME as a JSON value (the variable: a JSON object of names to values)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _environment(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(CliState).overrides["METAFLOW_DEFAULT_ENVIRONMENT"] = value


#: Options Metaflow's tooling passes that change nothing in Flow: accepted so that its
#: command lines run unchanged (``METAFLOW_<OPTION>`` as Metaflow reads them).
METAFLOW_NO_OPS = [
    click.option("--event-logger", default=None, expose_value=False, envvar="METAFLOW_EVENT_LOGGER", hidden=True,
                 help="Accepted for Metaflow's command lines; Flow has no event logger."),
    click.option("--monitor", default=None, expose_value=False, envvar="METAFLOW_MONITOR", hidden=True,
                 help="Accepted for Metaflow's command lines; Flow has no monitor."),
    click.option("--pylint/--no-pylint", default=None, expose_value=False, envvar="METAFLOW_PYLINT", hidden=True,
                 help="Accepted for Metaflow's command lines; Flow does not run pylint."),
]


def global_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options both ``flow`` and ``python myflow.py`` accept before the command."""
    function = flow_options(function)
    options = [*METAFLOW_NO_OPS,
        click.option("--environment", default=None, expose_value=False, callback=_environment,
                     envvar="METAFLOW_ENVIRONMENT",
                     help="Where steps get their packages: 'local', or 'pypi'/'conda' for @pypi and @conda "
                          "(METAFLOW_DEFAULT_ENVIRONMENT)."),
        click.option("--datastore", default=None, help="Datastore backend (METAFLOW_DEFAULT_DATASTORE)."),
        click.option("--metadata", default=None, help="Metadata backend (METAFLOW_DEFAULT_METADATA)."),
        click.option("--quiet", "-q", is_flag=True, help="Print only errors and the result."),
        click.option("--verbose", "-v", is_flag=True, help="Print more about what happens."),
        click.option("--debug", is_flag=True, help="Show tracebacks of errors."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def apply_global_options(ctx: click.Context, datastore, metadata, quiet, verbose, debug) -> CliState:
    state = ctx.ensure_object(CliState)
    if datastore:
        state.overrides["METAFLOW_DEFAULT_DATASTORE"] = datastore
    if metadata:
        state.overrides["METAFLOW_DEFAULT_METADATA"] = metadata
    if quiet:
        state.verbosity = QUIET
    if verbose:
        state.verbosity = VERBOSE
    state.debug = state.debug or debug
    return state


def run_cleanly(command: click.Command, args: list[str], prog_name: str, obj: CliState | None = None) -> NoReturn:
    """Run a click command; turn every error into one line and an exit status; end the process."""
    # What is in memory by now (Flow's modules and what they import; with `python myflow.py`,
    # the flow's module too) stays until the process ends. Frozen, the collector passes over
    # it, during the command and in the full collection at exit, which walked it all only to
    # end the process (hello's `flow run`: 453 ms without, 400 ms with, median of 30). What the
    # command goes on to create (`flow run`'s flow module, a step's objects in `flow step`) is
    # still collected and finalized as usual, reference cycles included.
    gc.freeze()
    sys.exit(_exit_status(command, args, prog_name, obj))


def _exit_status(command: click.Command, args: list[str], prog_name: str, obj: CliState | None) -> int:
    debug = "--debug" in args or bool(os.environ.get("FLOW_DEBUG"))
    try:
        result = command.main(args, prog_name=prog_name, standalone_mode=False, obj=obj)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except FlowError as exc:
        if debug:
            traceback.print_exc()
        click.echo(click.style("Error: ", fg="red", bold=True) + exc.message, err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:
        if debug:
            raise
        click.echo(
            click.style("Internal error: ", fg="red", bold=True)
            + f"{type(exc).__name__}: {exc}. This is a bug in Flow or a plugin; rerun with --debug for the traceback.",
            err=True,
        )
        return 2
    return result if isinstance(result, int) else 0
