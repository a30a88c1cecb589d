"""The ensemble family: the weighted mean of its members' calibrated probabilities."""

import json

import numpy as np
import pytest
from sklearn.base import clone
from typer.testing import CliRunner

from comment_stance import combine, load_model, make_model
from comment_stance.calibration import fit_temperature, nll, softmax
from comment_stance.cli import app
from comment_stance.data import load_dataset
from comment_stance.errors import ModelError
from comment_stance.models import PRESETS
from comment_stance.training import train

TWO_TFIDF = {"members": ["tfidf-svm", "tfidf-logreg"]}


@pytest.fixture
def tiny(tiny_dir):
    return load_dataset(tiny_dir)


def test_the_ensemble_is_the_weighted_mean_of_members_trained_alone(tiny):
    ensemble = make_model("ensemble", **TWO_TFIDF, weights=[3, 1], seed=4).fit(tiny.train, tiny.train["label"])
    alone = [make_model(name, seed=4).fit(tiny.train, tiny.train["label"]) for name in TWO_TFIDF["members"]]
    expected = 0.75 * alone[0].predict_proba(tiny.test) + 0.25 * alone[1].predict_proba(tiny.test)
    proba = ensemble.predict_proba(tiny.test)
    np.testing.assert_allclose(proba, expected, rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ensemble.classes_.tolist() == ["conditional", "skeptical", "supportive"]
    assert ensemble.predict(tiny.test).tolist() == ensemble.classes_[proba.argmax(axis=1)].tolist()
    # an estimator like any other: clone keeps the hyper-parameters and drops the fitted state
    copy = clone(ensemble)
    assert copy.get_params()["weights"] == [3, 1] and not hasattr(copy, "members_")


def test_the_preset_averages_the_svm_and_the_transformer():
    assert PRESETS["ensemble"][0] == "ensemble"
    model = make_model("ensemble")
    assert list(model.members) == ["tfidf-svm", "transformer"] and model.weights is None
    transformer = model._make_member("transformer")
    assert transformer.epochs == 3 and transformer.seed == 0  # as in experiments/baseline.toml
    assert make_model("ensemble", seed=7)._make_member("tfidf-svm").seed == 7


@pytest.mark.parametrize("params, message", [
    ({"members": []}, r"members=\[\] is not usable"),
    ({"members": ["tfidf-svm", "nope"]}, "member 'nope' is not a model preset"),
    ({"members": ["tfidf-svm", "ensemble"]}, "member 'ensemble' is not a model preset"),
    ({**TWO_TFIDF, "weights": [1]}, "does not fit 2 members"),
    ({**TWO_TFIDF, "weights": [1, -1]}, "does not fit 2 members"),
    ({**TWO_TFIDF, "weights": [0, 0]}, "does not fit 2 members"),
    ({**TWO_TFIDF, "member_params": {"transformer": {"epochs": 1}}}, "'transformer', which is not a member"),
    ({**TWO_TFIDF, "member_params": {"tfidf-svm": {"nope": 1}}}, "no hyper-parameter 'nope'"),
])
def test_unusable_settings_fail_before_any_member_is_trained(tiny, params, message):
    with pytest.raises(ModelError, match=message):
        make_model("ensemble", **params).fit(tiny.train, tiny.train["label"])


def test_a_saved_ensemble_loads_and_scores_the_same(tiny, tmp_path):
    result = train(tiny, "ensemble", tmp_path / "ens", params=TWO_TFIDF)
    config = json.loads((tmp_path / "ens" / "config.json").read_text())
    assert config["family"] == "ensemble"
    assert [m["preset"] for m in config["weights"]["members"]] == TWO_TFIDF["members"]
    for member in config["weights"]["members"]:  # each member is a model folder of its own
        assert json.loads((tmp_path / "ens" / member["path"] / "config.json").read_text())["family"] == "tfidf"
    loaded = load_model(tmp_path / "ens")
    np.testing.assert_allclose(loaded.predict_proba(tiny.test), result.model.predict_proba(tiny.test), rtol=1e-12)


def test_the_mean_is_recalibrated_on_dev_with_one_temperature(tiny, tmp_path):
    dev = (tiny.dev, tiny.dev["label"].tolist())
    plain = make_model("ensemble", **TWO_TFIDF, seed=4, calibrate=False).fit(tiny.train, tiny.train["label"], dev=dev)
    assert plain.temperature_ == 1.0
    ensemble = make_model("ensemble", **TWO_TFIDF, seed=4).fit(tiny.train, tiny.train["label"], dev=dev)
    index = {c: i for i, c in enumerate(ensemble.classes_)}
    dev_logits = np.log(plain.predict_proba(tiny.dev))
    dev_labels = np.array([index[v] for v in dev[1]])
    # the temperature minimizing the dev NLL of softmax(log(mean) / T), applied to every comment
    assert ensemble.temperature_ == pytest.approx(fit_temperature(dev_logits, dev_labels), rel=1e-9)
    assert ensemble.temperature_ != pytest.approx(1.0, abs=0.01)
    mean = plain.predict_proba(tiny.test)
    proba = ensemble.predict_proba(tiny.test)
    np.testing.assert_allclose(proba, softmax(np.log(mean), ensemble.temperature_), rtol=1e-9)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba.argmax(axis=1).tolist() == mean.argmax(axis=1).tolist()  # the same labels win
    assert nll(np.log(ensemble.predict_proba(tiny.dev)), dev_labels) < nll(dev_logits, dev_labels)
    # a dev label the ensemble never saw is left out of the fit
    odd = ensemble.recalibrate(tiny.dev, ["nope"] + dev[1][1:]).temperature_
    assert odd == pytest.approx(fit_temperature(dev_logits[1:], dev_labels[1:]), rel=1e-9)
    assert ensemble.recalibrate(tiny.dev[:1], ["nope"]).temperature_ == 1.0
    ensemble.recalibrate(*dev)
    # adapting members keeps the temperature; saving and loading keeps it
    assert ensemble.adapt(tiny.test, tiny.test["label"], C=5.0).temperature_ == ensemble.temperature_
    result = train(tiny, "ensemble", tmp_path / "ens", params={**TWO_TFIDF, "seed": 4})
    assert result.model.temperature_ == pytest.approx(ensemble.temperature_, rel=1e-9)
    config_path = tmp_path / "ens" / "config.json"
    config = json.loads(config_path.read_text())
    assert config["weights"]["temperature"] == pytest.approx(ensemble.temperature_, rel=1e-9)
    np.testing.assert_allclose(load_model(tmp_path / "ens").predict_proba(tiny.test), proba, rtol=1e-9)
    # a folder saved before the temperature existed loads as the plain mean
    del config["weights"]["temperature"]
    config_path.write_text(json.dumps(config))
    np.testing.assert_allclose(load_model(tmp_path / "ens").predict_proba(tiny.test), mean, rtol=1e-9)
    for bad in (0, -1.5, "2", True, None):
        config["weights"]["temperature"] = bad
        config_path.write_text(json.dumps(config))
        with pytest.raises(ModelError, match=f"temperature {bad!r} is not a positive number"):
            load_model(tmp_path / "ens")
    # combined from folders: recalibrated on the data's dev split, plain without data
    members = [train(tiny, name, tmp_path / name, params={"seed": 4}).model for name in TWO_TFIDF["members"]]
    assert combine(members).model.temperature_ == 1.0
    combined = combine(members, data=tiny).model
    assert combined.temperature_ == pytest.approx(ensemble.temperature_, rel=1e-9)
    np.testing.assert_allclose(combined.predict_proba(tiny.test), proba, rtol=1e-9)


def test_a_member_path_that_leaves_the_folder_is_refused(tiny, tmp_path):
    train(tiny, "ensemble", tmp_path / "ens", params=TWO_TFIDF)
    path = tmp_path / "ens" / "config.json"
    config = json.loads(path.read_text())
    config["weights"]["members"][0]["path"] = "../../elsewhere"
    path.write_text(json.dumps(config))
    with pytest.raises(ModelError, match="leaves the model folder"):
        load_model(tmp_path / "ens")


def test_stance_train_and_predict_with_an_ensemble(tiny_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "ens"
    result = runner.invoke(app, ["train", "--model", "ensemble", "--data", str(tiny_dir), "--out", str(out),
                                 "--param", 'members=["tfidf-svm", "tfidf-logreg"]'])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["predict", "--model", str(out), "--text", "Sign it now, it is a good pact."])
    assert result.exit_code == 0, result.output
    assert any(label in result.output for label in ("supportive", "skeptical", "conditional"))


def test_adapting_an_ensemble_adapts_each_member_as_its_family_does(tiny, tmp_path):
    base = train(tiny, "ensemble", tmp_path / "ens", params=TWO_TFIDF)
    new = tiny.test
    adapted = base.model.adapt(new, new["label"], C=5.0)
    for source, member in zip(base.model.members_, adapted.members_):  # the same as adapting each alone
        np.testing.assert_allclose(member.predict_proba(tiny.dev),
                                   source.adapt(new, new["label"], C=5.0).predict_proba(tiny.dev), rtol=1e-12)
    assert adapted.adaptation_["method"] == "members"
    assert [m["C"] for m in adapted.adaptation_["members"]] == [5.0, 5.0]
    assert base.model.members_[0] is not adapted.members_[0]  # the source is not changed
    with pytest.raises(ModelError, match="no adapting member of this ensemble adapts with 'lr'"):
        base.model.adapt(new, new["label"], lr=1e-5)
    # from the CLI: `stance train --from ENSEMBLE_FOLDER` saves an adapted ensemble that loads
    out = tmp_path / "adapted"
    result = CliRunner().invoke(app, ["train", "--from", str(tmp_path / "ens"), "--data", str(tiny.source),
                                      "--out", str(out), "--param", "C=5.0"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["family"] == "ensemble" and config["training"]["adaptation"]["method"] == "members"
    assert load_model(out).predict(tiny.test).shape == (len(tiny.test),)


def test_an_ensemble_can_adapt_some_members_and_keep_the_others(tiny, tmp_path):
    base = train(tiny, "ensemble", tmp_path / "ens", params=TWO_TFIDF)
    new = tiny.test
    svm, logreg = base.model.members_
    adapted = base.model.adapt(new, new["label"], C=5.0, members=["tfidf-svm"])
    np.testing.assert_allclose(adapted.members_[0].predict_proba(tiny.dev),
                               svm.adapt(new, new["label"], C=5.0).predict_proba(tiny.dev), rtol=1e-12)
    assert adapted.members_[1] is logreg  # kept as trained
    assert not np.allclose(adapted.members_[0].predict_proba(tiny.dev), svm.predict_proba(tiny.dev))
    assert [m["method"] for m in adapted.adaptation_["members"]][1] == "kept"
    assert adapted.adaptation_["members"][0]["C"] == 5.0
    with pytest.raises(ModelError, match="members names 'transformer', which is not a member"):
        base.model.adapt(new, new["label"], members=["transformer"])
    with pytest.raises(ModelError, match="names no member to adapt"):
        base.model.adapt(new, new["label"], members=[])
    # from the CLI, one member by name
    out = tmp_path / "adapted"
    result = CliRunner().invoke(app, ["train", "--from", str(tmp_path / "ens"), "--data", str(tiny.source),
                                      "--out", str(out), "--param", "members=tfidf-logreg"])
    assert result.exit_code == 0, result.output
    members = json.loads((out / "config.json").read_text())["training"]["adaptation"]["members"]
    assert members[0] == {"method": "kept"} and members[1]["method"] != "kept"
    np.testing.assert_allclose(load_model(out).members_[0].predict_proba(tiny.dev), svm.predict_proba(tiny.dev),
                               rtol=1e-12)


BAGGED = {**TWO_TFIDF, "bag": {"tfidf-logreg": 2}}


def test_a_bagged_member_is_the_mean_of_trainings_with_seeds_a_stride_apart(tiny, tmp_path):
    ensemble = make_model("ensemble", **BAGGED, seed=4).fit(tiny.train, tiny.train["label"])
    assert [m.seed for m in ensemble.members_] == [4, 4, 1004]
    alone = [make_model(name, seed=seed).fit(tiny.train, tiny.train["label"])
             for name, seed in [("tfidf-svm", 4), ("tfidf-logreg", 4), ("tfidf-logreg", 1004)]]
    expected = 0.5 * alone[0].predict_proba(tiny.test) + 0.25 * (alone[1].predict_proba(tiny.test)
                                                                + alone[2].predict_proba(tiny.test))
    np.testing.assert_allclose(ensemble.predict_proba(tiny.test), expected, rtol=1e-12)
    # a seed given to the bagged member moves with the bag too; weights apply per member, not per training
    weighted = make_model("ensemble", **BAGGED, weights=[1, 3], member_params={"tfidf-logreg": {"seed": 9}})
    assert [(n, w) for n, _, w in weighted._slots()] == [("tfidf-svm", 0.25), ("tfidf-logreg", 0.375),
                                                         ("tfidf-logreg", 0.375)]
    assert [weighted._make_member("tfidf-logreg", i).seed for i in (0, 1, 2)] == [9, 1009, 2009]
    # saved: one member folder per training, and it loads and scores the same
    result = train(tiny, "ensemble", tmp_path / "bag", params={**BAGGED, "seed": 4})
    config = json.loads((tmp_path / "bag" / "config.json").read_text())
    assert [m["preset"] for m in config["weights"]["members"]] == ["tfidf-svm", "tfidf-logreg", "tfidf-logreg"]
    assert config["params"]["bag"] == {"tfidf-logreg": 2}
    loaded = load_model(tmp_path / "bag")
    # train() gives the dev split, on which the mean is recalibrated (the test below)
    recalibrated = softmax(np.log(expected), result.model.temperature_)
    np.testing.assert_allclose(loaded.predict_proba(tiny.test), recalibrated, rtol=1e-9)
    np.testing.assert_allclose(result.model.predict_proba(tiny.test), recalibrated, rtol=1e-9)
    # a folder whose member list does not match its bag is refused as damaged
    config["weights"]["members"] = config["weights"]["members"][:2]
    (tmp_path / "bag" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="2 member folders for 3 member trainings"):
        load_model(tmp_path / "bag")


def test_a_bag_takes_its_first_training_from_the_member_trained_alone(tiny):
    alone = make_model("tfidf-logreg", seed=4).fit(tiny.train, tiny.train["label"])
    asked = []

    def lookup(preset, params):
        asked.append((preset, params["seed"]))
        return (alone, 12.5) if preset == "tfidf-logreg" and params["seed"] == 4 else None

    ensemble = make_model("ensemble", **BAGGED, seed=4).reuse(lookup).fit(tiny.train, tiny.train["label"])
    assert asked == [("tfidf-svm", 4), ("tfidf-logreg", 4), ("tfidf-logreg", 1004)]
    assert ensemble.members_[1] is alone and ensemble.reused_members_ == [False, True, False]
    assert ensemble.member_fit_s_[1] == 12.5


def test_the_trainings_of_a_bag_adapt_with_seeds_a_stride_apart(tiny, monkeypatch):
    from comment_stance.models.baselines import TfidfModel

    seeds = []

    def adapt(self, X, y, *, C: float | None = None, seed: int | None = None):  # a TF-IDF adapt that takes a seed
        seeds.append((self.classifier, seed))
        return self

    ensemble = make_model("ensemble", **BAGGED, seed=4).fit(tiny.train, tiny.train["label"])
    monkeypatch.setattr(TfidfModel, "adapt", adapt)
    ensemble.adapt(tiny.test, tiny.test["label"], seed=7, members="all")
    assert seeds == [("svm", 7), ("logreg", 7), ("logreg", 1007)]


@pytest.mark.parametrize("bag, message", [
    ({"transformer": 2}, "bag names 'transformer', which is not a member"),
    ({"tfidf-logreg": 0}, "bag gives 'tfidf-logreg' 0 trainings"),
    ({"tfidf-logreg": 2.5}, "bag gives 'tfidf-logreg' 2.5 trainings"),
    ({"tfidf-logreg": True}, "bag gives 'tfidf-logreg' True trainings"),
    ([3], r"bag=\[3\] is not usable"),
])
def test_an_unusable_bag_fails_before_any_member_is_trained(tiny, bag, message):
    with pytest.raises(ModelError, match=message):
        make_model("ensemble", **TWO_TFIDF, bag=bag).fit(tiny.train, tiny.train["label"])


def test_a_member_without_a_seed_cannot_be_bagged(tiny):
    with pytest.raises(ModelError, match="bag trains 'majority' more than once, but it has no seed"):
        make_model("ensemble", members=["tfidf-svm", "majority"], bag={"majority": 2}).fit(tiny.train,
                                                                                         tiny.train["label"])


def test_stance_train_bags_a_member_from_the_command_line(tiny_dir, tmp_path):
    out = tmp_path / "bag"
    result = CliRunner().invoke(app, ["train", "--model", "ensemble", "--data", str(tiny_dir), "--out", str(out),
                                      "--param", 'members=["tfidf-svm", "tfidf-logreg"]',
                                      "--param", "bag={tfidf-logreg = 3}"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((out / "config.json").read_text())["weights"]["members"]) == 4
    result = CliRunner().invoke(app, ["train", "--model", "ensemble", "--data", str(tiny_dir), "--out",
                                      str(tmp_path / "bad"), "--param", "bag={tfidf-logreg = 0}"])
    assert result.exit_code != 0
    assert "bag names 'tfidf-logreg', which is not a member" in result.output
    assert not (tmp_path / "bad").exists()
