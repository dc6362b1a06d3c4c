"""The command group of one flow: what ``python myflow.py …`` and ``flow … myflow.py`` run.

The commands themselves are module-level click commands (`run_commands`, `inspect`,
`deploy_commands`, and those plugins add through the ``flow_flow_commands`` hook); they find
the flow they act on in the `CliState`. Building the group for a flow only adds the flow's
parameters as options of the commands that take them.
"""

from __future__ import annotations

import copy
import os
import sys

import click

from flow_core.cli import card_commands, deploy_commands, inspect, run_commands, tag_commands, verify_command
from flow_core.cli.state import CliState, FlowTarget, apply_global_options, global_options, run_cleanly
from flow_core.model.config import Config
from flow_core.model.parameters import flow_parameters
from flow_core.plugin.registry import get_registry

#: The core's per-flow commands, in the order ``--help`` lists them.
FLOW_COMMANDS = (
    run_commands.run, run_commands.resume, inspect.show, inspect.check, inspect.logs, inspect.dump,
    verify_command.verify, tag_commands.tag, card_commands.card, inspect.output_dot, inspect.version, inspect.help_command,
    deploy_commands.deploy, deploy_commands.trigger, deploy_commands.undeploy, run_commands.init,
    run_commands.step,
)
#: Commands whose options include the flow's parameters.
TAKES_PARAMETERS = {"run", "init"}
#: Commands whose options include the flow's parameters, none of them required or defaulted
#: here: what the user leaves out, the run they start fills in.
PASSES_PARAMETERS = {"trigger"}


def flow_commands() -> list[click.Command]:
    """The core's per-flow commands, then those installed plugins add."""
    return [*FLOW_COMMANDS, *get_registry().flow_commands()]


def with_parameter_options(command: click.Command, flow_cls: type, passed_on: bool = False) -> click.Command:
    """A copy of ``command`` with one option per parameter of the flow."""
    options = [p.option(from_environment=not passed_on) for p in flow_parameters(flow_cls).values()
               if not isinstance(p, Config)]
    if passed_on:
        for option in options:
            option.default, option.required, option.show_default = None, False, False
    command = copy.copy(command)
    command.params = [*command.params, *options]
    return command


class FlowGroup(click.Group):
    """A flow's commands. Reached as ``flow VERB FILE …``, a command's usage line reads that
    way (``flow run FILE [OPTIONS]``), not as the ``python FILE VERB …`` it runs as."""

    forwarded_file: str | None = None

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        if self.forwarded_file is not None and name is not None:
            name = f"{name} {self.forwarded_file}"
        return name, command, rest


def make_flow_cli(flow_cls: type, flow_file: str, forwarded: bool = False) -> click.Group:
    """The flow's command group; ``forwarded`` when reached as ``flow VERB FILE …``."""
    target = FlowTarget(flow_cls, os.path.abspath(flow_file))

    @click.group(name=flow_cls.__name__, cls=FlowGroup, help=(flow_cls.__doc__ or "").strip() or None,
                 invoke_without_command=True)
    @global_options
    @click.option("--with", "decospecs", multiple=True, metavar="DECORATOR",
                  help="Attach a step decorator to every step of the command's run (as after it).")
    @click.pass_context
    def flow_group(ctx: click.Context, decospecs: tuple[str, ...], **options: object) -> None:
        state = apply_global_options(ctx, **options)
        state.flow = target
        state.decospecs = (*state.decospecs, *decospecs)
        if ctx.invoked_subcommand is None:  # `python myflow.py`: check it, and say what it can do
            ctx.invoke(inspect.check)
            names = ", ".join(sorted(ctx.command.list_commands(ctx)))
            click.echo(f"Commands: {names}. `python {ctx.info_name} COMMAND --help` tells more; "
                       f"`python {ctx.info_name} run` runs the flow.")

    if forwarded:
        flow_group.forwarded_file = flow_file

    for command in flow_commands():
        if command.name in TAKES_PARAMETERS | PASSES_PARAMETERS:
            command = with_parameter_options(command, flow_cls, passed_on=command.name in PASSES_PARAMETERS)
        flow_group.add_command(_plugin_parameter_options(command, flow_cls))
    return flow_group


def _plugin_parameter_options(command: click.Command, flow_cls: type) -> click.Command:
    """A plugin's command (or a group's sub-command) that sets ``passes_flow_parameters``
    gets the flow's parameters as options, as ``trigger`` does."""
    if getattr(command, "passes_flow_parameters", False):
        return with_parameter_options(command, flow_cls, passed_on=True)
    if isinstance(command, click.Group):
        group = copy.copy(command)
        group.commands = {name: _plugin_parameter_options(sub, flow_cls) for name, sub in command.commands.items()}
        return group
    return command


def main_for_flow(flow_cls: type, flow_file: str) -> None:
    """``python myflow.py …``: run the flow's commands with the process's arguments."""
    run_cleanly(make_flow_cli(flow_cls, flow_file), sys.argv[1:], prog_name=os.path.basename(flow_file),
                obj=CliState())
