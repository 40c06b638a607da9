"""``noisegame report RUNS_DIR``: one table of every completed run's metrics."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from noisegame_cli.report import collect_metrics, find_runs, summary_table


@click.command("report")
@click.argument("runs_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where report.csv and summary.csv go [default: RUNS_DIR].")
def command(runs_dir: str, out: str | None) -> None:
    """Collect every metrics.csv under RUNS_DIR into report.csv (long) and summary.csv (wide)."""
    runs = find_runs(runs_dir)
    metrics = collect_metrics(runs_dir)
    out_dir = Path(out or runs_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(out_dir / "report.csv", index=False)
    table = summary_table(metrics)
    table.to_csv(out_dir / "summary.csv", index=False)
    unfinished = runs[runs["status"] != "completed"]
    with pd.option_context("display.max_rows", 200, "display.max_columns", 30, "display.width", 160, "display.precision", 4):
        click.echo(table.to_string(index=False) if not table.empty else "no completed runs")
    for _, row in unfinished.iterrows():
        click.echo(f"not included ({row['status']}): {row['path']}")
    click.echo(f"{len(runs) - len(unfinished)} completed runs; tables written to {out_dir / 'report.csv'} and {out_dir / 'summary.csv'}")
