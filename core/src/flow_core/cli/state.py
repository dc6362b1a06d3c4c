"""Options shared by every command, and the one place errors become a plain sentence."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Callable, NoReturn

import attrs
import click

from ..console import NORMAL, QUIET, VERBOSE, Console
from ..errors import FlowError
from ..plugins import PluginRegistry, current_settings, get_registry
from ..settings import Settings


@attrs.define
class CliState:
    """What the global options said; handed from ``flow`` to the per-flow commands."""

    overrides: dict[str, str | None] = attrs.Factory(dict)
    verbosity: int = NORMAL
    debug: bool = False

    def settings(self) -> Settings:
        return current_settings(self.overrides)

    def registry(self) -> PluginRegistry:
        return get_registry()

    def console(self) -> Console:
        return Console(self.verbosity)


def global_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options both ``flow`` and ``python myflow.py`` accept before the command."""
    options = [
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
    """Run a click command; turn every error into one line and an exit status."""
    debug = "--debug" in args or bool(os.environ.get("FLOW_DEBUG"))
    try:
        result = command.main(args, prog_name=prog_name, standalone_mode=False, obj=obj)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FlowError as exc:
        if debug:
            traceback.print_exc()
        click.echo(click.style("Error: ", fg="red", bold=True) + exc.message, err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.echo(
            click.style("Internal error: ", fg="red", bold=True)
            + f"{type(exc).__name__}: {exc}. This is a bug in Flow or a plugin; rerun with --debug for the traceback.",
            err=True,
        )
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)
