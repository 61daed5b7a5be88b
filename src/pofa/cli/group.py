"""The command group class of pofa: flags are shown without a type in every command's help."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

__all__ = ["PofaGroup"]


def _plain_flags(params: list[Any]) -> list[Any]:
    """Flags take no value: show no type for them (typer would print ``<bool>`` beside ``--force``)."""
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", "") is None:
            param.metavar = ""
    return params


class PofaGroup(TyperGroup):
    """The command groups of pofa: their own flags and every command's flags are shown without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        """Return the group's parameters, its flags shown without a type.

        Parameters
        ----------
        ctx : click.Context
            The current context.

        Returns
        -------
        list of click.Parameter
            The parameters typer gives, with flags' metavar emptied.
        """
        return _plain_flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, TyperGroup):
            get_params = command.get_params
            command.get_params = lambda c: _plain_flags(get_params(c))  # type: ignore[method-assign,assignment]
        return command
