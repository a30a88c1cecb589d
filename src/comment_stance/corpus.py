"""Describing and checking a comment corpus: statistics, duplicates, balance, threads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import SPLITS, load_dataset


def _words(texts: pd.Series) -> np.ndarray:
    return texts.str.split().str.len().to_numpy()


def table_stats(table: pd.DataFrame) -> dict[str, Any]:
    words = _words(table["text"])
    replies = table["parent_id"].notna().sum() if "parent_id" in table.columns else 0
    return {
        "rows": int(len(table)),
        "label_counts": {str(k): int(v) for k, v in table["label"].value_counts().sort_index().items()},
        "targets": int(table["target"].nunique()) if "target" in table.columns else 0,
        "reply_share": float(replies / len(table)) if len(table) else 0.0,
        "median_words": float(np.median(words)) if len(words) else 0.0,
        "min_words": int(words.min()) if len(words) else 0,
        "max_words": int(words.max()) if len(words) else 0,
    }


def dataset_stats(path: str | Path | None = None) -> dict[str, Any]:
    """Rows, label counts, targets, reply share and lengths of each split of a dataset."""
    dataset = load_dataset(path)
    splits = {s: table_stats(getattr(dataset, s)) for s in SPLITS if getattr(dataset, s) is not None}
    labels = sorted({label for row in splits.values() for label in row["label_counts"]})
    return {"source": str(dataset.source), "labels": labels, "splits": splits}
