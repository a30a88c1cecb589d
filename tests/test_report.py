"""Leaderboards, HTML pages and run comparisons, from a run of the tiny fixture."""

import base64
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score
from typer.testing import CliRunner

from comment_stance.cli import app
from comment_stance.errors import OutputError
from comment_stance.experiments import load_run, run_experiment
from comment_stance.report import (article_scores, compare_runs, comparison_markdown, errors_by, export_results,
                                   html_page, leaderboard, markdown, misclassified)
from comment_stance.significance import mcnemar, paired_bootstrap

from .conftest import FIXTURES, REPO

CONFIG = FIXTURES / "experiment-tiny.toml"
runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of the tiny experiment that differ in one hyper-parameter."""
    base = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        a = run_experiment(CONFIG, out=base / "a", report=False)
        b = run_experiment(CONFIG, overrides={"models.tfidf-svm.C": "4"}, out=base / "b", report=False)
    return a, b


def test_leaderboard_ranks_every_model_with_ci_and_significance(runs):
    run = runs[0]
    board = leaderboard(run)
    assert list(board["evaluations"]) == ["fixed", "kfold", "by-article", "loao"]
    kfold = board["evaluations"]["kfold"]
    assert {r["model"] for r in kfold["rows"]} == {"majority", "tfidf-logreg", "tfidf-svm"}
    scores = [r["macro_f1"] for r in kfold["rows"]]
    assert scores == sorted(scores, reverse=True)
    best = kfold["rows"][0]
    assert kfold["reference"] == best["model"] and best["vs_reference"] is None
    for row in kfold["rows"]:
        low, high = row["macro_f1_ci"]
        assert low < row["macro_f1"] < high  # the interval of the seed average brackets it
        assert set(row["per_class_f1"]) == {"conditional", "skeptical", "supportive"}
        assert row["train_s"] >= 0 and row["rows_per_s"] > 0
        # accuracy and F_avg (polar: supportive, skeptical) from the saved predictions, by scikit-learn
        gold, _, preds = run.prediction_lists("kfold", row["model"])
        assert row["accuracy"] == pytest.approx(np.mean([accuracy_score(gold, p) for p in preds]))
        assert row["f_avg"] == pytest.approx(np.mean([f1_score(gold, p, labels=["supportive", "skeptical"],
                                                               average="macro", zero_division=0) for p in preds]))
    # the p-value is the paired bootstrap on the saved predictions of both seeds
    other = kfold["rows"][-1]
    gold, _, preds = run.prediction_lists("kfold", other["model"])
    _, _, ref = run.prediction_lists("kfold", kfold["reference"])
    expected = paired_bootstrap(gold, preds, ref, ["conditional", "skeptical", "supportive"], n_resamples=200, seed=0)
    assert other["vs_reference"]["p_value"] == pytest.approx(expected.p_value)
    assert other["vs_reference"]["delta"] == pytest.approx(other["macro_f1"] - best["macro_f1"])


def test_reference_is_the_best_baseline_not_the_best_model(runs, tmp_path):
    # the run's own config counts every model as a baseline, so there the best model is the
    # reference either way; a copy whose config leaves the best model out of the baselines can
    # tell "best baseline" from "best model"
    import shutil
    import tomllib

    from comment_stance.experiments import dump_toml, load_run

    rows = leaderboard(runs[0])["evaluations"]["fixed"]["rows"]
    best, runner_up = rows[0]["model"], rows[1]["model"]
    assert rows[0]["macro_f1"] > rows[1]["macro_f1"]  # a clear winner, or the test shows nothing
    copy = tmp_path / "run"
    shutil.copytree(runs[0].folder, copy)
    config = tomllib.loads((copy / "config.toml").read_text())
    config["scoring"]["baselines"] = [r["model"] for r in rows if r["model"] != best]
    (copy / "config.toml").write_text(dump_toml(config))
    ev = leaderboard(load_run(copy))["evaluations"]["fixed"]
    assert ev["reference"] == runner_up != best
    by_model = {r["model"]: r for r in ev["rows"]}
    assert by_model[best]["vs_reference"]["delta"] == pytest.approx(rows[0]["macro_f1"] - rows[1]["macro_f1"])
    assert by_model[runner_up]["vs_reference"] is None and not by_model[best]["baseline"]


def test_mcnemar_option(runs):
    board = leaderboard(runs[0], significance="mcnemar")
    row = [r for r in board["evaluations"]["loao"]["rows"] if r["vs_reference"]][0]
    gold, _, preds = runs[0].prediction_lists("loao", row["model"])
    _, _, ref = runs[0].prediction_lists("loao", board["evaluations"]["loao"]["reference"])
    worst = max((mcnemar(gold, a, b) for a, b in zip(preds, ref)), key=lambda t: t.p_value)
    assert row["vs_reference"]["test"] == "mcnemar" and row["vs_reference"]["p_value"] == worst.p_value
    assert "McNemar" in markdown(board)


def test_markdown_has_every_model_and_the_columns(runs):
    text = markdown(leaderboard(runs[0]))
    for model in ("majority", "tfidf-logreg", "tfidf-svm"):
        assert f"| {model} |" in text
    for column in ("macro-F1 [95% CI]", "F_avg", "F1 conditional", "accuracy", "train s", "rows/s", "| p |"):
        assert column in text
    assert re.search(r"\| 0\.\d{3} ± 0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\] \|", text)  # mean ± std [CI] with 2 seeds
    assert "### Macro-F1 per article: loao" in text
    assert "Reproduce: `stance experiment run" in text


def test_the_confidence_table_is_the_seed_mean_of_the_metrics(runs, tmp_path):
    board = leaderboard(runs[0])
    text = markdown(board)
    assert "### Confidence on the test comments: fixed" in text and "flagged below 0.7" in text
    seeds = runs[0].metrics["evaluations"]["fixed"]["models"]["tfidf-svm"]["seeds"]
    ece = np.mean([seeds[s]["confidence"]["ece"] for s in ("0", "1")])
    caught = np.mean([next(r for r in seeds[s]["confidence"]["review"] if r["below"] == 0.7)["errors_caught_share"]
                      for s in ("0", "1")])
    line = next(line for line in text.splitlines() if line.startswith("| tfidf-svm | ") and line.count("|") == 8)
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[1] == f"{ece:.3f}" and cells[6] == f"{caught:.0%}"
    assert "Confidence on the test comments" in html_page(board, runs[0])
    short = markdown(board, details=False)  # what `stance experiment run` prints: no table, so no note on it
    assert "Confidence on the test comments" not in short and "- Confidence:" not in short
    assert "- Confidence:" in text
    # a run written before metrics.json had the confidence summary still makes a report, without the table
    older = tmp_path / "older"
    shutil.copytree(runs[0].folder, older)
    metrics = runs[0].metrics
    for entry in metrics["evaluations"].values():
        for model in entry["models"].values():
            for seed in model["seeds"].values():
                seed.pop("confidence", None)
    (older / "metrics.json").write_text(json.dumps(metrics))
    old = markdown(leaderboard(load_run(older)))
    assert "Confidence on the test comments" not in old and "| tfidf-svm |" in old


def test_html_is_self_contained_with_embedded_images(runs):
    page = html_page(leaderboard(runs[0]), runs[0])
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # per evaluation: one confusion matrix per model and one per-article chart
    assert len(images) == (3 + 1) * 3 + (2 + 1)
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing loaded from elsewhere
    for model in ("majority", "tfidf-logreg", "tfidf-svm"):
        assert model in page
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")


def test_export_results_writes_three_small_files_and_never_clobbers(runs, tmp_path):
    paths = export_results(runs[0], tmp_path / "results")
    assert sorted(p.name for p in paths.values()) == ["metrics.json", "report.html", "report.md"]
    data = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert set(data) == {"leaderboard", "run", "config", "environment", "metrics", "timings"}
    assert data["metrics"] == runs[0].metrics  # the numbers are the run's own
    with pytest.raises(OutputError, match="already exists"):
        export_results(runs[0], tmp_path / "results")
    export_results(runs[0], tmp_path / "results", overwrite=True)


def test_compare_runs_pairs_the_same_comments_and_lists_changes(runs):
    a, b = runs
    comparison = compare_runs(a, b, n_resamples=100)
    rows = {(r["evaluation"], r["model"]): r for r in comparison["rows"]}
    same = rows[("kfold", "majority")]
    assert same["delta"] == 0 and same["p_value"] == 1.0 and same["paired"]
    changed = rows[("kfold", "tfidf-svm")]
    assert changed["delta"] == pytest.approx(changed["b"] - changed["a"])
    assert {c["key"] for c in comparison["config_changes"]} == {"models.tfidf-svm.C"}
    assert comparison["data_changes"] == []
    text = comparison_markdown(comparison)
    assert "`models.tfidf-svm.C`: 0.5 → 4" in text and f"A: {a.name}" in text


def test_cli_report_one_and_two_runs(runs, tmp_path):
    a, b = runs
    result = runner.invoke(app, ["report", str(a.folder)])
    assert result.exit_code == 0, result.output
    assert "# Leaderboard: tiny" in result.output and (a.folder / "report.html").is_file()
    out = tmp_path / "published"
    assert runner.invoke(app, ["report", str(a.folder), "--out", str(out), "--quiet"]).exit_code == 0
    assert (out / "metrics.json").is_file() and (out / "report.md").read_text().startswith("# Leaderboard: tiny")
    again = runner.invoke(app, ["report", str(a.folder), "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    both = runner.invoke(app, ["report", str(a.folder), str(b.folder), "--json"])
    assert both.exit_code == 0, both.output
    assert json.loads(both.output)["config_changes"][0]["key"] == "models.tfidf-svm.C"
    three = runner.invoke(app, ["report", str(a.folder), str(b.folder), str(a.folder)])
    assert three.exit_code == 1 and "give one run folder, or two" in three.output
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no such run folder" in missing.output


def test_error_analysis_helpers(runs):
    run = runs[0]
    wrong = misclassified(run, "loao", "tfidf-logreg")
    table = run.predictions("loao", "tfidf-logreg", seed=0)
    assert len(wrong) == int((~table["correct"]).sum())
    assert (wrong["gold"] != wrong["predicted"]).all()
    assert list(wrong["confidence"]) == sorted(wrong["confidence"], reverse=True)
    by_article = errors_by(table, "article_id")
    assert by_article["comments"].sum() == 42 and by_article["errors"].sum() == len(wrong)
    scores = article_scores(run, "loao")
    assert list(scores.index) == ["art0", "art1"] and set(scores.columns) == {"majority", "tfidf-logreg"}


def test_errors_by_a_list_column_by_hand():
    frame = pd.DataFrame({"correct": [True, False, False, True],
                          "phenomena": [["irony"], ["irony", "negation"], [], None]})
    table = errors_by(frame, "phenomena").set_index("phenomena")
    assert table.loc["irony"].tolist() == [2, 1, 0.5]
    assert table.loc["negation"].tolist() == [1, 1, 1.0]
    assert table.loc["(none)"].tolist() == [2, 1, 0.5]
