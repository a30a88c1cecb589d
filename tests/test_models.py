"""The estimator interface, shared by every scikit-learn family."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from comment_stance import load_model, make_model
from comment_stance.data import load_dataset
from comment_stance.errors import ModelError, OutputError
from comment_stance.models.baselines import MajorityModel, TfidfModel


@pytest.fixture
def tiny(tiny_dir):
    return load_dataset(tiny_dir)


def test_majority_predicts_the_most_frequent_label_with_priors():
    model = MajorityModel().fit(["a", "b", "c", "d"], ["x", "y", "y", "y"])
    assert model.classes_.tolist() == ["x", "y"]
    assert model.predict(["anything", "else"]).tolist() == ["y", "y"]
    assert model.predict_proba(["q"]).tolist() == [[0.25, 0.75]]


@pytest.mark.parametrize("name", ["tfidf-logreg", "tfidf-svm"])
def test_tfidf_families_follow_the_estimator_contract(tiny, name):
    model = make_model(name)
    assert not hasattr(model, "classes_")  # constructors only store hyper-parameters
    assert model.fit(tiny.train, tiny.train["label"]) is model
    proba = model.predict_proba(tiny.test)
    assert proba.shape == (len(tiny.test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert model.classes_.tolist() == ["conditional", "skeptical", "supportive"]
    assert set(model.predict(tiny.test)) <= set(model.classes_)
    # predict follows the argmax of predict_proba, in the order of classes_
    assert model.predict(tiny.test).tolist() == model.classes_[proba.argmax(axis=1)].tolist()
    assert clone(model).get_params() == model.get_params()


@pytest.mark.parametrize("name,parts", [("tfidf-logreg", {}), ("tfidf-svm", {}),
                                        ("tfidf-logreg", {"char_ngrams": None}), ("tfidf-svm", {"names": "mask"})])
def test_tfidf_scores_equal_the_plain_sklearn_pipeline(tiny, name, parts):
    """The scoring shortcut (features stacked by hand, no input validation) changes no number."""
    from comment_stance.calibration import softmax
    from comment_stance.models.baselines import _as_scores

    model = make_model(name, **parts).fit(tiny.train, tiny.train["label"])
    texts = model._texts(model._as_read(tiny.test))  # the texts as the model reads them (names masked or not)
    if model.temperature_ is None:
        expected = model.pipeline_.predict_proba(texts)
    else:
        expected = softmax(_as_scores(model.pipeline_.decision_function(texts)), model.temperature_)
    np.testing.assert_array_equal(model.predict_proba(tiny.test), expected)
    np.testing.assert_array_equal(model.predict_proba(tiny.test.head(1)), expected[:1])


def test_tfidf_learns_the_training_data(tiny):
    model = TfidfModel().fit(tiny.train, tiny.train["label"])
    assert (model.predict(tiny.train) == tiny.train["label"].to_numpy()).mean() == 1.0


def test_plain_text_lists_work_too():
    model = TfidfModel(char_ngrams=None).fit(["good deal", "bad deal", "fine deal", "awful"], ["p", "c", "p", "c"])
    assert model.predict(["good"]).tolist() == ["p"]


def test_pipeline_is_plain_sklearn_so_grid_search_works(tiny):
    model = TfidfModel()
    texts = model._texts(__import__("comment_stance").models.as_inputs(tiny.train))
    labels = tiny.train["label"].to_numpy()
    search = GridSearchCV(model.make_pipeline(), {"clf__C": [0.01, 100.0]}, cv=2).fit(texts, labels)
    # the search really set C on our pipeline's classifier: each C scores as the same pipeline
    # cross-validated by hand, and the winner is refitted with it
    by_hand = {c: cross_val_score(model.make_pipeline().set_params(clf__C=c), texts, labels, cv=2).mean()
               for c in (0.01, 100.0)}
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], [by_hand[0.01], by_hand[100.0]])
    assert search.best_params_["clf__C"] == max(by_hand, key=by_hand.get)
    assert search.best_estimator_.named_steps["clf"].C == search.best_params_["clf__C"]
    # and over our own estimator, whose X is a comment table
    search = GridSearchCV(TfidfModel(), {"C": [0.5, 2.0]}, cv=2, scoring="f1_macro").fit(tiny.train, tiny.train["label"])
    assert search.best_estimator_.classes_.tolist() == ["conditional", "skeptical", "supportive"]


def test_per_target_trains_one_model_per_target_and_falls_back_for_new_ones(tiny):
    model = TfidfModel(classifier="svm", per_target=True, calibration_folds=2).fit(tiny.train, tiny.train["label"])
    assert set(model.target_pipelines_) == set(tiny.train["target"])
    unseen = pd.DataFrame({"text": ["Sign it now."], "target": ["A pact nobody trained on"]})
    # a target not seen in training is answered by the pooled model (softmax of its decision
    # values over its temperature), not by any per-target one
    pooled = _softmax(model.pipeline_.decision_function(["Sign it now."]) / model.temperature_)
    np.testing.assert_allclose(model.predict_proba(unseen), pooled)


@pytest.mark.parametrize("name", ["majority", "tfidf-logreg", "tfidf-svm"])
def test_save_load_round_trip_gives_identical_probabilities(tiny, tmp_path, name):
    model = make_model(name).fit(tiny.train, tiny.train["label"])
    folder = model.save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    assert config["family"] == model.family and config["labels"] == model.classes_.tolist()
    assert (folder / "README.md").read_text().startswith("# ")
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
    loaded = load_model(folder)
    np.testing.assert_array_equal(loaded.predict_proba(tiny.test), model.predict_proba(tiny.test))


def test_per_target_round_trip(tiny, tmp_path):
    model = TfidfModel(per_target=True).fit(tiny.train, tiny.train["label"])
    loaded = load_model(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(tiny.test), model.predict_proba(tiny.test))


def test_existing_folder_is_not_clobbered(tiny, tmp_path):
    model = MajorityModel().fit(["a", "b"], ["x", "y"])
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="already exists"):
        model.save(tmp_path / "m")
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"
    with pytest.raises(OutputError, match="was not written by 'stance train'"):
        model.save(tmp_path / "m", overwrite=True)  # --overwrite replaces only our own model folders
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"


def test_loading_refuses_foreign_types_in_weights(tiny, tmp_path):
    """A weights file holding types we never save (here: a FunctionTransformer) is refused, not run."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    folder = TfidfModel().fit(tiny.train, tiny.train["label"]).save(tmp_path / "m")
    sio.dump(Pipeline([("f", FunctionTransformer(json.loads))]), folder / "weights" / "pooled.skops")
    with pytest.raises(ModelError, match="refuses to load types"):
        load_model(folder)


def test_unknown_model_and_param_are_clear():
    with pytest.raises(ModelError, match="unknown model 'bert'"):
        make_model("bert")
    with pytest.raises(ModelError, match="no hyper-parameter 'gamma'"):
        make_model("tfidf-logreg", gamma=1)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelError, match="not a model folder"):
        load_model(tmp_path)


def test_svm_probabilities_keep_the_svms_own_decisions(tiny):
    model = TfidfModel(classifier="svm", names="keep").fit(tiny.train, tiny.train["label"])  # the pipeline reads texts as written
    texts = model._texts(__import__("comment_stance").models.as_inputs(tiny.test))
    assert model.predict(tiny.test).tolist() == model.pipeline_.predict(texts).tolist()
    # probabilities: softmax of the decision values divided by the temperature
    np.testing.assert_allclose(model.predict_proba(tiny.test),
                               _softmax(model.pipeline_.decision_function(texts) / model.temperature_))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_svm_temperature_is_the_held_out_nll_minimum():
    """T divides the decision values; fitted on cross-validated scores, it beats T*1.5 and T/1.5
    on those scores' log loss (checked with an independent grid search)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(0)
    words = ["yes", "sign", "good", "no", "never", "bad", "maybe", "if", "unless"]
    labels = np.array(["p", "n", "c"] * 30)
    texts = [" ".join(rng.choice(words[3 * (i % 3):3 * (i % 3) + 3], 3).tolist() + rng.choice(words, 2).tolist())
             for i in range(90)]
    model = TfidfModel(classifier="svm", char_ngrams=None, calibration_folds=3, seed=0).fit(texts, labels)
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    held_out = cross_val_predict(clone(model.make_pipeline()), texts, labels, cv=folds, method="decision_function")
    y = np.searchsorted(model.classes_, labels)

    def nll(t):
        return -np.log(_softmax(held_out / t)[np.arange(len(y)), y]).mean()

    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 400))
    assert model.temperature_ == pytest.approx(grid[np.argmin([nll(t) for t in grid])], rel=0.03)


def test_svm_folders_saved_with_the_old_multiplying_temperature_load_the_same(tiny, tmp_path):
    """Before the temperature meant a divisor, TF-IDF folders saved a factor ``t`` with
    probabilities ``softmax(t * scores)``; loading such a folder must give those probabilities."""
    model = TfidfModel(classifier="svm", names="keep").fit(tiny.train, tiny.train["label"])  # the pipeline reads texts as written
    folder = model.save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    assert config["weights"]["temperature_divides"] is True
    factor = 2.5  # an old folder's multiplier
    del config["weights"]["temperature_divides"]
    config["weights"]["temperature"] = factor
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_model(folder)
    texts = model._texts(__import__("comment_stance").models.as_inputs(tiny.test))
    expected = _softmax(factor * model.pipeline_.decision_function(texts))
    np.testing.assert_allclose(loaded.predict_proba(tiny.test), expected, rtol=1e-9)
    assert loaded.temperature_ == pytest.approx(1 / factor)


def test_tfidf_save_and_load_never_import_torch(tiny, tmp_path):
    import subprocess
    import sys

    folder = TfidfModel().fit(tiny.train, tiny.train["label"]).save(tmp_path / "m")
    code = (f"import sys; from comment_stance import load_model; m = load_model({str(folder)!r}); "
            "m.predict(['Sign it.']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
