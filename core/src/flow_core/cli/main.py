"""The ``flow`` command."""

from __future__ import annotations

import sys

import click

from flow_core.cli import deploy_commands
from flow_core.cli.flow_command import FLOW_COMMANDS, make_flow_cli
from flow_core.cli.state import CliState, apply_global_options, global_options, run_cleanly
from flow_core.model.loader import load_flow_class
from flow_core.plugin.descriptor import KINDS
from flow_core.plugin.registry import get_registry


class FlowCommandGroup(click.Group):
    """Adds the commands plugins contribute, loading plugins only when one is asked for."""

    def _plugin_commands(self) -> dict[str, click.Command]:
        commands = {command.name: command for command in get_registry().cli_commands()}
        for command in get_registry().flow_commands():  # `flow NAME FILE …` is `python FILE NAME …`
            commands.setdefault(command.name, _forwarder(command))
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._plugin_commands().get(name)


@click.group(cls=FlowCommandGroup, help="Flow: data-science workflows, on a laptop or on AWS.")
@click.version_option(package_name="flow-core", prog_name="flow")
@global_options
@click.pass_context
def cli(ctx, **options):
    apply_global_options(ctx, **options)


def _forwarder(command: click.Command) -> click.Command:
    """``flow VERB FILE ARGS…`` is ``python FILE VERB ARGS…``."""
    verb = command.name

    @click.command(
        verb,
        help=f"{command.help} `flow {verb} FILE --help` lists its options.",
        short_help=command.get_short_help_str(limit=60),
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    )
    @click.argument("flow_file", required=False, metavar="FILE")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @click.pass_context
    def forward(ctx, flow_file, args):
        if flow_file is None or flow_file.startswith("-"):
            click.echo(f"Usage: flow {verb} FILE [OPTIONS]\n\n  {ctx.command.help}")
            ctx.exit(0 if flow_file in ("--help", "-h") else 2)
        flow_cls = load_flow_class(flow_file)
        group = make_flow_cli(flow_cls, flow_file, forwarded=True)
        sub_ctx = group.make_context("flow", [verb, *args], obj=ctx.obj)
        with sub_ctx:
            return group.invoke(sub_ctx)

    return forward


for _command in FLOW_COMMANDS:
    cli.add_command(_forwarder(_command))


@cli.command(help="List installed plugins. With their versions and what they provide.")
@click.pass_obj
def plugins(state: CliState):
    registry = state.backends().registry
    for info in registry.plugins():
        click.echo(click.style(f"{info.name} {info.version}", bold=True))
        for kind in KINDS:
            names = [entry.name for entry in info.backends if entry.kind == kind]
            if names:
                click.echo(f"  {kind + ':':13} {', '.join(names)}")
        click.echo(f"  {'hooks:':13} {', '.join(info.hooks) or '(none)'}")
    for name, why in sorted(registry.failures.items()):
        click.echo(click.style(f"{name}: failed to load ({why})", fg="red"))


cli.add_command(deploy_commands.deployments)


@cli.group(help="Inspect configuration.")
def configure():
    pass


@configure.command(help="Print every setting's effective value and where it came from.")
@click.pass_obj
def show(state: CliState):
    settings = state.settings()
    rows = settings.all()
    values = ["(unset)" if r.value is None else "****" if "AUTH_KEY" in r.name else r.value for r in rows]
    name_width = max(len(row.name) for row in rows)
    value_width = max(len(value) for value in values)
    for row, value in zip(rows, values):
        click.echo(f"{row.name:<{name_width}}  {value:<{value_width}}  " + click.style(row.source, dim=True))
    click.echo(click.style(f"user: {settings.user}; local root: {settings.local_root}", dim=True))


def main() -> None:
    run_cleanly(cli, sys.argv[1:], prog_name="flow", obj=CliState())
