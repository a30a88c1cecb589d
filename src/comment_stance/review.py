"""Why a scored comment needs a moderator's review: the rules that CLI, service and Spark share.

A scored comment gets ``needs_review`` (bool) and ``review_reason``: the reasons that apply, most
important first, joined by ``;`` (empty when it needs no review). The reasons, in that order:

``off_topic``
    the model carries an off-topic gate (:mod:`comment_stance.offtopic`) and the gate's
    probability that the comment takes no stance toward the pact reaches its threshold;
``unknown_target``
    the model reads targets (its family has ``use_target`` or ``per_target`` on) and was trained
    on rows that had them, but this comment has no target: it would be scored as if it were about
    no pact in particular. A target the model did not see in training is *not* flagged: every
    family reads the target's text, and scoring comments on a new pact is what the unseen-article
    split measures (flagging them would flag every comment of every new article);
``low_confidence``
    ``review_below`` is given and the top probability is below it.

The review columns are present when review is asked for (``review_below`` given, or
``review=True``, as the service does) or when the model carries a gate; otherwise output keeps
its old columns. The stance label is never changed by a review rule.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .models.base import StanceModel

OFF_TOPIC = "off_topic"
UNKNOWN_TARGET = "unknown_target"
LOW_CONFIDENCE = "low_confidence"
#: every reason, most important first (the order of ``review_reason``)
REASONS = (OFF_TOPIC, UNKNOWN_TARGET, LOW_CONFIDENCE)
SEPARATOR = ";"


def gate_of(model: Any) -> StanceModel | None:
    """The model's off-topic gate, or ``None``."""
    return getattr(model, "off_topic_", None)


def reviews(model: Any, review_below: float | None = None, review: bool | None = None) -> bool:
    """Whether scored output carries ``needs_review`` and ``review_reason``."""
    if review is not None:
        return bool(review)
    return review_below is not None or gate_of(model) is not None


def trained_targets(model: Any) -> list[str]:
    """Targets of the model's training rows (recorded in config.json since this version)."""
    config = getattr(model, "config_", None) or {}
    targets = getattr(model, "trained_targets_", None)
    if targets is None:
        targets = config.get("training", {}).get("targets") or []
    return list(targets)


def uses_targets(model: Any) -> bool:
    """Whether the model reads a comment's target and was trained on rows that had one."""
    try:
        params = model.get_params(deep=False)
    except Exception:  # not an estimator: nothing known about targets
        return False
    reads = bool(params.get("use_target") or params.get("per_target"))
    return reads and bool(trained_targets(model))


def join_reasons(*flags: Sequence[bool] | np.ndarray) -> list[str | None]:
    """One ``review_reason`` per row from one boolean sequence per reason, in :data:`REASONS`
    order: the reasons that apply joined by ``;``, or ``None`` when none does.

    >>> join_reasons([True, False, False], [True, False, False], [False, True, False])
    ['off_topic;unknown_target', 'low_confidence', None]
    """
    rows = zip(*flags) if flags else ()
    return [SEPARATOR.join(r for r, on in zip(REASONS, row) if on) or None for row in rows]


def missing_target(targets: Sequence[Any]) -> np.ndarray:
    """True where a target is missing (None, NaN or blank)."""
    return np.array([not (isinstance(t, str) and t.strip()) for t in targets], dtype=bool)


def review_flags(
    model: Any,
    inputs: Any,
    confidence: np.ndarray,
    *,
    review_below: float | None = None,
) -> tuple[np.ndarray, list[str | None]]:
    """``needs_review`` and ``review_reason`` for the comments in ``inputs`` (a table with
    ``text`` and optionally ``target`` and ``parent_text``, as the model reads it) whose top
    probabilities are ``confidence``."""
    from .offtopic import gate_proba, gate_threshold

    n = len(confidence)
    gate = gate_of(model)
    if gate is not None and n:
        off = gate_proba(gate, inputs) >= gate_threshold(gate)
    else:
        off = np.zeros(n, dtype=bool)
    if uses_targets(model) and n:
        targets = list(inputs["target"]) if "target" in getattr(inputs, "columns", ()) else [None] * n
        unknown = missing_target(targets)
    else:
        unknown = np.zeros(n, dtype=bool)
    low = np.asarray(confidence) < review_below if review_below is not None else np.zeros(n, dtype=bool)
    return off | unknown | low, join_reasons(off, unknown, low)
