"""The off-topic gate: a small classifier that flags comments taking no stance toward the pact
(spam, chit-chat, meta comments, replies about something else) so that they go to review instead
of silently getting one of the three stances.

The gate is an ordinary model of the TF-IDF family with two labels, ``off_topic`` and
``on_topic``, trained on the stance data's comments (all ``on_topic``) and a file of off-topic
comments. It is saved as a model folder of its own, ``off_topic/``, inside the stance model's
folder, with the flagging threshold (chosen on dev) in its ``config.json``; loading the stance
model loads the gate with it. The gate never changes a stance label: it only sets
``needs_review`` with reason ``off_topic`` (see :mod:`comment_stance.review`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import DataError
from .models.base import StanceModel

OFF_TOPIC = "off_topic"
ON_TOPIC = "on_topic"
#: sub-folder of a model folder that holds its gate
GATE_FOLDER = "off_topic"
#: hyper-parameters of the gate (a TF-IDF logistic regression that ignores the target: whether a
#: comment is about the pact at all does not depend on which pact)
GATE_PARAMS: dict[str, Any] = {"classifier": "logreg", "use_target": False, "C": 5.0}


@dataclass
class GateData:
    """On-topic and off-topic comments of one split, as the gate sees them."""

    table: pd.DataFrame  # text, target, parent_text
    is_off: np.ndarray  # bool per row


def gate_frame(on_topic: pd.DataFrame | None, off_topic: pd.DataFrame | None) -> GateData:
    """Stack on-topic (any stance label) and off-topic comments with the gate's labels."""
    parts, flags = [], []
    for frame, flag in ((on_topic, False), (off_topic, True)):
        if frame is None or not len(frame):
            continue
        cols = [c for c in ("text", "target", "parent_text") if c in frame.columns]
        parts.append(frame[cols])
        flags.append(np.full(len(frame), flag))
    if not parts:
        return GateData(pd.DataFrame({"text": []}), np.zeros(0, dtype=bool))
    return GateData(pd.concat(parts, ignore_index=True), np.concatenate(flags))


def off_topic_table(off_topic: Any, columns=None) -> Any:
    """Load off-topic comments (a dataset folder with train/dev/test, one file, or a Dataset)."""
    from .data import Dataset, load_dataset

    dataset = off_topic if isinstance(off_topic, Dataset) else load_dataset(off_topic, columns)
    train = dataset.split("train")
    labels = set(train["label"].astype(str)) if "label" in train.columns else set()
    if labels and labels != {OFF_TOPIC}:
        raise DataError(f"{dataset.source}: off-topic data holds labels other than '{OFF_TOPIC}' "
                        f"({', '.join(sorted(labels - {OFF_TOPIC}))})",
                        "give only comments with no stance, labelled off_topic (e.g. data/processed/off-topic)")
    return dataset


def choose_threshold(p_off: np.ndarray, is_off: np.ndarray) -> float:
    """The flagging threshold with the best F1 of the flag on ``p_off`` (ties: the higher
    threshold, which flags fewer on-topic comments). 0.5 when there is nothing to choose on."""
    if not len(p_off) or not is_off.any() or is_off.all():
        return 0.5
    best, best_f1 = 0.5, -1.0
    for t in np.unique(np.round(p_off, 4)):
        flag = p_off >= t
        tp = int((flag & is_off).sum())
        f1 = 2 * tp / (flag.sum() + is_off.sum())
        if f1 > best_f1 or (f1 == best_f1 and t > best):
            best, best_f1 = float(t), f1
    return best


def flag_scores(flag: np.ndarray, is_off: np.ndarray) -> dict[str, Any]:
    """Precision, recall and F1 of an off-topic flag, with the counts behind them."""
    tp = int((flag & is_off).sum())
    fp = int((flag & ~is_off).sum())
    fn = int((~flag & is_off).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"n": int(len(flag)), "off_topic": int(is_off.sum()), "on_topic": int((~is_off).sum()),
            "flagged": int(flag.sum()), "true_flags": tp, "false_flags": fp, "missed": fn,
            "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "on_topic_flagged_share": fp / int((~is_off).sum()) if (~is_off).any() else 0.0}


def gate_proba(gate: StanceModel, table: pd.DataFrame | Sequence[str]) -> np.ndarray:
    """The gate's probability that each comment is off-topic."""
    classes = [str(c) for c in gate.classes_]
    proba = gate.predict_proba(table)
    return np.asarray(proba[:, classes.index(OFF_TOPIC)], dtype=np.float64)


def gate_threshold(gate: StanceModel) -> float:
    """The gate's threshold: set when trained, read from its config.json when loaded."""
    threshold = getattr(gate, "threshold_", None)
    if threshold is None:
        threshold = getattr(gate, "config_", {}).get("training", {}).get("threshold", 0.5)
    return float(threshold)


def train_gate(
    on_train: pd.DataFrame,
    off_train: pd.DataFrame,
    *,
    on_dev: pd.DataFrame | None = None,
    off_dev: pd.DataFrame | None = None,
    model: str = "tfidf-logreg",
    params: dict[str, Any] | None = None,
) -> StanceModel:
    """Fit a gate on on-topic vs off-topic training comments and choose its threshold on dev
    (on the training rows, by F1, when there is no dev data with both kinds)."""
    from .models import make_model

    gate = make_model(model, **{**GATE_PARAMS, **(params or {})})
    data = gate_frame(on_train, off_train)
    if not data.is_off.any() or data.is_off.all():
        raise DataError("the off-topic gate needs both on-topic and off-topic training comments",
                        "give --off-topic a file or folder of off_topic comments and a dataset with stance labels")
    gate.fit(data.table, np.where(data.is_off, OFF_TOPIC, ON_TOPIC).tolist())
    dev = gate_frame(on_dev, off_dev)
    chosen_on = "dev" if dev.is_off.any() and not dev.is_off.all() else "train"
    if chosen_on == "train":
        dev = data
    gate.threshold_ = choose_threshold(gate_proba(gate, dev.table), dev.is_off)
    gate.gate_training_ = {
        "threshold": gate.threshold_, "threshold_chosen_on": chosen_on, "threshold_rule": "best F1 of the flag",
        "positive_label": OFF_TOPIC, "rows": int(len(data.table)), "off_topic_rows": int(data.is_off.sum()),
        "on_topic_rows": int((~data.is_off).sum()),
    }
    return gate


def evaluate_gate(gate: StanceModel, on_topic: pd.DataFrame | None, off_topic: pd.DataFrame | None
                  ) -> dict[str, Any]:
    """Flag precision and recall of ``gate`` at its threshold on held-out comments."""
    data = gate_frame(on_topic, off_topic)
    if not len(data.table):
        return {}
    flag = gate_proba(gate, data.table) >= gate_threshold(gate)
    return {"threshold": gate_threshold(gate), **flag_scores(flag, data.is_off)}


def attach_gate(model: StanceModel, gate: StanceModel | None) -> StanceModel:
    """Attach (or, with ``None``, remove) an off-topic gate; it is saved and loaded with the model."""
    model.off_topic_ = gate
    return model


def load_gate(folder: str | Path) -> StanceModel | None:
    """The gate stored in a model folder, or ``None``."""
    from .persist import load_model

    path = Path(folder) / GATE_FOLDER
    if not (path / "config.json").is_file():
        return None
    gate = load_model(path)
    gate.threshold_ = gate_threshold(gate)
    return gate
