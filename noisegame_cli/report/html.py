"""The results page as one self-contained HTML file: its own small stylesheet, no network fonts or
scripts, figures from the ``figures/`` folder beside it. A short script, run once the page has
loaded, records on ``<body>`` how many figures decoded and how wide the page is, so a headless
browser check (``tools/check_report.py``) can read both from the page itself."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd

from noisegame_cli.report.cells import Figure, PageTable, Ref, Stat, link

if TYPE_CHECKING:
    from noisegame_cli.report.page import Page

STYLESHEET = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2329;margin:0;background:#fafbfc}
main{max-width:1360px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;margin:0 0 6px}h3{font-size:15px;margin:14px 0 4px}
section{background:#fff;border:1px solid #e3e7eb;border-radius:6px;padding:14px 16px;margin:14px 0}
nav a{margin-right:12px}a{color:#0b57a4;text-decoration:none}a:hover{text-decoration:underline}
p.note,p.about{color:#4c5661;margin:2px 0 6px;font-size:13px}
.body{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.tables{flex:1 1 auto;min-width:0;max-width:100%}
.figures{flex:1 1 360px;display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:10px;min-width:0}
.table-wrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #dde2e6;padding:3px 6px;vertical-align:top}
th{background:#f1f4f6;font-weight:600;text-align:left}
td.num{text-align:right}td.text{text-align:left}
th small{display:block;font-weight:400;color:#5b6670}
th.v{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;vertical-align:bottom;text-align:left;padding:6px 2px}
.sd{color:#5b6670;font-size:12px;white-space:nowrap}
table.published{border:2px dashed #b0b8c0}table.published th{background:#f7f2e8}
.tag{display:inline-block;font-size:11px;padding:0 5px;border-radius:3px;background:#f7f2e8;border:1px solid #d9c9a8;margin-left:6px}
figure{margin:0}figure img{width:100%;height:auto;border:1px solid #e3e7eb;background:#fff}
figcaption{font-size:12px;color:#4c5661}
"""

# Once loaded: count the figures that decoded (and name the missing ones), and record the page's
# width against the window's and the number of tables wider than their box.
PAGE_CHECK = """window.addEventListener('load', function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
    else { images[i].insertAdjacentHTML('afterend', '<p><b>missing figure: ' + images[i].getAttribute('src') + '</b></p>'); }
  }
  var wraps = document.querySelectorAll('.table-wrap'), wide = 0;
  for (var j = 0; j < wraps.length; j++) { if (wraps[j].scrollWidth > wraps[j].clientWidth + 1) { wide++; } }
  var body = document.body;
  body.setAttribute('data-figures-total', images.length);
  body.setAttribute('data-figures-loaded', loaded);
  body.setAttribute('data-page-width', document.documentElement.scrollWidth);
  body.setAttribute('data-window-width', window.innerWidth);
  body.setAttribute('data-wide-tables', wide);
});"""


def _shade(table: PageTable) -> tuple[float, float] | None:
    means = [cell.mean for column in table.frame.columns for cell in table.frame[column] if isinstance(cell, Stat)]
    return (min(means), max(means)) if table.colour and means else None


def _stat_cell(cell: Stat, table: PageTable, out: Path, row_n: int, scale) -> str:
    spread = f" <span class='sd'>± {cell.number(cell.sd)}</span>" if cell.n > 1 else ""
    count = "" if table.compact and cell.n == row_n else f" <span class='sd'>(n={cell.n})</span>"
    text = f"{html.escape(cell.number(cell.mean))}{spread}{count}"
    if cell.runs:
        text = f"<a href='{html.escape(link(cell.runs[0], out))}' title='{html.escape(cell.describe())}'>{text}</a>"
    style = ""
    if scale is not None:
        low, high = scale
        hue = 60.0 if high - low < 1e-12 else 120.0 * (cell.mean - low) / (high - low)
        style = f" style='background:hsl({hue:.0f},62%,84%)'"
    return f"<td class='num'{style}>{text}</td>"


def _cell(cell, table: PageTable, out: Path, row_n: int, scale) -> str:
    if isinstance(cell, Stat):
        return _stat_cell(cell, table, out, row_n, scale)
    if isinstance(cell, Ref):
        text = html.escape(cell.text)
        if cell.path:
            text = f"<a href='{html.escape(link(cell.path, out))}' title='{html.escape(cell.title)}'>{text}</a>"
        return f"<td class='text'>{text}</td>"
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return "<td></td>"
    return f"<td class='text'>{html.escape(str(cell))}</td>"


def table_html(table: PageTable, out: Path, *, published: bool = False) -> str:
    frame = table.frame
    data = [c for c in frame.columns if any(isinstance(v, Stat) for v in frame[c])]
    head = []
    for column in frame.columns:
        vertical = table.vertical and column in data
        detail = table.details.get(column)
        label = html.escape(str(column).replace("_", " ") if vertical else str(column))
        label += f"<small>{html.escape(detail)}</small>" if detail and not vertical else ""
        head.append(f"<th{' class=v' if vertical else ''}>{label}</th>")
    scale = _shade(table)
    body = []
    for _, row in frame.iterrows():
        row_n = max((v.n for v in row if isinstance(v, Stat)), default=0)
        body.append("<tr>" + "".join(_cell(row[c], table, out, row_n, scale) for c in frame.columns) + "</tr>")
    tag = " <span class='tag'>published</span>" if published else ""
    note = f"<p class='note'>{html.escape(table.note)}</p>" if table.note else ""
    classes = " class='published'" if published else ""
    return (f"<h3>{html.escape(table.title)}{tag}</h3>{note}<div class='table-wrap'><table{classes}><thead><tr>{''.join(head)}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")  # fmt: skip


def figures_html(figures: Sequence[Figure], out: Path) -> str:
    items = []
    for figure in figures:
        source = html.escape(link(figure.source, out))
        caption = html.escape(figure.caption)
        items.append(f"<figure><a href='{source}'><img src='{source}' alt='{caption}' loading='eager'></a><figcaption>{caption}</figcaption></figure>")
    return f"<div class='figures'>{''.join(items)}</div>" if items else ""


def page_html(page: Page, out: Path) -> str:
    """The whole page: header, leaderboard (and published rows), one section per experiment, runs not included."""
    nav = [("leaderboard", "Leaderboard")] + [(s.section.anchor, s.section.title.split(":")[0]) for s in page.sections]
    if len(page.unfinished):
        nav.append(("not-included", "Not included"))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
             f"<title>{html.escape(page.title)}</title><style>{STYLESHEET}</style></head><body><main>",
             f"<h1>{html.escape(page.title)}</h1>", *(f"<p class='about'>{html.escape(line)}</p>" for line in page.summary),
             "<nav>" + "".join(f"<a href='#{a}'>{html.escape(t)}</a>" for a, t in nav) + "</nav>"]  # fmt: skip
    board = page.leaderboard
    parts.append("<section id='leaderboard'><h2>Leaderboard</h2>")
    if board.table.frame.empty:
        parts.append("<p class='note'>No model was trained or benchmarked in these runs.</p>")
    else:
        parts.append(table_html(board.table, out).replace("<h3>Leaderboard</h3>", "", 1))
    if board.references is not None:
        parts.append(table_html(board.references, out, published=True))
    elif board.reference_note:
        parts.append(f"<p class='note'>{html.escape(board.reference_note)}</p>")
    parts.append("</section>")
    for content in page.sections:
        section = content.section
        about = f"<p class='about'>{html.escape(section.about)}</p>" if section.about else ""
        tables = "".join(table_html(t, out) for t in content.tables) or "<p class='note'>No measurements (pictures only).</p>"
        parts.append(f"<section id='{section.anchor}'><h2>{html.escape(section.title)}</h2>{about}"
                     f"<div class='body'><div class='tables'>{tables}</div>{figures_html(content.figures, out)}</div></section>")  # fmt: skip
    if len(page.unfinished):
        parts.append("<section id='not-included'><h2>Not included (failed, interrupted or damaged runs)</h2>"
                     + table_html(PageTable("", page.unfinished), out).replace("<h3></h3>", "", 1) + "</section>")  # fmt: skip
    parts += [f"<script>{PAGE_CHECK}</script>", "</main></body></html>"]
    return "\n".join(parts) + "\n"
