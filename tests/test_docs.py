"""Docs that cannot drift: every ``noisegame ...`` command line in a code block of README.md and docs/
is parsed by the real Click command (options, choices and value types; nothing runs), so a renamed
or mistyped flag fails here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from noisegame_cli.cli import cli

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
PROGRAM = re.compile(r"^(?:\.venv/bin/)?noisegame(?=\s|$)")


def command_lines(page: Path) -> list[str]:
    """The ``noisegame`` command lines of a page's code blocks, continuation lines joined."""
    lines = []
    for block in CODE_BLOCK.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if PROGRAM.match(line):
                lines.append(line)
    return lines


CASES = [(page, line) for page in PAGES for line in command_lines(page)]


def parse(arguments: list[str]) -> None:
    """Parse ``arguments`` as the command line would, down to the leaf command, without invoking it."""
    command: click.Command = cli
    context = command.make_context("noisegame", list(arguments))
    while isinstance(command, click.Group) and context.protected_args + context.args:
        name, command, rest = command.resolve_command(context, context.protected_args + context.args)
        context = command.make_context(name, rest, parent=context)


def test_the_pages_show_command_lines():
    assert len(CASES) > 30  # the parser below found the examples (a changed fence style would find none)
    assert {page.name for page, _ in CASES} >= {"README.md", "runs.md", "benchmark.md", "fgsm.md", "eval-corruption.md"}


@pytest.mark.parametrize("page, line", CASES, ids=[f"{page.relative_to(REPO)}:{line[:60]}" for page, line in CASES])
def test_documented_command_line_parses(page, line):
    arguments = shlex.split(line, comments=True)[1:]
    try:
        parse(arguments)
    except click.exceptions.Exit:  # --help and --version end parsing early
        pass
    except click.UsageError as error:
        pytest.fail(f"{page.relative_to(REPO)}: `{line}`: {error.format_message()}")


def test_a_renamed_flag_fails_the_parse():
    with pytest.raises(click.UsageError, match="--epsilons is now --eps"):
        parse(["fgsm", "eval", "--model-path", "m.keras", "--epsilons", "0,8/255"])
    with pytest.raises(click.UsageError, match="no such option|No such option"):
        parse(["eval-corruption", "--corruption-nmes", "fog"])
