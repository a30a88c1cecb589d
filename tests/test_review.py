"""Review reasons (off_topic, unknown_target, low_confidence) and the off-topic gate."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import comment_stance as cs
from comment_stance.cli import app
from comment_stance.errors import DataError
from comment_stance.models.baselines import MajorityModel
from comment_stance.offtopic import choose_threshold, flag_scores
from comment_stance.review import join_reasons, missing_target, review_flags, reviews, uses_targets
from comment_stance.scoring import output_columns, predict, score_file

from .conftest import FIXTURES

LABELS = {"conditional", "skeptical", "supportive"}
SPAM = "Earn $500 a day working from home!! Crypto signals, DM me on telegram, click the link"
OFF_TOPIC = [
    "Earn $300 a day from home, click the link in my bio!!",
    "Make money online, crypto signals, DM me on telegram",
    "Cheap hotels and flights, 50% off, book now at deals dot com",
    "Work from home, $400 daily, no experience, WhatsApp me",
    "Best betting tips, join our telegram channel now",
    "Good morning everyone, greetings from the coast!",
    "Who won the football last night? Great match",
    "The paywall on this site is getting ridiculous",
    "Weather is lovely today, going for a walk",
    "👍👍",
    "Happy birthday mum!",
    "Mods please delete the spam links",
]


# -- the rules, by hand --------------------------------------------------------------------------

def test_reasons_are_joined_most_important_first():
    off = [True, False, False, False, True]
    unknown = [True, True, False, False, False]
    low = [True, False, True, False, True]
    assert join_reasons(off, unknown, low) == [
        "off_topic;unknown_target;low_confidence", "unknown_target", "low_confidence", None, "off_topic;low_confidence"]


def test_missing_targets():
    assert missing_target(["Pact A", None, "", "  ", float("nan"), "x"]).tolist() == [False, True, True, True, True, False]


class FixedGate(MajorityModel):
    """A gate whose off-topic probability is given per text."""

    def __init__(self, p=None):
        super().__init__()
        self.p = p

    def predict_proba(self, X):
        p = np.array([self.p[t] for t in X["text"]])
        return np.column_stack([p, 1 - p])


def targeted_model(trained_with=("Pact A",)):
    model = cs.make_model("tfidf-logreg")  # reads targets (use_target is on by default)
    model.trained_targets_ = list(trained_with)
    return model


def test_review_flags_by_hand():
    model = targeted_model()
    gate = FixedGate({"spam": 0.9, "ok": 0.1, "edge": 0.5})
    gate.classes_ = np.array(["off_topic", "on_topic"], dtype=object)
    gate.threshold_ = 0.5
    model.off_topic_ = gate
    inputs = pd.DataFrame({"text": ["spam", "ok", "ok", "edge", "ok"],
                           "target": ["Pact A", "Pact A", None, "Pact Z", "Pact A"]})
    needs, reasons = review_flags(model, inputs, np.array([0.9, 0.9, 0.4, 0.9, 0.55]), review_below=0.6)
    # the threshold counts as off-topic; a target unseen in training is not flagged, a missing one is
    assert reasons == ["off_topic", None, "unknown_target;low_confidence", "off_topic", "low_confidence"]
    assert needs.tolist() == [True, False, True, True, True]
    # without review_below no row is low_confidence
    assert review_flags(model, inputs, np.array([0.1] * 5))[1] == [
        "off_topic", None, "unknown_target", "off_topic", None]


def test_which_models_flag_missing_targets():
    assert uses_targets(targeted_model())
    assert not uses_targets(targeted_model(trained_with=()))  # trained on rows without targets
    no_target = cs.make_model("tfidf-logreg", use_target=False)
    no_target.trained_targets_ = ["Pact A"]
    assert not uses_targets(no_target)  # never reads them
    assert not uses_targets(MajorityModel())


def test_review_columns_only_when_asked_or_gated():
    plain = targeted_model()
    assert not reviews(plain) and reviews(plain, 0.5) and reviews(plain, review=True)
    plain.classes_ = np.array(sorted(LABELS), dtype=object)
    assert "review_reason" not in output_columns(plain)[0]
    plain.off_topic_ = FixedGate()
    columns, types = output_columns(plain)
    assert columns[-3:] == ["needs_review", "review_reason", "error"] and types["review_reason"] == "str"


def test_threshold_choice_and_flag_scores():
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    is_off = np.array([True, True, False, True, False, False])
    # flagging from 0.3 catches all three at one false flag: F1 6/7, better than 0.8's 4/5
    assert choose_threshold(p, is_off) == 0.3
    # equal F1 (2/3 at 0.9 and at 0.6): the higher threshold, which flags fewer comments
    assert choose_threshold(np.array([0.9, 0.8, 0.7, 0.6]), np.array([True, False, False, True])) == 0.9
    scores = flag_scores(p >= 0.8, is_off)
    assert (scores["true_flags"], scores["false_flags"], scores["missed"]) == (2, 0, 1)
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(2 / 3)


# -- end to end: a tiny TF-IDF with a gate --------------------------------------------------------

@pytest.fixture(scope="module")
def off_topic_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("off") / "off.jsonl"
    path.write_text("".join(json.dumps({"id": f"x{i}", "text": t, "label": "off_topic"}) + "\n"
                            for i, t in enumerate(OFF_TOPIC)))
    return path


@pytest.fixture(scope="module")
def gated(tmp_path_factory, off_topic_file):
    folder = tmp_path_factory.mktemp("model") / "m"
    result = cs.train(FIXTURES / "tiny", "tfidf-logreg", folder, off_topic=off_topic_file)
    return folder, result


def test_gate_is_a_model_folder_inside_the_model(gated):
    folder, result = gated
    config = json.loads((folder / "config.json").read_text())
    gate_config = json.loads((folder / "off_topic" / "config.json").read_text())
    assert gate_config["family"] == "tfidf" and gate_config["labels"] == ["off_topic", "on_topic"]
    threshold = gate_config["training"]["threshold"]
    assert 0 < threshold < 1 and config["off_topic"] == {"folder": "off_topic", "threshold": threshold}
    assert gate_config["training"]["threshold_chosen_on"] == "train"  # one file: no off-topic dev
    assert not list(folder.rglob("*.pkl")) and list((folder / "off_topic").rglob("*.skops"))
    assert "## Off-topic gate" in (folder / "README.md").read_text()
    loaded = cs.load_model(folder)
    assert loaded.off_topic_.threshold_ == threshold
    assert result.off_topic == {}  # the off-topic file has no dev/test split to score on


def test_spam_is_flagged_off_topic_and_keeps_a_stance(gated, tmp_path):
    folder, _ = gated
    model = cs.load_model(folder)
    table = pd.DataFrame({"text": [SPAM, "Make it reciprocal and I'm in."], "target": ["Pact A", "Pact A"]})
    scored = predict(model, table)
    assert scored.loc[0, "needs_review"] and scored.loc[0, "review_reason"] == "off_topic"
    assert not scored.loc[1, "needs_review"] and scored.loc[1, "review_reason"] is None
    assert set(scored["label"]) <= LABELS
    # the gate flags only: the labels and probabilities equal the same model without it
    model.off_topic_ = None
    plain = predict(model, table)
    assert plain.columns.tolist() == [c for c in scored.columns if c not in ("needs_review", "review_reason")]
    pd.testing.assert_frame_equal(plain, scored[plain.columns])
    # the same through score_file, with no review_below: the gate alone adds the columns
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": str(i), "text": t, "target": "Pact A"}) + "\n"
                              for i, t in enumerate(table["text"])))
    summary = score_file(folder, source, tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["review_reason"] for r in rows] == ["off_topic", None] and summary.needs_review == 1
    assert rows[0]["label"] in LABELS


def test_cli_train_with_off_topic(tmp_path, off_topic_file):
    out = tmp_path / "m"
    result = CliRunner().invoke(app, ["train", "--data", str(FIXTURES / "tiny"), "--out", str(out),
                                      "--off-topic", str(off_topic_file), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "off_topic" / "config.json").is_file()
    scored = CliRunner().invoke(app, ["predict", "--model", str(out), "--text", SPAM, "--target", "Pact A", "--json"])
    row = json.loads(scored.stdout)
    assert row["review_reason"] == "off_topic" and row["label"] in LABELS


def test_off_topic_data_must_be_off_topic(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "Sign it.", "label": "supportive"}) + "\n")
    with pytest.raises(DataError, match="labels other than 'off_topic'"):
        cs.train(FIXTURES / "tiny", "tfidf-logreg", off_topic=bad)


def test_data_check_knows_off_topic_data(tmp_path):
    from comment_stance.corpus import check_corpus

    rows = [{"id": f"x{i}", "text": t, "label": "off_topic", "article_id": "art0",
             "parent_id": "c037" if i == 0 else None} for i, t in enumerate(OFF_TOPIC)]
    rows.append({"id": "dup", "text": "Fine, as long as refugees are not handed over!", "label": "off_topic",
                 "article_id": "art0", "parent_id": None})  # a near copy of a tiny-corpus comment
    path = tmp_path / "off.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    alone = check_corpus(path)
    # one label, few comments, few replies: fine for off-topic data; the reply's parent is elsewhere
    assert alone.stats["off_topic_data"] and len(alone.failures) == 1 and "parent_id" in alone.failures[0]
    with_context = check_corpus(path, context=FIXTURES / "tiny")
    assert with_context.stats["near_duplicates_of_context"] == 1
    assert len(with_context.failures) == 1 and "near duplicates of comments in" in with_context.failures[0]


def test_a_model_missing_its_gate_folder_is_refused(gated, tmp_path):
    import shutil

    from comment_stance.errors import ModelError

    copy = tmp_path / "m"
    shutil.copytree(gated[0], copy)
    shutil.rmtree(copy / "off_topic")
    with pytest.raises(ModelError, match="off-topic gate"):
        cs.load_model(copy)
