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
    """Per-class precision, recall and F1 of a confusion matrix, or of a stack of them (the
    last two axes); a class with no predictions or no gold examples has 0 where it divides by 0."""
    tp = np.diagonal(matrix, axis1=-2, axis2=-1).astype(float)
    predicted = matrix.sum(axis=-2).astype(float)
    actual = matrix.sum(axis=-1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def confusion(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Rows are true labels, columns predicted labels, both in the order of ``labels``.

    >>> confusion(["a", "a", "b"], ["a", "b", "b"], ["a", "b"]).tolist()
    [[1, 1], [0, 1]]
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    k = len(labels)
    cells = _codes(y_true, labels).astype(np.int64) * k + _codes(y_pred, labels)
    return np.bincount(cells, minlength=k * k).reshape(k, k)


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-class F1 over the label set ``labels``.

    This is the one definition of macro-F1 in the package (:func:`score`, the bootstrap and the
    paired test use it too). As in scikit-learn's ``f1_score(average="macro")`` and the
    SemEval stance tasks, the average runs over a fixed label set: the model's labels when
    given (evaluation passes them), otherwise every label that occurs in ``y_true`` or
    ``y_pred``. A label of the set that is never predicted, or never in the gold labels, counts
    with F1 = 0 (scikit-learn's ``zero_division=0``); it is not left out.

    >>> round(macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"]), 4)
    0.7333
    >>> macro_f1(["a", "b"], ["a", "b"], labels=["a", "b", "c"])   # c: F1 0, still averaged
    0.6666666666666666
    """
    labels = list(labels) if labels is not None else sorted(set(y_true) | set(y_pred))
    return float(_f1_from_confusion(confusion(y_true, y_pred, labels))[2].mean())


def f_avg(y_true: Sequence[str], y_pred: Sequence[str], polar: Sequence[str], labels: Sequence[str]) -> float:
    """Mean F1 of the two polar classes (e.g. FAVOR and AGAINST), as scored in SemEval-2016 Task 6.

    >>> f_avg(["F", "A", "N"], ["F", "N", "N"], ["F", "A"], ["A", "F", "N"])   # (1 + 0) / 2
    0.5
    """
    _, _, f1 = _f1_from_confusion(confusion(y_true, y_pred, labels))
    return float(np.mean([f1[list(labels).index(p)] for p in polar]))


# -- the bootstrap ---------------------------------------------------------------------------------
#: the most count cells (resamples × distinct rows) one block of the bootstrap holds at once
BLOCK_CELLS = 1 << 20


def bootstrap_ci(
    y_true: Sequence[str],
    y_pred: Sequence[str] | Sequence[Sequence[str]],
    labels: Sequence[str],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of macro-F1, resampling comments with replacement.

    ``y_pred`` is one prediction list, or several (one per training seed): then the statistic is
    the macro-F1 averaged over seeds, each resample scoring every seed on the same comments, so
    that the interval reflects the test sample rather than seed noise.

    >>> lo, hi = bootstrap_ci(["a", "b"] * 50, ["a", "b"] * 40 + ["a", "a"] * 10, ["a", "b"], seed=1)
    >>> lo < macro_f1(["a", "b"] * 50, ["a", "b"] * 40 + ["a", "a"] * 10) < hi < 1.0
    True
    """
    scores = resampled_macro_f1(y_true, y_pred, labels=labels, n_resamples=n_resamples, seed=seed)[0]
    alpha = (1 - confidence) / 2
    return float(np.quantile(scores, alpha)), float(np.quantile(scores, 1 - alpha))


def resampled_macro_f1(
    y_true: Sequence[str],
    *systems: Sequence[str] | Sequence[Sequence[str]],
    labels: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
    draws: np.ndarray | None = None,
) -> np.ndarray:
    """Macro-F1 (over ``labels``) of each system on each bootstrap resample of the comments:
    an array of shape ``(len(systems), n_resamples)``. Every system is scored on the same
    resamples (for paired tests); a system given as several prediction lists (one per seed)
    scores the mean of their macro-F1s.

    Memory does not grow with the number of comments times resamples. A resample of ``n``
    comments with replacement is fully described by how often it draws each distinct row
    (gold label, every prediction): these counts follow a multinomial distribution over the
    distinct rows, so they are drawn directly, a block of resamples at a time. With one
    system that is at most ``k²`` cells per resample for ``k`` labels, whatever ``n`` is.

    ``draws`` replaces the random resamples with rows of comment indices, for hand-checked
    examples:

    >>> draws = np.array([[0, 1], [0, 0]])
    >>> resampled_macro_f1(["a", "b"], ["a", "a"], labels=["a", "b"], draws=draws).round(4).tolist()
    [[0.3333, 0.5]]
    """
    gold = _codes(y_true, labels)
    n = len(gold)
    if n == 0:
        raise ValueError("nothing to resample: no labelled comments")
    runs_of = [[_codes(run, labels) for run in _runs(system, n)] for system in systems]
    columns = np.column_stack([gold, *[run for runs in runs_of for run in runs]])
    patterns, inverse, weights = _distinct_rows(columns, len(labels), with_inverse=draws is not None)
    del columns
    k = len(labels)
    out = np.empty((len(systems), n_resamples if draws is None else len(draws)))
    for start, counts in _resample_counts(weights, n, n_resamples, seed, draws, inverse):
        stop = start + len(counts)
        column = 1
        for s, runs in enumerate(runs_of):
            total = np.zeros(len(counts))
            for _ in runs:
                cells = patterns[:, 0] * k + patterns[:, column]
                matrices = np.zeros((len(counts), k * k))
                for cell in np.unique(cells):
                    matrices[:, cell] = counts[:, cells == cell].sum(axis=1)
                total += _f1_from_confusion(matrices.reshape(-1, k, k))[2].mean(axis=1)
                column += 1
            out[s, start:stop] = total / len(runs)
    return out


def _codes(values: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    index = {str(label): i for i, label in enumerate(labels)}
    try:
        return np.fromiter((index[str(v)] for v in values), dtype=np.int32)
    except KeyError as exc:
        raise DataError(f"label '{exc.args[0]}' is not one of {list(labels)}", "use the model's labels") from None


def _runs(predictions, n: int) -> list:
    """One prediction list, or several (one per seed), as a list of lists of length ``n``."""
    items = predictions if isinstance(predictions, np.ndarray) and predictions.ndim == 2 else list(predictions)
    if len(items) and not isinstance(items[0], str) and isinstance(items[0], Sequence | np.ndarray):
        runs = [list(run) for run in items]
    else:
        runs = [items]
    for run in runs:
        if len(run) != n:
            raise ValueError(f"{n} gold labels but {len(run)} predictions")
    return runs


def _distinct_rows(columns: np.ndarray, k: int, *, with_inverse: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The distinct rows of an ``(n, c)`` array of label codes, which of them each row is (when
    asked), and how often each occurs."""
    width = columns.shape[1]
    if k**width <= 1 << 20:  # few possible rows: count them without sorting
        code = np.zeros(len(columns), dtype=np.int64)
        for j in range(width):
            code *= k
            code += columns[:, j]
        counts = np.bincount(code, minlength=k**width)
        present = np.flatnonzero(counts)
        patterns = np.array(np.unravel_index(present, (k,) * width)).T.reshape(-1, width)
        inverse = None
        if with_inverse:
            lookup = np.full(k**width, -1, dtype=np.int64)
            lookup[present] = np.arange(len(present))
            inverse = lookup[code]
        return patterns, inverse, counts[present]
    patterns, inverse, counts = np.unique(columns, axis=0, return_inverse=True, return_counts=True)
    return patterns, inverse.reshape(-1) if with_inverse else None, counts


def _resample_counts(weights: np.ndarray, n: int, n_resamples: int, seed: int, draws: np.ndarray | None,
                     inverse: np.ndarray | None):
    """Blocks ``(start, counts)``: how often each distinct row occurs in each resample."""
    m = len(weights)
    block = max(1, BLOCK_CELLS // m)
    if draws is not None:
        draws = np.asarray(draws)
        for start in range(0, len(draws), block):
            rows = inverse[draws[start:start + block]]
            yield start, np.stack([np.bincount(r, minlength=m) for r in rows]) if len(rows) else np.zeros((0, m))
        return
    rng = np.random.default_rng(seed)
    p = weights / weights.sum()
    for start in range(0, n_resamples, block):
        yield start, rng.multinomial(n, p, size=min(block, n_resamples - start))



def _resampled_macro_f1_of_counts(matrix: np.ndarray, *, n_resamples: int, seed: int) -> np.ndarray:
    """Macro-F1 on each bootstrap resample, from a confusion matrix alone. The distinct rows of
    (gold, prediction) are the non-empty cells, in the order :func:`resampled_macro_f1` finds
    them, so the draws, and the interval, equal :func:`bootstrap_ci`'s on the same comments."""
    k = matrix.shape[0]
    flat = np.asarray(matrix, dtype=np.int64).ravel()
    present = np.flatnonzero(flat)
    weights = flat[present]
    out = np.empty(n_resamples)
    for start, counts in _resample_counts(weights, int(weights.sum()), n_resamples, seed, None, None):
        cells = np.zeros((len(counts), k * k))
        cells[:, present] = counts
        out[start:start + len(counts)] = _f1_from_confusion(cells.reshape(-1, k, k))[2].mean(axis=1)
    return out

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
    result: dict[str, Any] = {
        "n": int(matrix.sum()),
        "accuracy": float(np.trace(matrix) / matrix.sum()),
        "macro_f1": float(f1.mean()),  # over all of labels, as macro_f1()
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
    per target. Point metrics equal :func:`score`'s on the same predictions, and so does the
    macro-F1 interval: it is the same multinomial bootstrap over the confusion cells, with the same
    draws for the same seed. Its method is named in ``macro_f1_ci_method``.

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
        scores = _resampled_macro_f1_of_counts(matrix, n_resamples=n_resamples, seed=seed)
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
