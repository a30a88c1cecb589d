"""Distillation: a slow, accurate model labels unlabelled comments for a fast one to learn from.

A data team that must score millions of comments on a new pact cannot afford the transformer on
all of them, and has no labels for that pact. It can afford the transformer on a sample: the
*teacher* labels those comments, and the fast TF-IDF *student* is trained on the gold-labelled
corpus plus the teacher's labels, then scores the whole export at its own speed.

:func:`teacher_table` turns a teacher's probabilities for unlabelled comments into training rows
(``label`` = the teacher's top label, ``teacher_confidence`` = its probability); :func:`label_with`
computes those probabilities with a fitted model. :func:`comment_stance.train` does both when given
``teacher=`` and ``unlabelled=`` (``stance train --teacher DIR --unlabelled FILE``).

Unlabelled comments that are already labelled in the dataset (same text and target) keep their
gold label and are not given the teacher's: in the dev and test splits that keeps the scores
honest (a comment the student learnt from the teacher must not be scored against its gold label),
in the train split it keeps the gold label. Every left-out row is counted in what :func:`train`
returns and records, none is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import DataError, ModelError

#: the key of the unlabelled comments' counts in a distilled folder's ``config.json`` (``training``)
RECORD_KEY = "distilled_from"


@dataclass
class TeacherRows:
    """What :func:`teacher_table` made of the unlabelled comments, with the count of each left-out kind."""

    #: the rows the student learns from: the comments with the teacher's label and confidence
    table: pd.DataFrame
    #: unlabelled comments read
    read: int
    #: left out because the same comment (text and target) is labelled in that split of the dataset
    labelled: dict[str, int] = field(default_factory=dict)
    #: left out because the teacher's top probability was below ``min_confidence``
    below_confidence: int = 0
    min_confidence: float = 0.0

    def record(self) -> dict[str, Any]:
        """The counts a model folder keeps (``config.json``, ``training.distilled_from``)."""
        return {"read": self.read, "used": int(len(self.table)), "labelled_elsewhere": dict(self.labelled),
                "below_confidence": self.below_confidence, "min_confidence": self.min_confidence,
                "label_counts": {str(k): int(v) for k, v in
                                 self.table["label"].value_counts().sort_index().items()}}


def _key(table: pd.DataFrame) -> pd.Series:
    target = table["target"] if "target" in table.columns else pd.Series([None] * len(table), index=table.index)
    return pd.Series(list(zip(table["text"].str.strip(), target.fillna(""))), index=table.index)


def teacher_table(
    comments: pd.DataFrame,
    proba: np.ndarray,
    classes: Sequence[Any],
    *,
    labelled: dict[str, pd.DataFrame] | None = None,
    min_confidence: float = 0.0,
) -> TeacherRows:
    """Training rows from a teacher's probabilities ``proba`` (one row per comment, columns ``classes``).

    ``labelled`` maps split names to labelled tables: a comment found there (same stripped text and
    target) is left out and counted under its split's name (the first split that holds it). Rows
    whose top probability is below ``min_confidence`` are left out and counted too.

    >>> import numpy as np, pandas as pd
    >>> comments = pd.DataFrame({"id": ["u1", "u2", "u3"], "text": ["Good deal.", "A trap.", "Fine if audited."]})
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45]])
    >>> rows = teacher_table(comments, proba, ["supportive", "skeptical"], min_confidence=0.6)
    >>> rows.table[["id", "label"]].values.tolist(), rows.below_confidence
    ([['u1', 'supportive'], ['u2', 'skeptical']], 1)
    """
    return _rows(comments, proba, classes, _labelled_in(comments, labelled), list(labelled or {}), min_confidence)


def _labelled_in(comments: pd.DataFrame, labelled: dict[str, pd.DataFrame] | None) -> np.ndarray:
    """Per comment, the name of the first split of ``labelled`` that holds it (same stripped text and target), or ``""``."""
    found = np.full(len(comments), "", dtype=object)
    keys = _key(comments)
    for split, frame in (labelled or {}).items():
        if frame is None or not len(frame):
            continue
        hit = (found == "") & keys.isin(set(_key(frame))).to_numpy()
        found[hit] = split
    return found


def _rows(comments: pd.DataFrame, proba, classes: Sequence[Any], found: np.ndarray, splits: Sequence[str],
          min_confidence: float) -> TeacherRows:
    proba = np.asarray(proba, dtype=float)
    if proba.shape != (len(comments), len(classes)):
        raise ValueError(f"proba has shape {proba.shape}, expected {(len(comments), len(classes))}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ModelError(f"minimum teacher confidence {min_confidence} is not between 0 and 1",
                         "pass a probability, e.g. --teacher-min-confidence 0.8 (default 0: every comment)")
    table = comments.copy()
    table["label"] = [str(classes[i]) for i in proba.argmax(axis=1)]
    table["teacher_confidence"] = proba.max(axis=1)
    keep = found == ""
    counts = {str(split): int(n) for split in splits if (n := (found == split).sum())}
    confident = table["teacher_confidence"].to_numpy() >= min_confidence
    below = int((keep & ~confident).sum())
    kept = table[keep & confident].reset_index(drop=True)
    return TeacherRows(kept, read=len(comments), labelled=counts, below_confidence=below,
                       min_confidence=float(min_confidence))


def label_with(teacher, comments: pd.DataFrame, *, labelled: dict[str, pd.DataFrame] | None = None,
               min_confidence: float = 0.0, context: Sequence[pd.DataFrame] = (), progress: bool = False,
               chunk_size: int = 256) -> TeacherRows:
    """:func:`teacher_table` with ``teacher``'s (a fitted model's) probabilities for ``comments``.

    Replies see their parent comment when the teacher reads it (parents are looked up in
    ``comments`` and ``context``). Only the comments :func:`teacher_table` would keep for being
    unlabelled elsewhere are scored, so a sample that overlaps the labelled data costs no extra time.
    They are scored ``chunk_size`` at a time, with a progress bar on stderr when ``progress``
    (a transformer teacher labels about 15 comments a second on 2 cores).
    """
    from .training import model_frame

    teacher._check_fitted()
    found = _labelled_in(comments, labelled)
    fresh = found == ""
    classes = [str(c) for c in teacher.classes_]
    proba = np.zeros((len(comments), len(classes)))
    proba[:, 0] = 1.0  # placeholder rows: every one of them is left out as labelled below
    if fresh.any():
        frame = model_frame(comments[fresh], comments, *context)
        scored = []
        bar = _progress_bar(len(frame), "teacher labelling") if progress else None
        for start in range(0, len(frame), chunk_size):
            scored.append(teacher.predict_proba(frame.iloc[start:start + chunk_size]))
            if bar is not None:
                bar.update(len(scored[-1]))
        if bar is not None:
            bar.close()
        proba[fresh] = np.concatenate(scored)
    return _rows(comments, proba, classes, found, list(labelled or {}), min_confidence)


def _progress_bar(total: int, desc: str):
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="comment", file=sys.stderr, dynamic_ncols=True, leave=True)


def check_teacher_labels(teacher_classes: Sequence[Any], labels: Sequence[Any], where: str) -> None:
    """The teacher must know exactly the labels of the training data (else its labels cannot be learnt from)."""
    mine, theirs = sorted(map(str, set(labels))), sorted(map(str, teacher_classes))
    if mine != theirs:
        raise DataError(f"{where}: labels {', '.join(mine)}, but the teacher predicts {', '.join(theirs)}",
                        "use a teacher trained on the same labels as the data")
