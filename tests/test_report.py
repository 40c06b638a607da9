"""The results page: tables chosen by context columns, figures copied, failed runs set apart, browser check."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from noisegame_cli.report import build_report  # noqa: E402
from noisegame_cli.runs import recorded_run  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from check_report import figures_loaded, find_chromium  # noqa: E402


def _run(root, command, name, rows, *, png=None, fail=False):
    try:
        with recorded_run(command, {}, runs_dir=root, name=name, dataset="digits", model=name, seed=0) as run:
            run.write_metrics(rows)
            if png:
                figure = plt.figure(figsize=(2, 2))
                plt.plot([0, 1], [1, 0])
                figure.savefig(run.path(png))
                plt.close(figure)
            if fail:
                raise RuntimeError("interrupted")
    except RuntimeError:
        pass
    return run


@pytest.fixture
def study(tmp_path):
    root = tmp_path / "runs"
    _run(root, "train-teacher", "teacher", [{"metric": "accuracy", "value": 0.98, "split": "test"}], png="training_curves.png")
    _run(root, "fgsm", "attacked", [{"metric": "accuracy", "value": v, "attack": "fgsm", "epsilon": e} for e, v in ((0.0, 0.98), (0.03, 0.4))], png="accuracy_vs_epsilon.png")
    _run(root, "freq-split", "split", [{"metric": "accuracy", "value": 0.5, "radius": 4, "part": p} for p in ("low", "high")])
    _run(root, "adv-noise", "gnt", [{"metric": "accuracy", "value": v, "split": "test", "role": r} for r, v in (("teacher", 0.91), ("gnt", 0.93))])
    _run(root, "freq-split-smooth", "smooth", [{"metric": "accuracy", "value": 0.77, "rho": 0.5, "epsilon": 0.03, "attack": "pgd"}])
    _run(root, "eval-corruption", "robust", [
        {"metric": "accuracy", "value": 0.7, "corruption": "fog", "severity": 1},
        {"metric": "mean_accuracy_15x5", "value": 0.66},
    ], png="corruption_heatmap.png")
    _run(root, "train-teacher", "broken", [{"metric": "accuracy", "value": 0.99, "split": "test"}], fail=True)
    return root


def test_results_page_holds_every_table_and_figure(study, tmp_path):
    written = build_report(study, tmp_path / "page")
    markdown = written["markdown"].read_text()
    for title in ("Clean accuracy", "Corruption benchmark", "Accuracy per corruption", "Accuracy vs epsilon", "Accuracy vs radius",
                  "Accuracy vs kernel smoothing rho", "Runs not included"):
        assert f"## {title}" in markdown, title
    figures = sorted(p.name for p in (tmp_path / "page" / "figures").iterdir())
    assert len(figures) == 3 and all(name in markdown for name in figures)
    page = written["html"].read_text()
    assert page.count("<img ") == 3 and "data-figures-loaded" in page
    clean = markdown.split("## Clean accuracy")[1].split("##")[0]
    assert "0.98" in clean and "0.99" not in clean  # the failed run's number stays out of the tables
    assert "| teacher |" in clean and "| gnt |" in clean and "0.93" in clean  # both roles of one run
    assert "0.77" not in markdown.split("## Accuracy vs epsilon")[1].split("##")[0]  # smoothing rows have their own table
    assert "0.77" in markdown.split("## Accuracy vs kernel smoothing rho")[1].split("##")[0]


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (make check-report installs it)")
def test_every_figure_loads_in_a_real_browser(study, tmp_path):
    written = build_report(study, tmp_path / "page")
    assert figures_loaded(written["html"], find_chromium()) == (3, 3)
    shutil.rmtree(tmp_path / "page" / "figures")
    assert figures_loaded(written["html"], find_chromium()) == (0, 3)


def test_tables_without_rows_are_left_out(tmp_path):
    root = tmp_path / "runs"
    _run(root, "train-teacher", "teacher", [{"metric": "accuracy", "value": 0.98, "split": "test"}])
    markdown = build_report(root)["markdown"].read_text()
    assert "## Clean accuracy" in markdown
    assert "## Accuracy vs epsilon" not in markdown and "## Corruption benchmark" not in markdown


def test_a_metric_named_like_a_context_column_keeps_both(tmp_path):
    root = tmp_path / "runs"
    _run(root, "corrupt", "written", [{"metric": "images", "value": 50, "corruption": "fog"}])
    _run(root, "denoise-eval", "purifier", [{"metric": "accuracy", "value": 0.61, "images": "noisy", "split": "test"}])
    summary = build_report(root)["summary"]
    assert summary["images"].dropna().tolist() == ["noisy"]
    assert summary["images (metric)"].dropna().tolist() == [50]
