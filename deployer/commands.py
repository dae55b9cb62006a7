"""Commands other distributions add to ``deployer``: entry points of the group
``deployer.commands`` (name -> a typer app or click command), e.g. ``router`` from
deployer-router. They are looked up only when asked for by name (or listed by ``--help``),
so every other command starts without scanning or importing them. A known command whose
distribution is missing answers with the ``pip install`` that brings it.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

import typer
from typer.core import TyperGroup

GROUP = "deployer.commands"
# Commands that deployer's own distributions add: named in --help and in the message
# when they are not installed.
KNOWN_COMMANDS = {"router": "deployer-router"}


def command_entry_points() -> dict[str, EntryPoint]:
    """The installed ``deployer.commands`` entry points, by command name."""
    return {entry.name: entry for entry in entry_points(group=GROUP)}


def _as_command(loaded: Any, name: str) -> Any:
    """A typer app (or a command of typer's click) as the command ``name``."""
    command = typer.main.get_command(loaded) if isinstance(loaded, typer.Typer) else loaded
    command.name = name
    return command


def _missing(name: str, distribution: str) -> Any:
    """A stand-in that says which distribution brings ``deployer NAME``, and exits 3."""
    stub = typer.Typer(add_completion=False)

    @stub.command(
        name=name,
        help=f"(not installed: pip install {distribution})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
    def explain() -> None:
        from deployer import output
        from deployer.errors import MissingDependencyError

        error = MissingDependencyError(
            f"`deployer {name}` comes with the {distribution} distribution, which is not installed",
            hint=f"pip install {distribution}",
        )
        output.error(error.message, error.hint)
        raise typer.Exit(error.exit_code)

    return _as_command(stub, name)


class CommandGroup(TyperGroup):
    """deployer's top-level group: its own commands, then the plugins' on demand."""

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        extra = (set(command_entry_points()) | set(KNOWN_COMMANDS)) - set(own)
        return [*own, *sorted(extra)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry = command_entry_points().get(cmd_name)
        if entry is not None:
            command = _as_command(entry.load(), cmd_name)
            self.commands[cmd_name] = command  # loaded once per process
            return command
        distribution = KNOWN_COMMANDS.get(cmd_name)
        return _missing(cmd_name, distribution) if distribution else None
