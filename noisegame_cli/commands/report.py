"""``noisegame report RUNS_DIR``: the results page of every run under a folder."""

from __future__ import annotations

import click
import pandas as pd

from noisegame_cli.report import build_report


@click.command("report")
@click.argument("runs_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where the page and tables go [default: RUNS_DIR].")
def command(runs_dir: str, out: str | None) -> None:
    """Collect every completed run under RUNS_DIR into REPORT.md, report.html (with the figures),
    report.csv (all metric rows) and summary.csv (one column per metric)."""
    written = build_report(runs_dir, out)
    runs, table = written["runs"], written["summary"]
    with pd.option_context("display.max_rows", 200, "display.max_columns", 30, "display.width", 160, "display.precision", 4):
        click.echo(table.to_string(index=False) if not table.empty else "no completed runs")
    for row in runs[runs["status"] != "completed"].itertuples():
        click.echo(f"not included ({row.status}): {row.path}")
    click.echo(f"{(runs['status'] == 'completed').sum()} completed runs")
    click.echo(f"results page: {written['html']}  (and {written['markdown']})")
