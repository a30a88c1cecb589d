"""Scoring a model on labelled comments."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .calibration import confidence_cells, confidence_summary
from .data import with_parent_text
from .errors import DataError
from .metrics import score
from .models.base import StanceModel


def evaluate_model(
    model: StanceModel,
    table: pd.DataFrame,
    *,
    polar: Sequence[str] | None = None,
    context: Sequence[pd.DataFrame] = (),
    n_resamples: int = 1000,
    seed: int = 0,
    return_predictions: bool = False,
) -> dict[str, Any]:
    """Predict ``table`` with ``model`` and score the predictions against its ``label`` column.

    Besides the scores of :func:`comment_stance.metrics.score`, ``confidence`` says how far the
    model's confidence can be trusted on these comments (ECE, Brier score) and what each
    ``--review-below`` threshold would send to a moderator (see
    :func:`comment_stance.calibration.confidence_summary`).

    A label in ``table`` that the model does not know is an error naming the row, since the
    scores would be meaningless.
    """
    known = set(map(str, model.classes_))
    source = table.attrs.get("source", "the evaluation data")
    rows = table.attrs.get("rows") or list(range(1, len(table) + 1))
    unit = table.attrs.get("unit", "row")
    for position, label in enumerate(table["label"]):
        if str(label) not in known:
            raise DataError(
                f"{source}: {unit} {rows[position]}: label '{label}' is unknown to the model (it knows {sorted(known)})",
                "evaluate on data with the model's labels, or map the label names",
            )
    frame = with_parent_text(table, *context)
    proba = model.predict_proba(frame)
    predicted = [str(model.classes_[i]) for i in proba.argmax(axis=1)]
    targets = table["target"].tolist() if "target" in table.columns else None
    classes = [str(c) for c in model.classes_]
    result = score(table["label"].tolist(), predicted, classes, polar=polar,
                   targets=targets, n_resamples=n_resamples, seed=seed)
    gold = np.array([classes.index(str(label)) for label in table["label"]], dtype=int)
    result["confidence"] = confidence_summary(confidence_cells(proba, gold))
    if return_predictions:
        result["predictions"] = predicted
        result["probabilities"] = proba.tolist()
    return result


def evaluate(
    model: str | Path | StanceModel,
    data: str | Path | pd.DataFrame | None = None,
    *,
    split: str = "test",
    polar: Sequence[str] | None = None,
    columns=None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Load (if needed) a model and score it on a file, or on one split of a dataset folder.

    >>> from comment_stance import evaluate
    >>> scores = evaluate("models/tfidf-logreg", "data/processed/unseen-article")
    >>> scores["n"], sorted(scores["per_class"])
    (631, ['conditional', 'skeptical', 'supportive'])
    """
    from .data import load_dataset
    from .persist import load_model

    estimator = load_model(model) if isinstance(model, (str, Path)) else model
    context: list[pd.DataFrame] = []
    if isinstance(data, pd.DataFrame):
        table = data
    else:
        dataset = load_dataset(data, columns)
        path = Path(data) if data is not None else None
        if path is not None and path.is_file():
            table = dataset.train  # a single file: all of it is evaluated
        else:
            table = dataset.split(split)
            context = [f for f in (dataset.train, dataset.dev) if f is not None]
    return evaluate_model(estimator, table, polar=polar, context=context, n_resamples=n_resamples, seed=seed)
