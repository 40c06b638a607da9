"""``noisegame report RUNS_DIR``: the results page of every run under a folder."""

from __future__ import annotations

import click

from noisegame_cli import checks
from noisegame_cli.errors import UserError


def _check(value: str | None, flag: str, check) -> None:
    if value is not None:
        check(value, flag)


@click.command("report")
@click.argument("runs_dir", type=click.Path(file_okay=True))
@click.option("--out", default=None, help="Where the page and tables go [default: RUNS_DIR].")
@click.option("--docs-out", default=None, help="Also write the leaderboard as a Markdown fragment here (e.g. docs/results.md).")
def command(runs_dir: str, out: str | None, docs_out: str | None) -> None:
    """Collect every completed run under RUNS_DIR into report.html and REPORT.md (a model leaderboard,
    seeds grouped as mean +- sd, one section per experiment with its figures), results.md (the
    leaderboard for docs/results.md), report.csv (all metric rows) and summary.csv (one column per
    metric). Failed, interrupted and damaged runs are listed apart, with their reason."""
    from noisegame_cli.report import build_report, markdown_table

    _check(runs_dir, "RUNS_DIR", checks.existing_dir)
    _check(out or runs_dir, "--out" if out else "RUNS_DIR (where the page goes without --out)", checks.writable_dir)
    if docs_out is not None and not docs_out.endswith(".md"):
        raise UserError(f"--docs-out {docs_out}: expected a Markdown file path ending in .md")
    _check(docs_out, "--docs-out", checks.writable_file)
    written = build_report(runs_dir, out, docs_out)
    runs, board = written["runs"], written["page"].leaderboard
    click.echo(markdown_table(board.table.frame, details=board.table.details) if not board.table.frame.empty else "no model trained or benchmarked")
    for row in runs[runs["status"] != "completed"].itertuples():
        click.echo(f"not included ({row.status}{': ' + row.reason if row.reason else ''}): {row.path}")
    completed = int((runs["status"] == "completed").sum())
    click.echo(f"{completed} completed runs")
    click.echo(f"results page: {written['html']}  (and {written['markdown']}, {written['results']})")
    if "docs" in written:
        click.echo(f"leaderboard fragment: {written['docs']}")
    if completed == 0:
        raise UserError(f"no completed run under {runs_dir}; the page lists the {len(runs)} others")
