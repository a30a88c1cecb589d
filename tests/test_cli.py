"""The CLI as a user sees it: output, files written and exit codes (typer's CliRunner)."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from comment_stance.cli import app

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture
def trained(tiny_dir, tmp_path):
    out = tmp_path / "model"
    result = run("train", "--data", tiny_dir, "--model", "tfidf-logreg", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def test_help_lists_every_command():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("train", "evaluate", "predict", "data"):
        assert command in result.output


def test_train_prints_a_metrics_table_and_writes_a_model_folder(tiny_dir, tmp_path):
    out = tmp_path / "m"
    result = run("train", "--data", tiny_dir, "--model", "tfidf-svm", "--out", out)
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output and "precision" in result.output
    for name in ("config.json", "metrics.json", "README.md", "confusion-test.png", "confusion-dev.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"dev", "test"}


def test_train_json_output(tiny_dir, tmp_path):
    result = run("train", "--data", tiny_dir, "--model", "majority", "--out", tmp_path / "m", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["metrics"]["test"]["n"] == 9


def test_train_refuses_to_clobber_an_existing_model(trained, tiny_dir):
    before = (trained / "config.json").read_text()
    result = run("train", "--data", tiny_dir, "--model", "majority", "--out", trained)
    assert result.exit_code == 1
    assert "already exists" in result.output and "--overwrite" in result.output
    assert (trained / "config.json").read_text() == before


def test_train_params_reach_the_model(tiny_dir, tmp_path):
    out = tmp_path / "m"
    result = run("train", "--data", tiny_dir, "--out", out, "--param", "C=0.25", "--param", "word_ngrams=1,3",
                 "--per-target", "--quiet")
    assert result.exit_code == 0, result.output
    params = json.loads((out / "config.json").read_text())["params"]
    assert params["C"] == 0.25 and params["word_ngrams"] == [1, 3] and params["per_target"] is True


def test_evaluate_json_has_the_contracted_keys(trained, tiny_dir):
    result = run("evaluate", "--model", trained, "--data", tiny_dir, "--polar", "supportive,skeptical", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("accuracy", "macro_f1", "per_class", "confusion", "f_avg", "macro_f1_ci", "weighted_f1"):
        assert key in data


def test_evaluate_prints_what_each_review_threshold_would_flag(trained, tiny_dir):
    result = run("evaluate", "--model", trained, "--data", tiny_dir)
    assert result.exit_code == 0, result.output
    table = json.loads(run("evaluate", "--model", trained, "--data", tiny_dir, "--json").output)["confidence"]
    assert f"confidence: ECE {table['ece']:.3f}, Brier {table['brier']:.3f}" in result.output
    lines = [line for line in result.output.splitlines() if line.strip("│ ").startswith("0.")]
    assert len(lines) == len(table["review"])
    for line, row in zip(lines, table["review"]):
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        assert cells[:3] == [f"{row['below']:.2f}", f"{row['flagged']} ({row['flagged_share']:.0%})",
                             f"{row['errors_caught']} of {table['errors']} ({row['errors_caught_share']:.0%})"]


def test_evaluate_writes_metrics_and_png_without_clobbering(trained, tiny_dir, tmp_path):
    out = tmp_path / "eval"
    assert run("evaluate", "--model", trained, "--data", tiny_dir, "--out", out, "--quiet").exit_code == 0
    assert (out / "metrics.json").is_file() and (out / "confusion.png").stat().st_size > 1000
    again = run("evaluate", "--model", trained, "--data", tiny_dir, "--out", out, "--quiet")
    assert again.exit_code == 1 and "already exists" in again.output


def test_evaluate_rejects_labels_the_model_does_not_know(trained, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": "supportive"}\n{"text": "y", "label": "FAVOR"}\n')
    result = run("evaluate", "--model", trained, "--data", bad)
    assert result.exit_code == 1
    assert "bad.jsonl: line 2: label 'FAVOR' is unknown to the model" in result.output


def test_bad_data_is_one_line_with_a_hint(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("comment,label\nhello,a\n")
    result = run("train", "--data", bad, "--out", tmp_path / "m")
    assert result.exit_code == 1
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--text-col" in lines[0]
    assert not (tmp_path / "m").exists()


def test_missing_model_folder(tmp_path):
    result = run("evaluate", "--model", tmp_path / "nope")
    assert result.exit_code == 1 and "no such model folder" in result.output


def test_predict_one_comment_json(trained):
    result = run("predict", "--model", trained, "--text", "Publish the annexes and then fine.", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["label"] in ("supportive", "skeptical", "conditional")
    probs = [row[f"p_{l}"] for l in ("supportive", "skeptical", "conditional")]
    assert abs(sum(probs) - 1) < 1e-6 and row["confidence"] == pytest.approx(max(probs))


def test_predict_from_stdin(trained):
    result = run("predict", "--model", trained, "-", "--json", input="Theatre for the cameras.\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["label"] in ("supportive", "skeptical", "conditional")


def test_data_stats(tiny_dir):
    result = run("data", "stats", tiny_dir, "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["splits"]["train"]["rows"] == 24
    assert stats["labels"] == ["conditional", "skeptical", "supportive"]


def test_help_does_not_import_torch():
    code = ("import sys; from typer.testing import CliRunner; from comment_stance.cli import app; "
            "r = CliRunner().invoke(app, ['train', '--help']); assert r.exit_code == 0; "
            "print('torch' in sys.modules, 'transformers' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]
