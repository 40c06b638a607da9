"""``noisegame report RUNS_DIR``: the results page of every run under a folder."""

from __future__ import annotations

import click
import pandas as pd

from noisegame_cli import checks
from noisegame_cli.errors import UserError


def _check(value: str | None, flag: str, check) -> None:
    if value is not None:
        check(value, flag)


@click.command("report")
@click.argument("runs_dir", type=click.Path(file_okay=True))
@click.option("--out", default=None, help="Where the page and tables go [default: RUNS_DIR].")
def command(runs_dir: str, out: str | None) -> None:
    """Collect every completed run under RUNS_DIR into REPORT.md, report.html (with the figures),
    report.csv (all metric rows) and summary.csv (one column per metric). Failed, interrupted and
    damaged runs are listed apart, with their reason."""
    from noisegame_cli.report import build_report

    _check(runs_dir, "RUNS_DIR", checks.existing_dir)
    _check(out, "--out", checks.writable_dir)
    written = build_report(runs_dir, out)
    runs, table = written["runs"], written["summary"]
    with pd.option_context("display.max_rows", 200, "display.max_columns", 30, "display.width", 160, "display.precision", 4):
        click.echo(table.to_string(index=False) if not table.empty else "no completed runs with metrics")
    for row in runs[runs["status"] != "completed"].itertuples():
        click.echo(f"not included ({row.status}{': ' + row.reason if row.reason else ''}): {row.path}")
    completed = int((runs["status"] == "completed").sum())
    click.echo(f"{completed} completed runs")
    click.echo(f"results page: {written['html']}  (and {written['markdown']})")
    if completed == 0:
        raise UserError(f"no completed run under {runs_dir}; the page lists the {len(runs)} others")
