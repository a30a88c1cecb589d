"""Probability calibration: temperature scaling, expected calibration error and Brier score.

Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks") divides a
classifier's logits by one scalar ``T`` fitted on held-out data. It changes how confident the
model is, never which label it picks, so accuracy and macro-F1 stay the same.

Everything here is plain numpy: logits and probabilities are ``(n, k)`` arrays, labels are
integer class indices ``(n,)``.

>>> import numpy as np
>>> logits = np.array([[4.0, 0.0], [3.0, 0.0], [0.0, 5.0], [2.0, 0.0]])
>>> labels = np.array([0, 1, 1, 0])
>>> t = fit_temperature(logits, labels)
>>> t > 1.0                         # the model is over-confident: soften it
True
>>> bool(nll(logits / t, labels) < nll(logits, labels))
True
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

#: temperatures outside this range are clipped: a dev set too small or too easy would otherwise
#: drive T to 0 (perfectly separated) or infinity (labels unrelated to the logits)
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, computed stably.

    >>> softmax(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (cross-entropy) of integer ``labels`` under ``softmax(logits)``.

    >>> round(nll(np.array([[0.0, 0.0]]), np.array([1])), 4)
    0.6931
    """
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    top = z.max(axis=1, keepdims=True)
    log_norm = (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_norm - z[np.arange(len(z)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, max_iter: int = 100, tol: float = 1e-10) -> float:
    """The temperature ``T`` minimizing the NLL of ``softmax(logits / T)`` on ``labels``.

    The NLL is convex in the inverse temperature ``b = 1/T`` (a log-sum-exp minus a linear term),
    with derivative ``mean(E_p[z] - z_y)`` and second derivative ``mean(Var_p[z]) >= 0``, so a
    safeguarded Newton search on ``b`` finds the exact optimum in a few steps. The result is
    clipped to [``MIN_TEMPERATURE``, ``MAX_TEMPERATURE``]; with no examples it is 1.

    >>> logits = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    >>> fit_temperature(logits, np.array([0, 1, 0, 1]))   # all right: as sharp as allowed
    0.05
    """
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    if z.ndim != 2 or len(z) != len(labels):
        raise ValueError(f"logits of shape {z.shape} do not match {len(labels)} labels")
    if len(z) == 0:
        return 1.0
    picked = z[np.arange(len(z)), labels]

    def derivatives(b: float) -> tuple[float, float]:
        p = softmax(z * b)
        mean_z = (p * z).sum(axis=1)
        var_z = (p * z * z).sum(axis=1) - mean_z**2
        return float(np.mean(mean_z - picked)), float(np.mean(np.maximum(var_z, 0.0)))

    lo, hi = 1.0 / MAX_TEMPERATURE, 1.0 / MIN_TEMPERATURE
    # the derivative is increasing in b: the optimum lies where it crosses zero, or at a bound
    if derivatives(lo)[0] >= 0:
        return MAX_TEMPERATURE
    if derivatives(hi)[0] <= 0:
        return MIN_TEMPERATURE
    b = 1.0
    for _ in range(max_iter):
        grad, hess = derivatives(b)
        if abs(grad) < tol:
            break
        if grad > 0:
            hi = b
        else:
            lo = b
        step = b - grad / hess if hess > 0 else None
        # fall back to bisection when Newton would leave the bracket
        b = step if step is not None and lo < step < hi else 0.5 * (lo + hi)
        if hi - lo < tol:
            break
    return float(np.clip(1.0 / b, MIN_TEMPERATURE, MAX_TEMPERATURE))


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, *, n_bins: int = 15) -> float:
    """Expected calibration error of the top label: the bin-size-weighted mean gap between
    confidence and accuracy over ``n_bins`` equal-width confidence bins.

    >>> proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    >>> round(expected_calibration_error(proba, np.array([0, 1, 0, 1]), n_bins=10), 3)  # (2*.4 + .4 + .2) / 4
    0.35
    """
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    if len(proba) == 0:
        return 0.0
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == labels).astype(float)
    # bin i holds confidences in (i/n, (i+1)/n]; a confidence of exactly 0 joins the first bin
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for i in np.unique(bins):
        mask = bins == i
        total += mask.sum() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total / len(proba))


def brier_score(proba: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: mean over comments of the squared distance between the
    probability vector and the one-hot true label (0 is perfect, 2 the worst).

    >>> brier_score(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([0, 1]))
    0.25
    """
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    if len(proba) == 0:
        return 0.0
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(proba)), labels] = 1.0
    return float(np.mean(((proba - onehot) ** 2).sum(axis=1)))


def calibration_report(logits: np.ndarray, labels: np.ndarray, temperature: float, *,
                       n_bins: int = 15) -> dict[str, Any]:
    """ECE, Brier score and NLL of ``softmax(logits)`` before and after dividing by ``temperature``.

    >>> report = calibration_report(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 1]), 1.0)
    >>> report["before"] == report["after"]
    True
    """
    out: dict[str, Any] = {"temperature": float(temperature), "n": int(len(labels)), "n_bins": n_bins}
    for name, t in (("before", 1.0), ("after", temperature)):
        proba = softmax(logits, t)
        out[name] = {
            "ece": expected_calibration_error(proba, labels, n_bins=n_bins),
            "brier": brier_score(proba, labels),
            "nll": nll(np.asarray(logits, dtype=np.float64) / t, labels) if len(labels) else 0.0,
        }
    return out


#: the ``--review-below`` thresholds that evaluation reports on: what share of comments a
#: moderator would review, and what share of the model's errors would be among them
REVIEW_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
#: confidence bins of the expected calibration error in evaluation reports (as in model folders)
ECE_BINS = 15


def confidence_cells(proba: np.ndarray, labels: np.ndarray, *, n_bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Comments grouped by (ECE bin, review band, right or wrong), with their count and the sums
    of their confidences and Brier scores: all that :func:`confidence_summary` needs, in a form
    that adds up across chunks and machines (Spark computes the same cells).

    The bin of a confidence ``c`` is ``ceil(c * n_bins) - 1`` clipped to ``[0, n_bins - 1]`` (as in
    :func:`expected_calibration_error`); its band is how many of ``REVIEW_THRESHOLDS`` are ``<= c``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    if len(proba) == 0:
        return []
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == labels
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(proba)), labels] = 1.0
    brier = ((proba - onehot) ** 2).sum(axis=1)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    bands = (confidence[:, None] >= np.asarray(REVIEW_THRESHOLDS)[None, :]).sum(axis=1)
    cells: dict[tuple[int, int, bool], dict[str, Any]] = {}
    for b, band, ok, c, s in zip(bins.tolist(), bands.tolist(), correct.tolist(), confidence.tolist(), brier.tolist()):
        cell = cells.setdefault((b, band, ok), {"bin": b, "band": band, "correct": ok, "count": 0,
                                                 "confidence_sum": 0.0, "brier_sum": 0.0})
        cell["count"] += 1
        cell["confidence_sum"] += c
        cell["brier_sum"] += s
    return [cells[key] for key in sorted(cells)]


def confidence_summary(cells: Sequence[dict[str, Any]], *, n_bins: int = ECE_BINS) -> dict[str, Any]:
    """How far to trust the model's confidence on these comments, from :func:`confidence_cells`:

    - ``ece`` (expected calibration error of the top label over ``n_bins`` bins), ``brier``
      (multi-class Brier score), ``mean_confidence`` against ``accuracy``;
    - ``review``: for each of ``REVIEW_THRESHOLDS``, what ``--review-below`` that value would send
      to a moderator: ``flagged`` comments (share of all), the model's errors among them
      (``errors_caught``, share of all errors) and the accuracy on the comments left unreviewed.

    >>> proba = np.array([[0.95, 0.05], [0.55, 0.45], [0.65, 0.35], [0.2, 0.8]])
    >>> summary = confidence_summary(confidence_cells(proba, np.array([0, 1, 1, 1])))
    >>> summary["errors"], [(r["below"], r["flagged"], r["errors_caught"]) for r in summary["review"]][:3]
    (2, [(0.5, 0, 0), (0.6, 1, 1), (0.7, 2, 2)])
    """
    n = sum(c["count"] for c in cells)
    right = sum(c["count"] for c in cells if c["correct"])
    errors = n - right
    gaps: dict[int, list[float]] = {}
    for c in cells:
        gap = gaps.setdefault(int(c["bin"]), [0.0, 0.0])
        gap[0] += c["confidence_sum"]
        gap[1] += c["count"] if c["correct"] else 0
    review = []
    for i, threshold in enumerate(REVIEW_THRESHOLDS):
        flagged = [c for c in cells if c["band"] <= i]  # band <= i: the confidence is below threshold i
        n_flagged = sum(c["count"] for c in flagged)
        caught = sum(c["count"] for c in flagged if not c["correct"])
        rest = n - n_flagged
        rest_right = right - sum(c["count"] for c in flagged if c["correct"])
        review.append({"below": threshold, "flagged": n_flagged, "flagged_share": n_flagged / n if n else 0.0,
                       "errors_caught": caught, "errors_caught_share": caught / errors if errors else 0.0,
                       "accuracy_unflagged": rest_right / rest if rest else None})
    return {
        "n": n,
        "errors": errors,
        "accuracy": right / n if n else 0.0,
        "mean_confidence": sum(c["confidence_sum"] for c in cells) / n if n else 0.0,
        "ece": sum(abs(s - k) for s, k in gaps.values()) / n if n else 0.0,
        "ece_bins": n_bins,
        "brier": sum(c["brier_sum"] for c in cells) / n if n else 0.0,
        "review": review,
    }
