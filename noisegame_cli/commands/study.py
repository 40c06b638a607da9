"""``noisegame study``: the whole robustness study, every command in turn, ending in the results page."""

from __future__ import annotations

import click

from noisegame_cli import checks
from noisegame_cli.config import parse_list, parse_number
from noisegame_cli.errors import UserError


def _seeds(ctx, param, value):
    try:
        return parse_list(value, lambda item: parse_number(item, int))
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None


@click.command("study")
@click.option("--study", "study_name", type=click.Choice(("digits", "cifar10")), default="digits", show_default=True,
              help="digits (the embedded data, a CPU) or cifar10 (a GPU, CIFAR-10 and the official CIFAR-10-C files).")
@click.option("--runs-dir", default="runs/demo", show_default=True, help="Where the runs and the results page go.")
@click.option("--seeds", default="0", callback=_seeds, show_default=True,
              help="Seeds of the noise-robustness comparison (teacher, student, GNT, ANT, corruptions); the rest runs with the first.")
@click.option("--smoke", is_flag=True, help="Every step in its seconds-long form.")
@click.option("--recipes", default=None, help="Folder of the YAML recipes [default: the repository's experiments/].")
@click.option("--data-dir", default=None, help="The training data (cifar10: the Keras cache by default).")
@click.option("--corrupted-dir", default=None, help="The official CIFAR-10-C files (the cifar10 study).")
def command(study_name: str, runs_dir: str, seeds: tuple[int, ...], smoke: bool, recipes, data_dir, corrupted_dir) -> None:
    """Run the robustness study on one dataset: every command from its recipe, linked run to run, then
    the results page (RUNS_DIR/report.html)."""
    from noisegame_cli.study import run_study

    checks.writable_dir(runs_dir, "--runs-dir")
    for value, flag in ((recipes, "--recipes"), (data_dir, "--data-dir"), (corrupted_dir, "--corrupted-dir")):
        if value is not None:
            checks.existing_dir(value, flag)
    if not seeds:
        raise UserError("--seeds needs at least one seed")
    run_study(runs_dir, study=study_name, seeds=seeds, smoke=smoke, recipes=recipes, data_dir=data_dir, corrupted_dir=corrupted_dir)
