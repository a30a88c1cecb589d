"""Scoring comments with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .models.base import StanceModel


def proba_column(label: str) -> str:
    """Name of the probability column of ``label`` in scored output."""
    return f"p_{label}"


def predict(
    model: str | Path | StanceModel,
    comments: Sequence[str] | pd.DataFrame,
    *,
    review_below: float | None = None,
) -> pd.DataFrame:
    """Score comments; returns one row per comment, in input order.

    The result keeps the input's ``id`` (when the input is a table) and adds ``label``,
    ``confidence`` (the top probability), one ``p_<label>`` column per label and, with
    ``review_below``, a ``needs_review`` flag.

    >>> predict("models/tfidf-logreg", ["Sign it already."])   # doctest: +SKIP
    """
    from .persist import load_model

    estimator = load_model(model) if isinstance(model, (str, Path)) else model
    table = comments if isinstance(comments, pd.DataFrame) else pd.DataFrame({"text": list(comments)})
    proba = estimator.predict_proba(table) if len(table) else np.zeros((0, len(estimator.classes_)))
    return scored_frame(table, proba, estimator.classes_, review_below=review_below)


def scored_frame(table: pd.DataFrame, proba: np.ndarray, classes: Sequence[Any],
                 *, review_below: float | None = None) -> pd.DataFrame:
    out = pd.DataFrame(index=range(len(table)))
    if "id" in table.columns:
        out["id"] = table["id"].to_numpy()
    classes = [str(c) for c in classes]
    best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
    out["label"] = [classes[i] for i in best]
    out["confidence"] = proba.max(axis=1) if len(proba) else np.zeros(0)
    for j, label in enumerate(classes):
        out[proba_column(label)] = proba[:, j]
    if review_below is not None:
        out["needs_review"] = out["confidence"] < review_below
    return out
