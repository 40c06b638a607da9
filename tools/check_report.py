"""Open a noisegame results page in headless Chromium and check that every figure loads.

    python tools/check_report.py runs/demo/report.html

Exits non-zero, naming the counts, when a figure is missing or the page has none.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=10000", "--dump-dom",
)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def figures_loaded(page: Path, chromium: str) -> tuple[int, int]:
    """(figures that decoded, figures on the page), read from the page's own load check."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", Path(page).resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    body = re.search(r"<body[^>]*>", done.stdout)
    if body is None:
        raise RuntimeError(f"chromium returned no page (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    counts = dict(re.findall(r'data-figures-(loaded|total)="(\d+)"', body.group(0)))
    if set(counts) != {"loaded", "total"}:
        raise RuntimeError("the page's figure check did not run (is this a noisegame report.html?)")
    return int(counts["loaded"]), int(counts["total"])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    chromium = find_chromium()
    if chromium is None:
        print("check-report: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    loaded, total = figures_loaded(Path(argv[0]), chromium)
    print(f"{loaded} of {total} figures loaded in {chromium}")
    return 0 if total > 0 and loaded == total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
