"""Distillation (train --teacher --unlabelled): a teacher's labels on unlabelled comments train a fast model."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from comment_stance.cli import app
from comment_stance.data import load_dataset, table_sha256
from comment_stance.distillation import label_with, teacher_table
from comment_stance.errors import DataError, ModelError
from comment_stance.models import make_model
from comment_stance.persist import load_model
from comment_stance.training import model_frame, train

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


#: comments with a word the tiny fixture never uses, so only the teacher's labels can teach it
NEW_WORD = "zorblax"


def unlabelled_rows(n: int = 30) -> list[dict]:
    return [{"id": f"u{i}", "text": f"The {NEW_WORD} clause, item {i}, says it all.", "target": "Pact A"}
            for i in range(n)]


def test_teacher_table_leaves_out_labelled_and_unsure_comments_and_counts_them():
    comments = pd.DataFrame({"id": ["u1", "u2", "u3", "u4"], "text": ["A deal.", " Old news ", "Maybe.", "A trap."],
                             "target": ["P", "P", "P", "Q"]})
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.55, 0.45], [0.3, 0.7]])
    labelled = {"train": pd.DataFrame({"text": ["A trap."], "target": ["P"]}),   # another target: not the same
                "dev": pd.DataFrame({"text": ["Old news"], "target": ["P"]}),    # same once stripped
                "test": pd.DataFrame({"text": ["Old news", "A trap."], "target": ["P", "Q"]})}
    rows = teacher_table(comments, proba, ["supportive", "skeptical"], labelled=labelled, min_confidence=0.6)
    assert rows.table[["id", "label"]].values.tolist() == [["u1", "supportive"]]
    assert rows.table["teacher_confidence"].tolist() == [0.9]
    # the first split that holds a comment counts it; u3 is unsure, u2 and u4 are labelled elsewhere
    assert rows.labelled == {"dev": 1, "test": 1}
    assert rows.below_confidence == 1
    record = rows.record()
    assert record["read"] == 4 and record["used"] == 1 and record["label_counts"] == {"supportive": 1}
    assert record["read"] == record["used"] + sum(record["labelled_elsewhere"].values()) + record["below_confidence"]


def test_teacher_table_rejects_a_wrong_shape_and_a_confidence_outside_0_1():
    comments = pd.DataFrame({"id": ["u1"], "text": ["A deal."]})
    with pytest.raises(ValueError, match="shape"):
        teacher_table(comments, np.array([[0.5, 0.5, 0.0]]), ["a", "b"])
    with pytest.raises(ModelError, match="between 0 and 1"):
        teacher_table(comments, np.array([[0.5, 0.5]]), ["a", "b"], min_confidence=1.5)


def test_label_with_scores_only_unlabelled_comments(tiny_dir):
    dataset = load_dataset(tiny_dir)
    teacher = make_model("tfidf-logreg").fit(model_frame(dataset.train), dataset.train["label"].tolist())
    seen = []
    original = teacher.predict_proba
    teacher.predict_proba = lambda frame: (seen.append(len(frame)), original(frame))[1]
    comments = pd.concat([dataset.test[["id", "text", "target"]].head(3),
                          pd.DataFrame(unlabelled_rows(5))], ignore_index=True)
    rows = label_with(teacher, comments, labelled={"test": dataset.test}, chunk_size=2)
    assert seen == [2, 2, 1]   # the three test comments cost no scoring
    assert rows.labelled == {"test": 3} and len(rows.table) == 5
    expected = [str(c) for c in teacher.classes_[original(model_frame(pd.DataFrame(unlabelled_rows(5)))).argmax(1)]]
    assert rows.table["label"].tolist() == expected


def test_a_distilled_model_learns_the_teachers_labels_and_records_them(tiny_dir, tmp_path):
    dataset = load_dataset(tiny_dir)
    teacher = make_model("majority").fit(model_frame(dataset.train), dataset.train["label"].tolist())
    taught = str(teacher.predict(pd.DataFrame({"text": ["anything"]}))[0])
    unlabelled = write_jsonl(unlabelled_rows(), tmp_path / "unlabelled.jsonl")
    probe = pd.DataFrame({"text": [f"A {NEW_WORD} clause."], "target": ["Pact A"]})

    plain = train(tiny_dir, "tfidf-logreg")
    result = train(tiny_dir, "tfidf-logreg", tmp_path / "student", teacher=teacher, unlabelled=unlabelled)
    column = list(result.model.classes_).index(taught)
    before = plain.model.predict_proba(model_frame(probe))[0, column]
    after = result.model.predict_proba(model_frame(probe))[0, column]
    assert after > before + 0.2, (before, after)
    assert result.model.predict(model_frame(probe))[0] == taught

    record = json.loads((tmp_path / "student" / "config.json").read_text())["training"]["distilled_from"]
    assert record["read"] == 30 and record["used"] == 30 and record["label_counts"] == {taught: 30}
    assert record["labelled_elsewhere"] == {} and record["below_confidence"] == 0
    assert record["unlabelled"] == str(unlabelled) and record["teacher"]["family"] == "majority"
    rows = pd.DataFrame(unlabelled_rows()).assign(label=taught)
    assert record["sha256"] == table_sha256(rows)
    # the gold rows are recorded as before, apart from the teacher's
    assert json.loads((tmp_path / "student" / "config.json").read_text())["training"]["rows"] == len(dataset.train)
    assert load_model(tmp_path / "student").predict(model_frame(probe))[0] == taught


def test_a_teachers_label_never_reaches_a_comment_that_is_scored(tiny_dir, tmp_path):
    dataset = load_dataset(tiny_dir)
    teacher_folder = train(tiny_dir, "tfidf-logreg", tmp_path / "teacher").folder
    rows = [{"id": r.id, "text": r.text, "target": r.target} for r in dataset.test.itertuples()]
    rows += [{"id": r.id, "text": r.text, "target": r.target} for r in dataset.dev.head(2).itertuples()]
    unlabelled = write_jsonl(rows + unlabelled_rows(4), tmp_path / "export.jsonl")
    result = run("train", "--data", tiny_dir, "--model", "tfidf-svm", "--out", tmp_path / "student",
                 "--teacher", teacher_folder, "--unlabelled", unlabelled, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)["distilled_from"]
    assert record["labelled_elsewhere"] == {"dev": 2, "test": len(dataset.test)}
    assert record["used"] == 4 and record["read"] == len(rows) + 4

    shown = run("train", "--data", tiny_dir, "--model", "tfidf-svm", "--out", tmp_path / "student2",
                "--teacher", teacher_folder, "--unlabelled", unlabelled, "--teacher-min-confidence", "0.99")
    assert shown.exit_code == 0, shown.output
    line = next(text for text in shown.output.splitlines() if text.startswith("teacher "))
    assert f"labelled 0 of {len(rows) + 4} unlabelled comments" in line
    assert f"2 already labelled in dev; {len(dataset.test)} already labelled in test; 4 below confidence 0.99" in line


def test_bad_distillation_input_is_one_line_and_writes_nothing(tiny_dir, tmp_path):
    teacher_folder = train(tiny_dir, "tfidf-logreg", tmp_path / "teacher").folder
    unlabelled = write_jsonl(unlabelled_rows(3), tmp_path / "unlabelled.jsonl")
    out = tmp_path / "student"

    alone = run("train", "--data", tiny_dir, "--out", out, "--teacher", teacher_folder)
    assert alone.exit_code != 0 and "--unlabelled" in alone.output

    both = run("train", "--data", tiny_dir, "--out", out, "--from", teacher_folder,
               "--teacher", teacher_folder, "--unlabelled", unlabelled)
    assert both.exit_code != 0 and "--from" in both.output

    folder = run("train", "--data", tiny_dir, "--out", out, "--teacher", teacher_folder, "--unlabelled", tmp_path)
    assert folder.exit_code != 0 and "is a folder; --unlabelled takes one file" in " ".join(folder.output.split())

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"id": "u1", "text": "Fine."}) + "\n" + json.dumps({"id": "u2", "text": " "}) + "\n")
    empty = run("train", "--data", tiny_dir, "--out", out, "--teacher", teacher_folder, "--unlabelled", broken)
    assert empty.exit_code != 0
    assert f"{broken}: line 2: empty text" in " ".join(empty.output.split())

    other = tmp_path / "other"
    other.mkdir()
    for split in ("train", "dev"):
        write_jsonl([{"id": f"{split}{i}", "text": f"Comment {i}.", "label": ["FAVOR", "AGAINST"][i % 2]}
                     for i in range(6)], other / f"{split}.jsonl")
    labels = run("train", "--data", other, "--out", out, "--teacher", teacher_folder, "--unlabelled", unlabelled)
    assert labels.exit_code != 0
    assert "labels AGAINST, FAVOR, but the teacher predicts conditional, skeptical, supportive" in \
        " ".join(labels.output.split())
    assert not out.exists()
    with pytest.raises(DataError):
        train(other, "tfidf-logreg", teacher=teacher_folder, unlabelled=unlabelled)
