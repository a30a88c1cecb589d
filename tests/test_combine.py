"""Combining trained model folders into one ensemble (``stance combine``), without training."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import comment_stance as cs
from comment_stance.calibration import softmax
from comment_stance.cli import app
from comment_stance.data import load_dataset
from comment_stance.errors import ModelError
from comment_stance.models import make_model
from comment_stance.models.ensemble import EnsembleModel, preset_of
from comment_stance.training import train

OFF_TOPIC = ["The weather in Lisbon is lovely this week.", "Anyone know a good pizza place near the station?",
             "My cat knocked the router off the shelf again.", "Football scores from last night, anyone?"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two TF-IDF models trained apart on the tiny dataset; the first has an off-topic gate."""
    root = tmp_path_factory.mktemp("members")
    off = root / "off.jsonl"
    off.write_text("".join(json.dumps({"id": f"x{i}", "text": t, "label": "off_topic"}) + "\n"
                           for i, t in enumerate(OFF_TOPIC)))
    tiny = Path(__file__).parent / "fixtures" / "tiny"
    train(tiny, "tfidf-svm", root / "svm", params={"seed": 1}, off_topic=off)
    train(tiny, "tfidf-logreg", root / "logreg", params={"seed": 2})
    return root / "svm", root / "logreg"


def test_the_combined_folder_scores_the_weighted_mean_and_says_where_it_came_from(folders, tiny_dir, tmp_path):
    svm, logreg = folders
    tiny = load_dataset(tiny_dir)
    result = cs.combine([svm, logreg], tmp_path / "ens", weights=[3, 1], data=tiny_dir)
    mean = 0.75 * cs.load_model(svm).predict_proba(tiny.test) + 0.25 * cs.load_model(logreg).predict_proba(tiny.test)
    # with data, the weighted mean is recalibrated on its dev file (tests/test_ensemble.py)
    assert result.model.temperature_ != 1.0
    expected = softmax(np.log(mean), result.model.temperature_)
    np.testing.assert_allclose(result.model.predict_proba(tiny.test), expected, rtol=1e-9)
    loaded = cs.load_model(tmp_path / "ens")  # the folder holds copies of the members
    np.testing.assert_allclose(loaded.predict_proba(tiny.test), expected, rtol=1e-9)
    assert loaded.family == "ensemble" and list(loaded.members) == ["tfidf-svm", "tfidf-logreg"]
    config = json.loads((tmp_path / "ens" / "config.json").read_text())
    sources = config["training"]["combined_from"]
    assert [s["folder"] for s in sources] == [str(svm), str(logreg)]
    assert [s["seed"] for s in sources] == [1, 2]
    assert sources[0]["sha256"] == json.loads((svm / "config.json").read_text())["training"]["sha256"]
    # scored on the dev and test splits like a trained model, and the scores are the model's own
    assert sorted(result.metrics) == ["dev", "test"]
    again = cs.evaluate_model(loaded, tiny.test, context=[tiny.train])
    assert (result.metrics["test"]["macro_f1"], result.metrics["test"]["accuracy"]) == \
        (again["macro_f1"], again["accuracy"])
    assert json.loads((tmp_path / "ens" / "metrics.json").read_text())["test"]["macro_f1"] == \
        result.metrics["test"]["macro_f1"]
    # the first member's off-topic gate flags for the ensemble too
    assert config["off_topic"] and config["training"]["off_topic_from"] == str(svm)
    assert loaded.off_topic_ is not None


def test_a_seed_ensemble_of_one_preset_can_adapt_and_reload(folders, tiny_dir, tmp_path):
    tiny = load_dataset(tiny_dir)
    seeds = [train(tiny, "tfidf-svm", tmp_path / f"s{seed}", params={"seed": seed}).folder for seed in (0, 1)]
    combined = cs.combine(seeds, tmp_path / "seeds").model
    assert list(combined.members) == ["tfidf-svm", "tfidf-svm"]
    adapted = combined.adapt(tiny.dev, tiny.dev["label"], C=0.5)
    assert all(m["method"] not in ("kept", None) for m in adapted.adaptation_["members"])
    assert cs.load_model(tmp_path / "seeds").predict(tiny.test).tolist() == combined.predict(tiny.test).tolist()


def test_the_cli_writes_the_ensemble_and_prints_its_weights(folders, tiny_dir, tmp_path):
    svm, logreg = folders
    out = tmp_path / "ens"
    result = CliRunner().invoke(app, ["combine", str(svm), str(logreg), "-o", str(out), "--weights", "2,2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["members"] == ["tfidf-svm", "tfidf-logreg"] and report["weights"] == [0.5, 0.5]
    assert report["metrics"] == {} and (out / "config.json").is_file()
    text = CliRunner().invoke(app, ["combine", str(svm), str(logreg), "-o", str(tmp_path / "e2"), "-d", str(tiny_dir)])
    assert text.exit_code == 0, text.output
    assert "combined 2 models: tfidf-svm (0.50), tfidf-logreg (0.50)" in text.output
    assert "test  n=9" in text.output


def _relabelled(tmp_path, tiny_dir):
    """A copy of the tiny dataset whose 'conditional' comments are called 'mixed'."""
    folder = tmp_path / "relabelled"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        rows = [json.loads(line) for line in (tiny_dir / f"{split}.jsonl").read_text().splitlines() if line.strip()]
        for row in rows:
            row["label"] = "mixed" if row["label"] == "conditional" else row["label"]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return train(folder, "tfidf-logreg", tmp_path / "other-labels").folder


@pytest.mark.parametrize("case, message", [
    ("one", "1 model given to combine"),
    ("weights", "3 weights for 2 models"),
    ("bad-weights", "--weights '1,x' is not a list of numbers"),
    ("ensemble", "ens is itself an ensemble"),
    ("labels", "other-labels knows the labels"),
    ("missing", "nope: no such model folder"),
])
def test_unusable_input_is_one_line_and_writes_nothing(folders, tiny_dir, tmp_path, case, message):
    svm, logreg = folders
    args = {"one": [svm], "weights": [svm, logreg, "--weights", "1,2,3"], "bad-weights": [svm, logreg, "--weights", "1,x"],
            "missing": [svm, tmp_path / "nope"]}.get(case)
    if case == "ensemble":
        args = [svm, cs.combine([svm, logreg], tmp_path / "ens").folder]
    if case == "labels":
        args = [svm, _relabelled(tmp_path, tiny_dir)]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["combine", *map(str, args), "-o", str(out)])
    assert result.exit_code == 1
    assert message in result.output and result.output.startswith("error: ") and result.output.count("\n") == 1
    assert not out.exists()


def test_no_folder_is_replaced_unless_asked_and_an_input_never(folders, tmp_path):
    svm, logreg = folders
    before = (svm / "config.json").read_bytes()
    result = CliRunner().invoke(app, ["combine", str(svm), str(logreg), "-o", str(svm), "--overwrite"])
    assert result.exit_code == 1 and "is one of the model folders to combine" in result.output
    assert (svm / "config.json").read_bytes() == before
    out = tmp_path / "ens"
    cs.combine([svm, logreg], out)
    written = (out / "config.json").read_bytes()
    result = CliRunner().invoke(app, ["combine", str(logreg), str(svm), "-o", str(out)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert (out / "config.json").read_bytes() == written
    result = CliRunner().invoke(app, ["combine", str(logreg), str(svm), "-o", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert list(cs.load_model(out).members) == ["tfidf-logreg", "tfidf-svm"]


def test_members_are_named_by_the_preset_they_were_trained_from(tmp_path):
    assert preset_of(make_model("tfidf-svm")) == "tfidf-svm"
    assert preset_of(make_model("tfidf-logreg")) == "tfidf-logreg"
    assert preset_of(make_model("transformer")) == "transformer"
    assert preset_of(make_model("transformer", base_model=str(tmp_path / "all-mpnet-base-v2") + "/")) \
        == "transformer-mpnet"
    with pytest.raises(ModelError, match="not a fitted model"):
        EnsembleModel.from_models(["models/a", "models/b"])
    with pytest.raises(ModelError, match="not fitted|fit"):
        EnsembleModel.from_models([make_model("tfidf-svm"), make_model("tfidf-logreg")])
