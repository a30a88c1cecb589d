"""Corpus statistics and quality checks."""

import json

import pytest
from typer.testing import CliRunner

from comment_stance.cli import app
from comment_stance.corpus import CheckRules, check_corpus, near_duplicate_pairs


def test_near_duplicates_by_hand():
    texts = ["The pact is a sham and everyone knows it.",
             "The pact is a sham and everyone knows it!!",   # same after normalization
             "the pact is a sham and everyone know it",    # near
             "Ratify it tomorrow."]
    pairs = near_duplicate_pairs(texts, threshold=0.8)
    assert (0, 1, 1.0) in pairs
    assert any(i == 0 and j == 2 and 0.8 <= s < 1.0 for i, j, s in pairs)
    assert all(3 not in (i, j) for i, j, _ in pairs)


def test_jaccard_value_matches_a_set_computation():
    a, b = "abcdefgh", "abcdefxy"
    grams = lambda t: {t[i:i + 5] for i in range(len(t) - 4)}
    expected = len(grams(a) & grams(b)) / len(grams(a) | grams(b))
    assert near_duplicate_pairs([a, b], threshold=0.0) == [(0, 1, round(expected, 4))]


def write(folder, split, rows):
    folder.mkdir(exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_check_flags_duplicates_leaks_orphans_and_balance(tmp_path):
    rows = [{"id": f"c{i}", "text": f"comment number {i} says something different {i * 7919}",
             "label": "a" if i % 10 else "b", "article_id": "x", "parent_id": None} for i in range(40)]
    rows[5]["parent_id"] = "missing"
    train, test = rows[:30], rows[30:] + [dict(rows[0], id="dup")]
    write(tmp_path / "ds", "train", train)
    write(tmp_path / "ds", "test", test)
    result = check_corpus(tmp_path / "ds", CheckRules(min_per_article=10, min_reply_share=0.0))
    joined = " | ".join(result.failures)
    assert not result.ok
    assert "near-duplicate rate" in joined
    assert "label 'b' is 12.2%" in joined
    assert "parent_id that is not in the data" in joined
    assert "also occur in train" in joined


def test_check_passes_a_clean_dataset_and_cli_exit_codes(tmp_path):
    rows = [{"id": f"c{i}", "text": f"opinion {i}: " + " ".join(str(i * k) for k in range(3, 9)),
             "label": ["a", "b", "c"][i % 3]} for i in range(30)]
    write(tmp_path / "ok", "train", rows)
    assert check_corpus(tmp_path / "ok").ok
    runner = CliRunner()
    good = runner.invoke(app, ["data", "check", str(tmp_path / "ok")])
    assert good.exit_code == 0 and good.output.strip().endswith("ok")
    write(tmp_path / "bad", "train", rows + [dict(rows[0], id="again")])
    bad = runner.invoke(app, ["data", "check", str(tmp_path / "bad"), "--json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["ok"] is False
