"""Placeholder for a subcommand that is not built yet: it says so and exits non-zero."""

from __future__ import annotations

import click

from noisegame_cli.errors import UserError


def pending_command(name: str, summary: str) -> click.Command:
    def callback(**_ignored) -> None:
        raise UserError(f"{name} is not built yet in this version of noisegame")

    return click.Command(
        name,
        callback=callback,
        help=f"{summary}\n\nNOT BUILT YET: this command exits with an error.",
        short_help=f"[not built yet] {summary}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
