"""Scikit-learn model families: the majority-class baseline and TF-IDF n-gram models."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import fit_temperature, softmax
from ..errors import ModelError
from .base import Inputs, StanceModel, as_inputs, load_names, names_weights, path_in_folder

#: a skops file that would unpack to more than this is refused before it is read (a zip bomb, or
#: not ours: a TF-IDF pipeline on a million comments unpacks to a few hundred MiB)
MAX_SKOPS_UNPACKED_BYTES = 2 << 30

# Every type a saved TF-IDF pipeline may contain. Loading refuses any file that holds another
# type, so a model folder handed to a user cannot run code of its author's choosing.
SKOPS_ALLOWED_TYPES = frozenset(
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.svm._classes.LinearSVC",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "builtins.float",
        "builtins.int",
        "builtins.str",
        "builtins.slice",
        "builtins.type",
        "scipy.sparse._csr.csr_matrix",
        "scipy.sparse._csr.csr_array",
    }
)


class MajorityModel(StanceModel):
    """Predicts the most frequent training label, with the training label shares as probabilities.

    >>> MajorityModel().fit(["a", "b", "c"], ["x", "y", "y"]).predict(["new"]).tolist()
    ['y']
    """

    family = "majority"

    def fit(self, X, y, **fit_params) -> "MajorityModel":
        labels = self._labels(y)
        counts = Counter(labels.tolist())
        self.classes_ = np.array(sorted(counts), dtype=object)
        total = sum(counts.values())
        self.prior_ = np.array([counts[c] / total for c in self.classes_], dtype=float)
        return self

    def predict_proba(self, X) -> np.ndarray:
        self._check_fitted()
        n = len(as_inputs(X))
        return np.tile(self.prior_, (n, 1))

    def _save_weights(self, folder: Path) -> dict[str, Any]:
        return {"prior": self.prior_.tolist()}

    def _load_weights(self, folder: Path, config: dict[str, Any]) -> None:
        self.classes_ = np.array(config["labels"], dtype=object)
        self.prior_ = np.array(config["weights"]["prior"], dtype=float)


class TfidfModel(StanceModel):
    """Word and character TF-IDF n-grams feeding a linear classifier.

    ``classifier`` is ``"logreg"`` (LogisticRegression) or ``"svm"`` (LinearSVC). The SVM's
    probabilities are ``softmax(decision values / T)`` with one temperature ``T`` fitted on
    cross-validated decision values (``calibration_folds``) by
    :func:`comment_stance.calibration.fit_temperature`, the same temperature scaling the
    transformer uses: calibrated, yet with the same argmax as the SVM itself, so predictions equal
    LinearSVC's. With ``use_target`` the comment's target
    is prepended to its text (one pooled model serves all targets); with ``per_target`` one model
    is trained per target, as in the SemEval-2016 Task 6 "SVM-ngrams" baseline, and a pooled model
    answers for targets not seen in training. ``names`` (``"keep"``, the default, ``"mask"`` or
    ``"swap"``) masks or swaps the names of pacts, countries and leaders
    (:mod:`comment_stance.augment`); masking won on our corpus's unseen articles and
    leave-one-article-out but lost 0.02 on real comments (ARC), so it is not the default
    (docs/transformer.md, "Names in comments").

    The fitted scikit-learn pipeline is ``pipeline_``; :meth:`make_pipeline` builds an unfitted
    one, so grid searches over e.g. ``clf__C`` work on plain scikit-learn too.

    >>> m = TfidfModel(char_ngrams=None).fit(["good deal", "bad deal", "fine deal", "awful"],
    ...                                      ["pro", "con", "pro", "con"])
    >>> m.classes_.tolist()
    ['con', 'pro']
    """

    family = "tfidf"

    def __init__(
        self,
        classifier: str = "logreg",
        word_ngrams: tuple[int, int] | None = (1, 2),
        char_ngrams: tuple[int, int] | None = (2, 5),
        min_df: int = 1,
        max_features: int | None = None,
        sublinear_tf: bool = True,
        binary: bool = False,
        lowercase: bool = True,
        C: float = 1.0,
        class_weight: str | None = "balanced",
        use_target: bool = True,
        per_target: bool = False,
        calibration_folds: int = 3,
        max_iter: int = 2000,
        names: str = "keep",
        seed: int = 0,
    ):
        self.classifier = classifier
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.binary = binary
        self.lowercase = lowercase
        self.C = C
        self.class_weight = class_weight
        self.use_target = use_target
        self.per_target = per_target
        self.calibration_folds = calibration_folds
        self.max_iter = max_iter
        self.names = names
        self.seed = seed

    # -- building ---------------------------------------------------------------------------
    def make_pipeline(self):
        """An unfitted scikit-learn Pipeline ``features -> clf`` with this model's settings."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline
        from sklearn.svm import LinearSVC

        common = dict(min_df=self.min_df, max_features=self.max_features, sublinear_tf=self.sublinear_tf,
                      binary=self.binary, lowercase=self.lowercase, dtype=np.float32)
        parts = []
        if self.word_ngrams:
            parts.append(("word", TfidfVectorizer(analyzer="word", ngram_range=tuple(self.word_ngrams), **common)))
        if self.char_ngrams:
            parts.append(("char", TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.char_ngrams), **common)))
        if not parts:
            raise ModelError("TfidfModel needs word_ngrams or char_ngrams", "set at least one n-gram range")
        if self.classifier == "logreg":
            clf = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter,
                                     random_state=self.seed)
        elif self.classifier == "svm":
            clf = LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.seed)
        else:
            raise ModelError(f"unknown classifier '{self.classifier}'", "use 'logreg' or 'svm'")
        return Pipeline([("features", FeatureUnion(parts)), ("clf", clf)])

    def _texts(self, inputs: Inputs) -> list[str]:
        if not (self.use_target and not self.per_target):
            return inputs.texts
        return [f"{t} || {x}" if t else x for x, t in zip(inputs.texts, inputs.targets)]

    def _fit_one(self, texts: list[str], labels: np.ndarray):
        counts = Counter(labels.tolist())
        if len(counts) < 2:
            raise ModelError(f"only one label ('{next(iter(counts))}') in the training data",
                             "a classifier needs at least two labels")
        pipeline = self.make_pipeline()
        if self.classifier != "svm":
            return pipeline.fit(texts, labels), None
        if min(counts.values()) < 2:
            raise ModelError("the SVM's probability calibration needs at least 2 examples of each label",
                             "add examples or use --model tfidf-logreg")
        from sklearn.base import clone
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        folds = StratifiedKFold(max(2, min(self.calibration_folds, min(counts.values()))), shuffle=True,
                                random_state=self.seed)
        held_out = cross_val_predict(clone(pipeline), texts, labels, cv=folds, method="decision_function")
        pipeline.fit(texts, labels)
        index = {label: i for i, label in enumerate(pipeline.classes_)}
        return pipeline, fit_temperature(_as_scores(held_out), np.array([index[v] for v in labels]))

    def fit(self, X, y, **fit_params) -> "TfidfModel":
        from ..augment import training_inputs

        inputs = as_inputs(X)
        labels = self._labels(y)
        texts, targets, parents, labels, self.names_lexicon_ = training_inputs(
            self.names, inputs.texts, inputs.targets, inputs.parents, labels, self.seed)
        # per-target models stay keyed by the targets as written; masking changes only what is read
        keys = inputs.targets + ([None] * (len(texts) - len(inputs)))
        inputs = Inputs(texts, targets, parents)
        self.classes_ = np.array(sorted(set(labels.tolist())), dtype=object)
        self.pipeline_, self.temperature_ = self._fit_one(self._texts(inputs), labels)
        self.target_pipelines_, self.target_temperatures_ = {}, {}
        if self.per_target:
            targets = np.asarray([t or "" for t in keys], dtype=object)
            for target in sorted(set(targets.tolist())):
                mask = targets == target
                if target and len(set(labels[mask].tolist())) >= 2 and Counter(labels[mask].tolist()).most_common()[-1][1] >= 2:
                    pipeline, temperature = self._fit_one([inputs.texts[i] for i in np.flatnonzero(mask)], labels[mask])
                    self.target_pipelines_[target] = pipeline
                    self.target_temperatures_[target] = temperature
        return self

    def _proba_of(self, pipeline, texts: list[str], temperature: float | None = None) -> np.ndarray:
        """Probabilities in the column order of ``classes_`` (a per-target model may know fewer labels)."""
        features, clf = _features(pipeline, texts)
        if temperature is None:
            proba = clf.predict_proba(features)
        else:
            proba = softmax(_as_scores(clf.decision_function(features)), temperature)
        known = list(pipeline.classes_)
        if known == list(self.classes_):
            return proba
        out = np.zeros((len(texts), len(self.classes_)))
        for j, label in enumerate(known):
            out[:, list(self.classes_).index(label)] = proba[:, j]
        return out

    def predict_proba(self, X) -> np.ndarray:
        self._check_fitted()
        inputs = as_inputs(X)
        if not len(inputs):
            return np.zeros((0, len(self.classes_)))
        keys = inputs.targets  # per-target models are found by the target as given
        inputs = self._as_read(inputs)
        if not self.target_pipelines_:
            return self._proba_of(self.pipeline_, self._texts(inputs), self.temperature_)
        out = np.zeros((len(inputs), len(self.classes_)))
        groups: dict[str | None, list[int]] = {}
        for i, target in enumerate(keys):
            groups.setdefault(target if target in self.target_pipelines_ else None, []).append(i)
        for target, index in groups.items():
            texts = [inputs.texts[i] for i in index]
            if target is not None:
                out[index] = self._proba_of(self.target_pipelines_[target], texts, self.target_temperatures_[target])
            else:
                pooled = self._texts(Inputs(texts, [inputs.targets[i] for i in index], [None] * len(index)))
                out[index] = self._proba_of(self.pipeline_, pooled, self.temperature_)
        return out

    # -- adaptation -------------------------------------------------------------------------
    def adapt(self, X, y, *, C: float | None = None, **settings) -> "TfidfModel":
        """A copy adapted to a few labelled comments of a new target (this model is not changed).

        The fitted vectorizer is kept; the pooled classifier is re-fitted on the new rows with an
        L2 penalty toward its own weights, so that it keeps what it learned (see
        :func:`comment_stance.adaptation.adapt_linear`). ``C`` weighs the new rows against that
        penalty (default: the model's own ``C``, the trade-off it was trained with). Per-target
        models of the source are kept as they are; the SVM keeps its calibration temperature.

        >>> m = TfidfModel(char_ngrams=None).fit(["good deal", "bad deal", "fine deal", "awful"],
        ...                                      ["pro", "con", "pro", "con"])
        >>> m.adapt(["good grief", "fine mess"], ["con", "con"], C=20.0).predict(["good grief"]).tolist()
        ['con']
        """
        import copy

        from ..adaptation import adapt_linear, check_adaptation_labels

        if settings:
            raise ModelError(f"TF-IDF adaptation has no setting '{sorted(settings)[0]}'",
                             "the TF-IDF family adapts with C only (e.g. --param C=1.0)")
        self._check_fitted()
        inputs = self._as_read(X)  # the new rows masked as prediction masks them
        labels = self._labels(y)
        check_adaptation_labels(self.classes_, labels)
        strength = self.C if C is None else C
        features = self.pipeline_.named_steps["features"].transform(self._texts(inputs))
        clf = adapt_linear(self.pipeline_.named_steps["clf"], features, labels, C=strength,
                           balanced=self.class_weight == "balanced")
        from sklearn.pipeline import Pipeline

        adapted = copy.copy(self)
        adapted.pipeline_ = Pipeline([("features", self.pipeline_.named_steps["features"]), ("clf", clf)])
        adapted.target_pipelines_ = dict(self.target_pipelines_)
        adapted.target_temperatures_ = dict(self.target_temperatures_)
        adapted.adaptation_ = {"method": "l2-toward-source", "C": float(strength), "rows": int(len(labels))}
        return adapted

    # -- persistence ------------------------------------------------------------------------
    def _save_weights(self, folder: Path) -> dict[str, Any]:
        sio = _skops_io()
        weights = folder / "weights"
        weights.mkdir(exist_ok=True)
        sio.dump(self.pipeline_, weights / "pooled.skops")
        targets = {}
        for i, (target, pipeline) in enumerate(sorted(self.target_pipelines_.items())):
            name = f"target-{i:03d}.skops"
            sio.dump(pipeline, weights / name)
            targets[target] = name
        return {"pooled": "weights/pooled.skops", "per_target": {t: f"weights/{n}" for t, n in targets.items()},
                "temperature": self.temperature_, "per_target_temperature": self.target_temperatures_,
                "temperature_divides": True, **names_weights(self)}

    def _load_weights(self, folder: Path, config: dict[str, Any]) -> None:
        weights = config["weights"]
        per_target = weights.get("per_target", {}) if isinstance(weights, dict) else None
        if not isinstance(per_target, dict):
            raise ModelError(f"{folder / 'config.json'}: 'weights' does not describe a TF-IDF model",
                             "the model folder is damaged; retrain it")
        paths = {t: path_in_folder(folder, rel, f"per-target weights ({t})") for t, rel in per_target.items()}
        pooled = path_in_folder(folder, weights.get("pooled"), "weights")
        self.classes_ = np.array(config["labels"], dtype=object)
        self.pipeline_ = _load_skops(pooled)
        self.target_pipelines_ = {t: _load_skops(path) for t, path in paths.items()}
        self.temperature_ = _temperature_from_config(weights, weights.get("temperature"))
        self.target_temperatures_ = {t: _temperature_from_config(weights, v)
                                     for t, v in weights.get("per_target_temperature", {}).items()}
        self.names_lexicon_ = load_names(self, folder, weights)


def _features(pipeline, texts: list[str]):
    """The feature matrix of ``texts`` and the classifier of a ``features -> clf`` pipeline.

    The same arithmetic as ``pipeline.predict_proba``: each vectorizer's matrix, stacked side by
    side as ``FeatureUnion`` stacks them. It skips the union's job dispatch and scikit-learn's
    input validation (our input is always a list of strings, the features always finite), which
    cost more than the model itself when the service scores one comment.
    """
    import sklearn
    from scipy import sparse
    from sklearn.pipeline import FeatureUnion

    (_, union), (_, clf) = pipeline.steps[0], pipeline.steps[-1]
    plain = (len(pipeline.steps) == 2 and isinstance(union, FeatureUnion) and union.transformer_weights is None
             and all(hasattr(part, "transform") for _, part in union.transformer_list))
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        if not plain:
            return pipeline[:-1].transform(texts), clf
        parts = [part.transform(texts) for _, part in union.transformer_list]
        return (sparse.hstack(parts).tocsr() if len(parts) > 1 else parts[0]), clf


def _as_scores(decision: np.ndarray) -> np.ndarray:
    """Decision values as one column per class (binary LinearSVC returns one column for classes_[1])."""
    decision = np.asarray(decision, dtype=float)
    return np.column_stack([-decision / 2, decision / 2]) if decision.ndim == 1 else decision


def _temperature_from_config(weights: dict[str, Any], value: float | None) -> float | None:
    """A saved SVM temperature as the divisor of the decision values.

    Folders written before ``temperature_divides`` was recorded stored a factor that multiplied
    the decision values (``softmax(t * scores)``); ``1 / t`` is the same calibration as a divisor.
    """
    if value is None or weights.get("temperature_divides"):
        return value
    return 1.0 / float(value)


#: scikit-learn's vendored torch adapter for the array API; see :func:`_skops_io`
_SKLEARN_TORCH_ADAPTER = "sklearn.externals.array_api_compat.torch"
_SKOPS_IMPORT = threading.Lock()


def _skops_io():
    """Import ``skops.io`` without importing torch.

    Unavoidable, so scoped: on import, skops lists scikit-learn's estimators, which imports every
    scikit-learn package, among them a vendored adapter that imports torch; with torch installed
    that costs seconds and a GiB of memory on the TF-IDF path. For that one import (under a lock)
    only the adapter is marked missing in ``sys.modules`` (the package walk skips packages that
    fail to import) and the mark is removed right after; torch itself stays importable by other
    threads, and the adapter imports normally later.
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    with _SKOPS_IMPORT:
        hide = _SKLEARN_TORCH_ADAPTER not in sys.modules and "torch" not in sys.modules
        if hide:
            sys.modules[_SKLEARN_TORCH_ADAPTER] = None  # type: ignore[assignment]  # import raises ImportError
        try:
            import skops.io as sio
        finally:
            if hide and sys.modules.get(_SKLEARN_TORCH_ADAPTER, 0) is None:
                del sys.modules[_SKLEARN_TORCH_ADAPTER]
    return sio


def _load_skops(path: Path):
    """Load a scikit-learn object saved with skops, trusting only the types in ``SKOPS_ALLOWED_TYPES``."""
    sio = _skops_io()

    if path.is_symlink():
        raise ModelError(f"{path}: is a symbolic link; model folders hold their own files",
                         "copy the model folder with its files (cp -rL), or retrain it")
    if not path.is_file():
        raise ModelError(f"{path}: weights file missing", "the model folder is incomplete; retrain or copy it again")
    _check_unpacked_size(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable skops file ({exc})", "the model folder is damaged; retrain it") from None
    refused = sorted(set(untrusted) - SKOPS_ALLOWED_TYPES)
    if refused:
        raise ModelError(f"{path}: refuses to load types this tool never saves: {', '.join(refused)}",
                         "only load model folders trained with comment-stance")
    return sio.load(path, trusted=list(untrusted))


def _check_unpacked_size(path: Path) -> None:
    """Refuse a skops file (a zip archive) that would unpack to more than ``MAX_SKOPS_UNPACKED_BYTES``."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            size = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{path}: not a readable skops file ({exc})", "the model folder is damaged; retrain it") from None
    if size > MAX_SKOPS_UNPACKED_BYTES:
        raise ModelError(f"{path}: would unpack to {size / 2**30:.1f} GiB, more than the "
                         f"{MAX_SKOPS_UNPACKED_BYTES / 2**30:.0f} GiB a TF-IDF model needs",
                         "only load model folders written by comment-stance, or retrain the model")
