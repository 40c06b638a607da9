"""The results page of a folder of runs (``noisegame report``), one module per idea:

- ``collect``: reading run directories (status, metric rows, configs, cards, pictures); damaged runs kept apart;
- ``registry``: what each command declares beside its ``Config`` (section, model role, evaluated model);
- ``recipes``: runs grouped into recipes, numbers over their seeds (mean +- sd);
- ``cells``: the page's cells and tables (``Stat``, ``Ref``, ``PageTable``) and how numbers are written;
- ``tables``: each section's tables and figures; ``cards``: benchmark cards;
- ``leaderboard``: one row per model, one column per measurement; ``references``: published rows;
- ``markdown``, ``html``: the two renderings; ``page``: the page put together and written.

Rows are selected by what they measured (their ``condition``), never by which columns are blank.
"""

from noisegame_cli.report.cells import PageTable, Ref, Stat
from noisegame_cli.report.collect import DamagedRun, collect_runs
from noisegame_cli.report.markdown import markdown_table
from noisegame_cli.report.page import Page, build_report, results_page, summary_table

__all__ = [
    "DamagedRun",
    "Page",
    "PageTable",
    "Ref",
    "Stat",
    "build_report",
    "collect_runs",
    "markdown_table",
    "results_page",
    "summary_table",
]
