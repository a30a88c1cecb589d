"""Evaluation metrics researchers compare against published work.

:func:`score` returns one JSON-able dict: accuracy, macro-F1 with a bootstrap 95% CI,
weighted-F1, per-class precision/recall/F1/support, the confusion matrix, and F_avg (the mean F1
of two polar classes, the official metric of SemEval-2016 Task 6) when ``polar`` is given.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import DataError


def _f1_from_confusion(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def confusion(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Rows are true labels, columns predicted labels, both in the order of ``labels``."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(y_true, y_pred):
        matrix[index[t], index[p]] += 1
    return matrix


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: the labels in ``y_true``).

    >>> round(macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"]), 4)
    0.7333
    """
    labels = list(labels) if labels is not None else sorted(set(y_true))
    return float(_f1_from_confusion(confusion(y_true, y_pred, labels))[2].mean())


def f_avg(y_true: Sequence[str], y_pred: Sequence[str], polar: Sequence[str], labels: Sequence[str]) -> float:
    """Mean F1 of the two polar classes (e.g. FAVOR and AGAINST), as scored in SemEval-2016 Task 6."""
    _, _, f1 = _f1_from_confusion(confusion(y_true, y_pred, labels))
    return float(np.mean([f1[list(labels).index(p)] for p in polar]))


def bootstrap_ci(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of macro-F1, resampling comments with replacement."""
    index = {label: i for i, label in enumerate(labels)}
    t = np.array([index[v] for v in y_true])
    p = np.array([index[v] for v in y_pred])
    k = len(labels)
    rng = np.random.default_rng(seed)
    n = len(t)
    draws = rng.integers(0, n, size=(n_resamples, n))
    scores = np.empty(n_resamples)
    for b in range(n_resamples):
        matrix = np.bincount(t[draws[b]] * k + p[draws[b]], minlength=k * k).reshape(k, k)
        # as in score(): average over the labels that occur in the resample's gold labels or predictions
        present = (matrix.sum(axis=1) > 0) | (matrix.sum(axis=0) > 0)
        scores[b] = _f1_from_confusion(matrix)[2][present].mean()
    alpha = (1 - confidence) / 2
    return float(np.quantile(scores, alpha)), float(np.quantile(scores, 1 - alpha))


def score(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str] | None = None,
    *,
    polar: Sequence[str] | None = None,
    targets: Sequence[str | None] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """All metrics of one prediction run, as a JSON-able dict.

    >>> s = score(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    >>> s["accuracy"], round(s["macro_f1"], 4), s["confusion"]["matrix"]
    (0.75, 0.7333, [[1, 1], [0, 2]])
    """
    y_true = [str(v) for v in y_true]
    y_pred = [str(v) for v in y_pred]
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if not y_true:
        raise DataError("nothing to evaluate: no labelled comments", "check the evaluation data")
    labels = list(labels) if labels is not None else sorted(set(y_true) | set(y_pred))
    unknown = sorted((set(y_true) | set(y_pred)) - set(labels))
    if unknown:
        raise DataError(f"label '{unknown[0]}' is not one of {labels}", "use the model's labels")
    matrix = confusion(y_true, y_pred, labels)
    ci = list(bootstrap_ci(y_true, y_pred, labels, n_resamples=n_resamples, seed=seed)) if n_resamples else None
    result = _point_metrics(matrix, labels, ci=ci, polar=polar)
    if targets is not None and any(targets):
        per_target = {}
        targets = [t or "(none)" for t in targets]
        for target in sorted(set(targets)):
            idx = [i for i, t in enumerate(targets) if t == target]
            sub = score([y_true[i] for i in idx], [y_pred[i] for i in idx], labels, polar=polar, n_resamples=0)
            per_target[target] = {k: sub[k] for k in ("n", "accuracy", "macro_f1", "f_avg") if k in sub}
        result["per_target"] = per_target
    return result


def _point_metrics(matrix: np.ndarray, labels: Sequence[str], *, ci: list[float] | None,
                   polar: Sequence[str] | None) -> dict[str, Any]:
    """Every metric of :func:`score` but the per-target ones, from a confusion matrix."""
    precision, recall, f1 = _f1_from_confusion(matrix)
    support = matrix.sum(axis=1)
    # macro-F1 averages over the labels that occur in the gold data or the predictions
    active = (support > 0) | (matrix.sum(axis=0) > 0)
    result: dict[str, Any] = {
        "n": int(matrix.sum()),
        "accuracy": float(np.trace(matrix) / matrix.sum()),
        "macro_f1": float(f1[active].mean()),
        "macro_f1_ci": ci,
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion": {"labels": list(labels), "matrix": matrix.tolist()},
    }
    if polar:
        missing = [p for p in polar if p not in labels]
        if len(polar) != 2 or missing:
            raise DataError(f"--polar needs two of the labels {list(labels)}, got {list(polar)}",
                            "for example --polar FAVOR,AGAINST")
        result["f_avg"] = float(np.mean([f1[list(labels).index(p)] for p in polar]))
        result["polar"] = list(polar)
    return result


def score_counts(
    matrix: Sequence[Sequence[int]],
    labels: Sequence[str],
    *,
    polar: Sequence[str] | None = None,
    per_target: dict[str, Sequence[Sequence[int]]] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The metrics of :func:`score` from confusion counts (rows true, columns predicted, in the
    order of ``labels``), e.g. counted by a distributed engine; ``per_target`` holds one matrix
    per target. Point metrics equal :func:`score`'s on the same predictions. The macro-F1
    interval is a multinomial bootstrap over the confusion cells, which resamples comments with
    replacement just as :func:`bootstrap_ci` does, with different random draws; its method is
    named in ``macro_f1_ci_method``.

    >>> s = score_counts([[1, 1], [0, 2]], ["a", "b"], n_resamples=0)
    >>> s["accuracy"], round(s["macro_f1"], 4)
    (0.75, 0.7333)
    """
    labels = list(labels)
    matrix = np.asarray(matrix, dtype=np.int64)
    n = int(matrix.sum())
    if not n:
        raise DataError("nothing to evaluate: no labelled comments", "check the evaluation data")
    ci = None
    if n_resamples:
        k = len(labels)
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(n, matrix.ravel() / n, size=n_resamples).reshape(n_resamples, k, k)
        scores = np.empty(n_resamples)
        for b in range(n_resamples):
            present = (draws[b].sum(axis=1) > 0) | (draws[b].sum(axis=0) > 0)
            scores[b] = _f1_from_confusion(draws[b])[2][present].mean()
        alpha = (1 - confidence) / 2
        ci = [float(np.quantile(scores, alpha)), float(np.quantile(scores, 1 - alpha))]
    result = _point_metrics(matrix, labels, ci=ci, polar=polar)
    result["macro_f1_ci_method"] = "multinomial bootstrap over the confusion counts" if n_resamples else None
    if per_target and len(per_target) and not (len(per_target) == 1 and "(none)" in per_target):
        result["per_target"] = {
            target: {k: v for k, v in _point_metrics(np.asarray(m, dtype=np.int64), labels, ci=None, polar=polar
                                                     ).items() if k in ("n", "accuracy", "macro_f1", "f_avg")}
            for target, m in sorted(per_target.items())
        }
    return result


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> dict[str, Any]:
    """Cohen's kappa between two annotators, overall and per label (each label against the rest).

    >>> k = cohen_kappa(["x", "x", "y", "y"], ["x", "y", "y", "y"])
    >>> k["overall"], k["per_label"]["x"]
    (0.5, 0.5)
    """
    a = [str(v) for v in a]
    b = [str(v) for v in b]
    if len(a) != len(b) or not a:
        raise ValueError("kappa needs two equally long, non-empty label lists")

    def kappa(x: list, y: list) -> float:
        labels = sorted(set(x) | set(y))
        n = len(x)
        observed = sum(p == q for p, q in zip(x, y)) / n
        expected = sum((x.count(l) / n) * (y.count(l) / n) for l in labels)
        return 1.0 if expected == 1 else (observed - expected) / (1 - expected)

    labels = sorted(set(a) | set(b))
    return {
        "n": len(a),
        "agreement": sum(p == q for p, q in zip(a, b)) / len(a),
        "overall": kappa(a, b),
        "per_label": {l: kappa([v == l for v in a], [v == l for v in b]) for l in labels},
    }
