"""The results page on fabricated run directories: seeds grouped into mean +- sd, models named by
run name and role, leaderboard columns for what was measured, published rows kept apart, figures
beside their section, runs left out with their reason, and the page in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from noisegame_cli.cli import cli  # noqa: E402
from noisegame_cli.report import Ref, Stat, build_report  # noqa: E402
from noisegame_cli.runs import RUN_STAMP, recorded_run  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from check_report import check_page, figures_loaded, find_chromium  # noqa: E402

EPS2, EPS8 = 2 / 255, 8 / 255


def _run(root, command, name, rows, *, seed=0, config=None, dataset="digits", png=None, fail=False, card=None):
    """A run directory as the commands write it; returns its path."""
    settings = {"name": name, "seed": seed, "dataset": dataset, "runs_dir": str(root), "learning_rate": 0.002, **(config or {})}
    try:
        with recorded_run(command, settings, runs_dir=root, name=name, dataset=dataset, model="tiny_cnn", seed=seed) as run:
            run.write_metrics(rows)
            if png:
                figure = plt.figure(figsize=(2, 2))
                plt.plot([0, 1], [1, 0])
                figure.savefig(run.path(png))
                plt.close(figure)
            if card is not None:
                run.path("card.json").write_text(card if isinstance(card, str) else json.dumps(card))
            if fail:
                raise RuntimeError("interrupted")
    except RuntimeError:
        pass
    return str(run.directory)


def _accuracy(value, condition="clean", **context):
    return {"metric": "accuracy", "value": value, "split": "test", "condition": condition, **context}


def _corruption(metric, value, **context):
    return {"metric": metric, "value": value, "condition": "corruption", **context}


def _attacked(value, attack, epsilon):
    return _accuracy(value, "attack" if epsilon > 0 else "clean", attack=attack, epsilon=epsilon)


def _corruption_eval(root, model_dir, name, seed, *, c15, c19, rmce=None, noise, baseline=None, dataset="digits-C"):
    rows = [_accuracy(c15 + 0.1), _corruption("mean_accuracy_15x5", c15), _corruption("mean_accuracy_19_sev5", c19),
            _corruption("mean_accuracy_noise", noise),
            *(_corruption("accuracy", c15 - 0.01 * i, corruption=c, severity=1) for i, c in enumerate(("gaussian_noise", "fog")))]
    if rmce is not None:
        rows += [_corruption("relative_mce", rmce), _corruption("mce", rmce - 0.1)]
    config = {"model_path": model_dir, "dataset": "cifar10-c", "data_dir": f"{root}/digits-C", "baseline": baseline}
    return _run(root, "eval-corruption", name, rows, seed=seed, config=config, dataset=dataset, png="corruption_heatmap.png")


@pytest.fixture
def study(tmp_path):
    """Teacher and student over three seeds with their corruption evaluations, an FGSM-trained model,
    its attack evaluation, a teacher of another recipe, a failed run and a damaged one."""
    root = tmp_path / "runs"
    teachers, students = {}, {}
    for seed, (clean, student_clean) in enumerate(((0.90, 0.91), (0.94, 0.93), (0.95, 0.92))):
        teachers[seed] = _run(root, "train-teacher", "digits-teacher", [_accuracy(clean)], seed=seed, png="training_curves.png")
        baseline = _corruption_eval(root, teachers[seed], "teacher-C", seed, c15=0.60 + seed / 100, c19=0.50, noise=0.40)
        students[seed] = _run(root, "train-student", "digits-student",
                              [_accuracy(clean, role="teacher"), _accuracy(student_clean, role="student"),
                               _corruption("mean_accuracy_noise", 0.55, split="test", role="student")],
                              seed=seed, config={"teacher": teachers[seed]}, png="training_curves.png")  # fmt: skip
        _corruption_eval(root, students[seed], "student-C", seed, c15=0.70, c19=0.62, rmce=0.80 + seed / 10, noise=0.65, baseline=baseline)
    adversarial = _run(root, "fgsm-train", "digits-adv", [_attacked(0.88, "fgsm", 0.0)], config={"attack": "fgsm"})
    for model, name, values in ((teachers[0], "teacher", (0.5, 0.1, 0.4, 0.0)), (adversarial, "adversarial", (0.8, 0.6, 0.78, 0.5))):
        rows = [_attacked(v, a, e) for v, (a, e) in zip(values, (("fgsm", EPS2), ("fgsm", EPS8), ("pgd", EPS2), ("pgd", EPS8)))]
        _run(root, "fgsm-eval", name, [_attacked(0.9, "fgsm", 0.0), *rows], config={"model_path": model},
             png="accuracy_vs_epsilon.png")  # fmt: skip
    _run(root, "train-teacher", "digits-teacher", [_accuracy(0.97)], config={"learning_rate": 0.01})  # another recipe, same name
    _run(root, "train-teacher", "broken", [_accuracy(0.99)], fail=True)
    _run(root, "benchmark", "mangled", [_accuracy(0.5)], card="{not json")
    return root


def _board(written):
    return written["page"].leaderboard


def _row(board, label):
    frame = board.table.frame
    return frame[[isinstance(m, Ref) and m.text == label for m in frame["model"]]].iloc[0]


def test_runs_of_one_recipe_are_grouped_over_seeds_with_mean_and_sample_sd(study, tmp_path):
    board = _board(build_report(study, tmp_path / "page"))
    teacher = _row(board, "digits-teacher · teacher")
    clean = teacher["clean"]
    assert isinstance(clean, Stat) and clean.n == 3 and sorted(clean.seeds) == [0, 1, 2]
    assert clean.mean == pytest.approx(statistics.mean([0.90, 0.94, 0.95]))
    assert clean.sd == pytest.approx(statistics.stdev([0.90, 0.94, 0.95]))
    assert clean.text() == f"93.0 ± {100 * statistics.stdev([0.90, 0.94, 0.95]):.1f} (n=3)"
    # the students link to three different teacher runs and still form one recipe
    assert _row(board, "digits-student · student")["clean"].n == 3
    other = _row(board, "digits-teacher (2) · teacher")["clean"]  # learning rate 0.01: not a seed of the others
    assert other.values == (0.97,) and other.text() == "97.0 (n=1)"
    assert teacher["seeds"] == "0, 1, 2 (n=3)"


def test_models_are_named_by_run_name_and_role_never_by_time_stamp(study, tmp_path):
    written = build_report(study, tmp_path / "page")
    labels = [m.text for m in _board(written).table.frame["model"]]
    assert labels == ["digits-teacher · teacher", "digits-teacher (2) · teacher", "digits-student · student", "digits-adv · fgsm-trained"]
    assert not any(RUN_STAMP.search(label) for label in labels)
    markdown = written["markdown"].read_text()
    leaderboard = markdown.split("## Leaderboard")[1].split("\n## ")[0]
    visible = re.sub(r'\]\([^ )]+(?: "[^"]*")?\)', "]", leaderboard)  # link targets and hover texts name run directories
    assert not re.search(r"\d{8}-\d{6}", visible)


def test_leaderboard_has_a_column_per_measurement_with_values_from_the_right_runs(study, tmp_path):
    board = _board(build_report(study, tmp_path / "page"))
    columns = list(board.table.frame.columns)
    for column in ("clean", "corruptions 15×5", "19 at severity 5", "relative mCE", "mCE", "noise corruptions",
                   "FGSM ε=2/255", "FGSM ε=8/255", "PGD ε=2/255", "PGD ε=8/255"):
        assert column in columns, column
    assert not any("AutoAttack" in c for c in columns)  # no card measured it
    assert board.table.details["corruptions 15×5"] == "digits-C"  # the folder's name, not the loader's cifar10-c
    assert board.table.details["relative mCE"] == "vs digits-teacher · digits-C"
    teacher, student = _row(board, "digits-teacher · teacher"), _row(board, "digits-student · student")
    assert teacher["corruptions 15×5"].mean == pytest.approx(0.61) and teacher["relative mCE"] == "baseline"
    assert student["relative mCE"].values == pytest.approx((0.8, 0.9, 1.0))
    assert student["noise corruptions"].mean == pytest.approx(0.65)  # the evaluation wins over the training run's own 0.55
    assert teacher["noise corruptions"].mean == pytest.approx(0.40)
    assert teacher["PGD ε=8/255"].values == (0.0,) and _row(board, "digits-adv · fgsm-trained")["PGD ε=8/255"].values == (0.5,)
    assert teacher["FGSM ε=2/255"].runs[0].endswith("-teacher") and "fgsm-eval" in teacher["FGSM ε=2/255"].runs[0]
    assert _row(board, "digits-adv · fgsm-trained")["clean"].values == (0.88,)  # its own run, not the evaluation's 0.9


def test_every_number_links_to_its_run_directory(study, tmp_path):
    written = build_report(study, tmp_path / "page")
    page = written["html"].read_text()
    targets = re.findall(r"<a href='([^']+)'", page)
    runs = [t for t in targets if not t.startswith("#") and not t.startswith("figures/")]
    assert runs and all((tmp_path / "page" / t).is_dir() for t in runs)
    assert "<a href='../runs/train-teacher/" in page


def _card(dataset, threat_model, eps, **values):
    return {"name": "my-wrn", "model": "wrn_28_10", "model_path": "elsewhere/model.keras", "dataset": dataset, "threat_model": threat_model,
            "norm": threat_model, "eps": eps, "n_examples": 1000, "clean_acc": 91.5, "autoattack_acc": 41.25,
            "autoattack_per_attack": {"apgd-ce": 45.0, "apgd-t": 42.0}, "corruptions_acc": None, "corruptions_acc_19_sev5": None,
            "corruptions_mce": None, "corruptions_source": None, "version": "standard", "seed": 0, **values}  # fmt: skip


def test_published_rows_stay_apart_and_appear_only_for_a_measured_dataset_and_threat_model(tmp_path):
    root = tmp_path / "runs"
    _run(root, "benchmark", "my-wrn", [_accuracy(0.915)], dataset="cifar10", card=_card("cifar10", "Linf", EPS8))
    written = build_report(root, tmp_path / "page")
    board = _board(written)
    row = _row(board, "my-wrn · benchmarked")
    assert row["AutoAttack Linf ε=8/255"].mean == pytest.approx(0.4125) and row["clean"].mean == pytest.approx(0.915)
    published = board.references.frame
    assert "Wong2020Fast" in set(published["published model"]) and "Rice2020Overfitting" not in set(published["published model"])
    assert set(published["threat model"]) == {"Linf ε=8/255"}  # no corruption result, so no CIFAR-10-C rows
    assert not any("Wong2020Fast" in str(cell) for cell in board.table.frame.to_numpy().ravel())
    markdown = written["markdown"].read_text()
    measured, reference = markdown.split("### Published reference rows")
    assert "Wong2020Fast" in reference and "Wong2020Fast" not in measured and "41.2" in measured
    assert "class='published'" in written["html"].read_text()
    cards = [t for s in written["page"].sections for t in s.tables if t.title.startswith("Benchmark cards")]
    assert cards and cards[0].frame.iloc[0]["apgd-t"].mean == pytest.approx(0.42)


def test_without_a_comparable_measurement_no_published_row_is_shown(study, tmp_path):
    written = build_report(study, tmp_path / "page")
    assert _board(written).references is None
    markdown = written["markdown"].read_text()
    assert "No published reference row applies" in markdown and "Wong2020Fast" not in markdown and "73.46" not in markdown
    root = tmp_path / "c10c"
    _run(root, "eval-corruption", "wrn-C", [_corruption("mean_accuracy_15x5", 0.7)], dataset="CIFAR-10-C")
    references = _board(build_report(root)).references
    assert list(references.frame["corruption accuracy"]) == ["73.46", "88.82"]


def test_sections_hold_their_tables_and_figures_and_the_left_out_runs_their_reason(study, tmp_path):
    written = build_report(study, tmp_path / "page")
    sections = {s.section.anchor: s for s in written["page"].sections}
    assert list(sections) == ["noise-training", "adversarial", "corruptions"]  # the damaged card makes no section
    # one picture per recipe (the first seed's): teacher and student; 2 fgsm-eval; 2 eval-corruption recipes
    assert [len(sections[a].figures) for a in ("noise-training", "adversarial", "corruptions")] == [2, 2, 2]
    per_corruption = [t for t in sections["corruptions"].tables if t.title.startswith("Accuracy per corruption")][0]
    assert per_corruption.colour and list(per_corruption.frame.columns) == ["run", "gaussian_noise", "fog"]
    assert per_corruption.note == "dataset: digits-C"
    page = written["html"].read_text()
    assert page.count("<img ") == 6 == len(list((tmp_path / "page" / "figures").glob("*.png")))
    assert "background:hsl(" in page and "<link" not in page and "http" not in page.split("<script>")[0]
    not_included = written["markdown"].read_text().split("## Not included")[1]
    assert "broken" in not_included and "failed" in not_included and "RuntimeError: interrupted" in not_included
    assert "mangled" in not_included and "card.json unreadable" in not_included
    assert "0.99" not in written["markdown"].read_text().split("## Not included")[0]  # the failed run's number stays out


def test_the_docs_fragment_is_the_leaderboard_without_links(study, tmp_path):
    docs = tmp_path / "docs" / "results.md"
    result = CliRunner().invoke(cli, ["report", str(study), "--out", str(tmp_path / "page"), "--docs-out", str(docs)])
    assert result.exit_code == 0, result.output
    fragment = docs.read_text()
    assert fragment == (tmp_path / "page" / "results.md").read_text()
    assert "digits-teacher · teacher" in fragment and "](" not in fragment and "93.0 ±" in fragment
    assert "not included (failed" in result.output
    bad = CliRunner().invoke(cli, ["report", str(study), "--docs-out", str(tmp_path / "results.txt")])
    assert bad.exit_code != 0 and "--docs-out" in bad.output and "Traceback" not in bad.output


def test_tables_without_rows_are_left_out(tmp_path):
    root = tmp_path / "runs"
    _run(root, "train-teacher", "teacher", [_accuracy(0.98)])
    written = build_report(root)
    markdown = written["markdown"].read_text()
    assert "## Noise training" in markdown and "## Adversarial" not in markdown and "## Common corruptions" not in markdown
    assert list(_board(written).table.frame.columns) == ["model", "dataset", "architecture", "seeds", "clean"]


def test_a_metric_named_like_a_context_column_keeps_both(tmp_path):
    root = tmp_path / "runs"
    _run(root, "corrupt", "written", [{"metric": "images", "value": 50, "corruption": "fog", "condition": "copy"}])
    _run(root, "denoise-eval", "purifier", [{"metric": "accuracy", "value": 0.61, "images": "noisy", "split": "test", "condition": "noise"}])
    summary = build_report(root)["summary"]
    assert summary["images"].dropna().tolist() == ["noisy"]
    assert summary["images (metric)"].dropna().tolist() == [50]


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (make check-report installs it)")
def test_the_page_loads_every_figure_and_fits_1400_px_in_a_real_browser(study, tmp_path):
    written = build_report(study, tmp_path / "page")
    check = check_page(written["html"], find_chromium(), width=1400)
    assert (check.figures_loaded, check.figures_total) == (6, 6)
    assert check.window_width == 1400 and check.fits, check
    wider = tmp_path / "page" / "wide.html"  # the same page with one element too wide: the check must see it
    wider.write_text(written["html"].read_text().replace("<main>", "<main><div style='width:1600px'>wide</div>", 1))
    assert not check_page(wider, find_chromium(), width=1400).fits
    shutil.rmtree(tmp_path / "page" / "figures")
    assert figures_loaded(written["html"], find_chromium()) == (0, 6)


def test_the_docs_copy_of_a_page_keeps_numbers_and_drops_links_and_figures():
    from update_results import leaderboard, unlinked

    page = ('# t\n\n## Leaderboard\n\nIn percent. Each number links to the run it came from (hover).\n\n'
            '| model | clean |\n|---|---|\n| teacher | [99.4 ± 0.2 (n=3)](runs/a/ "seed 0: 99.4 (20261203-1200-teacher)") |\n\n'
            '## Noise\n\n![curves](figures/a.png)\n*teacher: curves*\n')
    text = unlinked(page)
    assert "| teacher | 99.4 ± 0.2 (n=3) |" in text and "](" not in text and "figures/a.png" not in text
    assert "Each number links" not in text and "teacher: curves" not in text
    assert leaderboard(page).strip().endswith("| teacher | 99.4 ± 0.2 (n=3) |") and "## Noise" not in leaderboard(page)
