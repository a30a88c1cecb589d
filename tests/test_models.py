"""The estimator interface, shared by every scikit-learn family."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

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


def test_tfidf_learns_the_training_data(tiny):
    model = TfidfModel().fit(tiny.train, tiny.train["label"])
    assert (model.predict(tiny.train) == tiny.train["label"].to_numpy()).mean() == 1.0


def test_plain_text_lists_work_too():
    model = TfidfModel(char_ngrams=None).fit(["good deal", "bad deal", "fine deal", "awful"], ["p", "c", "p", "c"])
    assert model.predict(["good"]).tolist() == ["p"]


def test_pipeline_is_plain_sklearn_so_grid_search_works(tiny):
    model = TfidfModel()
    texts = model._texts(__import__("comment_stance").models.as_inputs(tiny.train))
    search = GridSearchCV(model.make_pipeline(), {"clf__C": [0.1, 1.0]}, cv=2).fit(texts, tiny.train["label"])
    assert search.best_params_["clf__C"] in (0.1, 1.0)
    # and over our own estimator, whose X is a comment table
    search = GridSearchCV(TfidfModel(), {"C": [0.5, 2.0]}, cv=2, scoring="f1_macro").fit(tiny.train, tiny.train["label"])
    assert search.best_estimator_.classes_.tolist() == ["conditional", "skeptical", "supportive"]


def test_per_target_trains_one_model_per_target_and_falls_back_for_new_ones(tiny):
    model = TfidfModel(classifier="svm", per_target=True, calibration_folds=2).fit(tiny.train, tiny.train["label"])
    assert set(model.target_pipelines_) == set(tiny.train["target"])
    unseen = pd.DataFrame({"text": ["Sign it now."], "target": ["A pact nobody trained on"]})
    assert model.predict_proba(unseen).shape == (1, 3)


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
    model = TfidfModel(classifier="svm").fit(tiny.train, tiny.train["label"])
    texts = model._texts(__import__("comment_stance").models.as_inputs(tiny.test))
    assert model.predict(tiny.test).tolist() == model.pipeline_.predict(texts).tolist()
    assert model.temperature_ > 0


def test_tfidf_save_and_load_never_import_torch(tiny, tmp_path):
    import subprocess
    import sys

    folder = TfidfModel().fit(tiny.train, tiny.train["label"]).save(tmp_path / "m")
    code = (f"import sys; from comment_stance import load_model; m = load_model({str(folder)!r}); "
            "m.predict(['Sign it.']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
