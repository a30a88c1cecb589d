"""The estimator interface every model family shares.

Constructors only store hyper-parameters; ``fit`` returns ``self``; fitted state ends in ``_``;
``predict_proba`` columns follow ``classes_``; labels are strings end to end. ``X`` is either a
sequence of comment texts or a comment table (:class:`pandas.DataFrame`) with a ``text`` column
and, when the data has them, ``target`` and ``parent_text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from ..errors import DataError, ModelError


@dataclass
class Inputs:
    """What a model reads for each comment."""

    texts: list[str]
    targets: list[str | None]
    parents: list[str | None]

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def has_targets(self) -> bool:
        return any(t for t in self.targets)


def as_inputs(X: Any) -> Inputs:
    """Normalize ``X`` (texts, a comment table, or :class:`Inputs` already) to :class:`Inputs`."""
    if isinstance(X, Inputs):
        return X
    if isinstance(X, pd.DataFrame):
        if "text" not in X.columns:
            raise DataError(f"input table has no 'text' column (columns: {', '.join(map(str, X.columns))})",
                            "name the comment column 'text'")
        n = len(X)
        texts = [str(t) for t in X["text"]]
        targets = [_clean(t) for t in X["target"]] if "target" in X.columns else [None] * n
        parents = [_clean(t) for t in X["parent_text"]] if "parent_text" in X.columns else [None] * n
        return Inputs(texts, targets, parents)
    if isinstance(X, str):
        raise DataError("expected a list of comments, got a single string", "wrap it in a list: [text]")
    texts = [str(t) for t in X]
    return Inputs(texts, [None] * len(texts), [None] * len(texts))


def path_in_folder(folder: Path, relative: Any, what: str) -> Path:
    """``folder / relative`` for a path that ``config.json`` names; refused when it leaves the folder.

    Paths in a model folder are relative and stay inside it, so a folder handed to a user cannot
    point the loader at files elsewhere on their machine.

    >>> path_in_folder(Path("m"), "weights/pooled.skops", "weights").as_posix()
    'm/weights/pooled.skops'
    >>> path_in_folder(Path("m"), "../../etc/passwd", "weights")
    Traceback (most recent call last):
    ...
    comment_stance.errors.ModelError: m/config.json: the weights path '../../etc/passwd' leaves the model folder (only load model folders written by comment-stance, or retrain the model)
    """
    if not isinstance(relative, str) or not relative.strip():
        raise ModelError(f"{folder / 'config.json'}: the {what} path {relative!r} is not a file name",
                         "the model folder is damaged; retrain it")
    parts = relative.replace("\\", "/").split("/")
    if relative.startswith(("/", "\\", "~")) or Path(relative).is_absolute() or ":" in parts[0] or ".." in parts:
        raise ModelError(f"{folder / 'config.json'}: the {what} path '{relative}' leaves the model folder",
                         "only load model folders written by comment-stance, or retrain the model")
    return folder / relative


def _clean(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return None
    return str(value)


class StanceModel(ClassifierMixin, BaseEstimator):
    """Base class of every model family.

    Subclasses set ``family`` and implement ``fit``, ``predict_proba``, ``_save_weights`` and
    ``_load_weights``. Saving and loading whole model folders lives in
    :mod:`comment_stance.persist`; ``save``/``load`` here are shortcuts to it.
    """

    family: ClassVar[str] = ""

    # -- the estimator contract -------------------------------------------------------------
    def fit(self, X, y, **fit_params) -> "StanceModel":  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        """Most probable label per comment (strings from ``classes_``)."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_, dtype=object)[proba.argmax(axis=1)]

    def adapt(self, X, y, **settings) -> "StanceModel":
        """A copy of this fitted model adapted to a few labelled comments ``X``, ``y`` of a new
        target; this model is not changed. Families that can adapt override it (see
        :mod:`comment_stance.adaptation`)."""
        raise ModelError(f"the '{self.family}' family cannot adapt a fitted model",
                         "use a tfidf or transformer model folder with --from, or train a new model")

    def adapt_takes(self, settings: dict[str, Any]) -> list[str]:
        """The keyword settings ``adapt`` uses when it is given ``settings`` (which may choose a
        method with settings of its own); by default every keyword setting of its signature."""
        from ..training import _adapt_settings

        return _adapt_settings(self)

    # -- persistence hooks ------------------------------------------------------------------
    def _save_weights(self, folder: Path) -> dict[str, Any]:  # pragma: no cover - abstract
        """Write the fitted state into ``folder``; return JSON-able facts for config.json."""
        raise NotImplementedError

    def _load_weights(self, folder: Path, config: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def save(self, folder: str | Path, **kwargs) -> Path:
        """Save a self-describing model folder; see :func:`comment_stance.persist.save_model`."""
        from ..persist import save_model

        return save_model(self, folder, **kwargs)

    @staticmethod
    def load(folder: str | Path) -> "StanceModel":
        """Load any model folder, whatever its family; see :func:`comment_stance.persist.load_model`."""
        from ..persist import load_model

        return load_model(folder)

    # -- helpers for subclasses -------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise ModelError(f"this {type(self).__name__} is not fitted yet", "call fit(X, y) first")

    def _as_read(self, X: Any) -> Inputs:
        """``X`` as the fitted model reads it at prediction time (names masked under ``names="mask"``),
        for anything that feeds new comments to the fitted model, e.g. adaptation."""
        from ..augment import prediction_inputs

        inputs = as_inputs(X)
        names = getattr(self, "names", "keep")
        return Inputs(*prediction_inputs(names, getattr(self, "names_lexicon_", None), inputs.texts,
                                         inputs.targets, inputs.parents))

    @staticmethod
    def _labels(y: Sequence[Any]) -> np.ndarray:
        labels = np.asarray([str(v) for v in y], dtype=object)
        if len(labels) == 0:
            raise DataError("no training examples", "give at least one labelled comment per label")
        return labels

    def version_info(self) -> dict[str, str]:
        """Versions of the libraries this family depends on, for config.json."""
        import sklearn

        return {"scikit-learn": sklearn.__version__, "numpy": np.__version__}


# -- the names setting (comment_stance.augment), shared by the families that have it ------------
def names_weights(model: StanceModel) -> dict[str, Any]:
    """What config.json's ``weights`` records of ``names``: the lexicon, when one was built."""
    lexicon = getattr(model, "names_lexicon_", None)
    return {} if lexicon is None else {"names_lexicon": lexicon.to_json()}


def load_names(model: StanceModel, folder: Path, weights: dict[str, Any]):
    """The names lexicon of a model folder (``None`` for ``names="keep"``, and for folders written
    before the setting existed, whose params lack it and so load as ``"keep"``)."""
    from ..augment import NameLexicon, check_names

    names = check_names(getattr(model, "names", "keep"))
    if names == "keep":
        return None
    if "names_lexicon" not in weights:
        raise ModelError(f"{folder / 'config.json'}: names={names!r} but no names lexicon is recorded",
                         "the model folder is damaged; retrain it")
    return NameLexicon.from_json(weights["names_lexicon"], str(folder / "config.json"))
