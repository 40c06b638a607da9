"""Open a noisegame results page in headless Chromium: every figure must load, and at 1400 px the
page must need no horizontal scrolling (neither the page nor any of its tables).

    python tools/check_report.py runs/demo/report.html [--width 1400]

Exits non-zero, naming what failed, when a figure is missing, the page has none, or it is too wide.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=10000", "--dump-dom",
)
WIDTH = 1400


@dataclass(frozen=True)
class PageCheck:
    """What the page's own load check recorded on <body>."""

    figures_loaded: int
    figures_total: int
    page_width: int
    window_width: int
    wide_tables: int

    @property
    def fits(self) -> bool:
        return self.page_width <= self.window_width and self.wide_tables == 0


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def check_page(page: Path, chromium: str, width: int = WIDTH) -> PageCheck:
    """Load ``page`` in a ``width`` px wide window and read the counts the page recorded."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--window-size={width},1000", f"--user-data-dir={profile}", Path(page).resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    body = re.search(r"<body[^>]*>", done.stdout)
    if body is None:
        raise RuntimeError(f"chromium returned no page (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    found = dict(re.findall(r'data-(figures-loaded|figures-total|page-width|window-width|wide-tables)="(\d+)"', body.group(0)))
    names = ("figures-loaded", "figures-total", "page-width", "window-width", "wide-tables")
    if set(found) != set(names):
        raise RuntimeError("the page's load check did not run (is this a noisegame report.html?)")
    return PageCheck(*(int(found[name]) for name in names))


def figures_loaded(page: Path, chromium: str) -> tuple[int, int]:
    """(figures that decoded, figures on the page)."""
    check = check_page(page, chromium)
    return check.figures_loaded, check.figures_total


def main(argv: list[str]) -> int:
    width = WIDTH
    if len(argv) == 3 and argv[1] == "--width" and argv[2].isdigit():
        argv, width = argv[:1], int(argv[2])
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    chromium = find_chromium()
    if chromium is None:
        print("check-report: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    check = check_page(Path(argv[0]), chromium, width)
    print(f"{check.figures_loaded} of {check.figures_total} figures loaded in {chromium}")
    print(f"page width {check.page_width} px in a {check.window_width} px window; {check.wide_tables} tables wider than their box")
    figures_ok = check.figures_total > 0 and check.figures_loaded == check.figures_total
    return 0 if figures_ok and check.fits else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
