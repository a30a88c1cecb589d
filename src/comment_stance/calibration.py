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

from typing import Any

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
