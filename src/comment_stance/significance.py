"""Is model A really better than model B on the same comments? Paired tests and seed-averaged CIs.

Both tests compare two prediction lists for the *same* gold labels, item by item:

- :func:`paired_bootstrap` resamples comments with replacement and recomputes the difference in
  macro-F1 on every resample (Koehn, 2004; Berg-Kirkpatrick et al., 2012). It tests the metric
  the leaderboard ranks by, and accepts several seeds per model: the statistic is then the
  macro-F1 averaged over seeds, computed on the same resample for every seed.
- :func:`mcnemar` looks only at the comments one model gets right and the other wrong
  (McNemar, 1947; Dietterich, 1998). It tests accuracy, not macro-F1.

Everything here is a pure function of label lists: no files, no models.

>>> gold = ["a", "b"] * 20
>>> r = mcnemar(gold, gold, ["a"] * 40)
>>> (r.a_only, r.b_only, r.method)
(20, 0, 'exact')
>>> r.p_value < 0.001
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .metrics import _f1_from_confusion

#: below this many discordant pairs McNemar uses the exact binomial test (Dietterich's advice
#: is that the chi-squared approximation needs roughly 25 or more)
EXACT_BELOW = 25


@dataclass(frozen=True)
class McNemarResult:
    """``a_only``: comments A gets right and B wrong; ``b_only``: the reverse."""

    a_only: int
    b_only: int
    statistic: float
    p_value: float
    method: str  # "exact" (binomial) or "chi2" (with continuity correction)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PairedBootstrapResult:
    """``delta`` = macro-F1(A) − macro-F1(B) on the real data; ``ci``: percentile interval of
    the resampled deltas; ``p_value``: two-sided, for "no difference"."""

    delta: float
    ci: tuple[float, float]
    p_value: float
    n_resamples: int

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci)
        return out


def mcnemar(gold: Sequence[str], pred_a: Sequence[str], pred_b: Sequence[str], *,
            exact: bool | None = None) -> McNemarResult:
    """McNemar's test of two classifiers on the same comments.

    With ``exact=None`` the exact two-sided binomial test is used when there are fewer than
    :data:`EXACT_BELOW` discordant comments, otherwise the chi-squared statistic with continuity
    correction, ``(|b − c| − 1)² / (b + c)`` on one degree of freedom.

    >>> gold = ["x", "x", "x", "x", "y"]
    >>> mcnemar(gold, ["x", "x", "x", "x", "y"], ["x", "y", "y", "y", "y"]).p_value   # b=3, c=0: 2 * 0.5**3
    0.25
    >>> r = mcnemar(["x"] * 40, ["x"] * 30 + ["y"] * 10, ["y"] * 40)                  # b=30, c=0: chi2
    >>> (r.method, round(r.statistic, 4))
    ('chi2', 28.0333)
    """
    gold, pred_a, pred_b = _aligned(gold, pred_a, pred_b)
    right_a = pred_a == gold
    right_b = pred_b == gold
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    n = b + c
    use_exact = n < EXACT_BELOW if exact is None else exact
    if n == 0:
        return McNemarResult(b, c, 0.0, 1.0, "exact" if use_exact else "chi2")
    if use_exact:
        k = min(b, c)
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
        return McNemarResult(b, c, float(k), min(1.0, 2 * tail), "exact")
    statistic = (abs(b - c) - 1) ** 2 / n
    # the chi-squared survival function with one degree of freedom, without scipy
    return McNemarResult(b, c, float(statistic), float(math.erfc(math.sqrt(statistic / 2))), "chi2")


def resample_indices(n: int, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """``(n_resamples, n)`` comment indices drawn with replacement; the same draws as
    :func:`comment_stance.metrics.bootstrap_ci` makes for the same ``seed``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_resamples, n))


def resampled_macro_f1(gold: Sequence[str], predictions: Sequence[Sequence[str]] | Sequence[str],
                       labels: Sequence[str], draws: np.ndarray) -> np.ndarray:
    """Macro-F1 on each resample (one row of ``draws``), averaged over the prediction lists
    when ``predictions`` holds several (one per seed).

    As in :func:`comment_stance.metrics.score`, macro-F1 averages over the labels that occur
    in the resample's gold labels or predictions.

    >>> draws = np.array([[0, 1], [0, 0]])
    >>> resampled_macro_f1(["a", "b"], ["a", "a"], ["a", "b"], draws).round(4).tolist()
    [0.3333, 1.0]
    """
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    t = np.array([index[str(v)] for v in gold])
    runs = _runs(predictions, len(t))
    total = np.zeros(len(draws))
    for run in runs:
        p = np.array([index[str(v)] for v in run])
        for r, rows in enumerate(draws):
            matrix = np.bincount(t[rows] * k + p[rows], minlength=k * k).reshape(k, k)
            total[r] += _macro_f1(matrix)
    return total / len(runs)


def bootstrap_ci(gold: Sequence[str], predictions: Sequence[Sequence[str]] | Sequence[str],
                 labels: Sequence[str], *, n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of macro-F1, for one prediction list or the seed average of
    several (each resample scores every seed on the same comments, so the interval reflects the
    test sample, not seed noise). With one list it equals
    :func:`comment_stance.metrics.bootstrap_ci`.

    >>> lo, hi = bootstrap_ci(["a", "b"] * 10, [["a", "b"] * 10, ["a", "a"] * 10], ["a", "b"])
    >>> lo <= hi <= 1.0
    True
    """
    scores = resampled_macro_f1(gold, predictions, labels, resample_indices(len(gold), n_resamples, seed))
    alpha = (1 - confidence) / 2
    return float(np.quantile(scores, alpha)), float(np.quantile(scores, 1 - alpha))


def paired_bootstrap(gold: Sequence[str], pred_a: Sequence[Sequence[str]] | Sequence[str],
                     pred_b: Sequence[Sequence[str]] | Sequence[str], labels: Sequence[str], *,
                     n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                     draws: np.ndarray | None = None) -> PairedBootstrapResult:
    """Paired bootstrap test of the macro-F1 difference between systems A and B.

    ``pred_a``/``pred_b`` are one prediction list each, or one list per seed (the statistic is
    then the seed-averaged macro-F1). Every resample draws the same comments for A and B. The
    two-sided p-value tests "no difference" by centring the resampled deltas on zero:
    ``p = (1 + #{|δ*ᵢ − δ| ≥ |δ|}) / (1 + n_resamples)``. ``draws`` replaces the random
    resamples (rows of comment indices), for hand-checked examples.

    >>> gold = ["a", "b", "a", "b"]
    >>> r = paired_bootstrap(gold, gold, ["a", "a", "a", "a"], ["a", "b"],
    ...                      draws=np.array([[0, 1, 2, 3], [0, 0, 1, 1], [0, 0, 0, 0]]))
    >>> round(r.delta, 4), r.p_value        # deltas 0.6667, 0.6667, 0.0: one is as far from δ as δ from 0
    (0.6667, 0.5)
    """
    gold = [str(v) for v in gold]
    if draws is None:
        draws = resample_indices(len(gold), n_resamples, seed)
    draws = np.asarray(draws)
    full = np.arange(len(gold))[None, :]
    delta = float(resampled_macro_f1(gold, pred_a, labels, full)[0] - resampled_macro_f1(gold, pred_b, labels, full)[0])
    deltas = resampled_macro_f1(gold, pred_a, labels, draws) - resampled_macro_f1(gold, pred_b, labels, draws)
    # a tolerance so that floating-point noise does not decide ties
    extreme = int(np.sum(np.abs(deltas - delta) >= abs(delta) - 1e-12))
    p_value = (1 + extreme) / (1 + len(draws)) if delta != 0 else 1.0
    alpha = (1 - confidence) / 2
    ci = (float(np.quantile(deltas, alpha)), float(np.quantile(deltas, 1 - alpha)))
    return PairedBootstrapResult(delta, ci, float(min(1.0, p_value)), int(len(draws)))


# -- helpers -------------------------------------------------------------------------------------
def _macro_f1(matrix: np.ndarray) -> float:
    present = (matrix.sum(axis=1) > 0) | (matrix.sum(axis=0) > 0)
    return float(_f1_from_confusion(matrix)[2][present].mean()) if present.any() else 0.0


def _runs(predictions, n: int) -> list[list[str]]:
    """One prediction list, or several (one per seed), as a list of lists of length ``n``."""
    items = list(predictions)
    if items and not isinstance(items[0], str) and isinstance(items[0], Sequence | np.ndarray):
        runs = [list(map(str, run)) for run in items]
    else:
        runs = [list(map(str, items))]
    for run in runs:
        if len(run) != n:
            raise ValueError(f"{n} gold labels but {len(run)} predictions")
    return runs


def _aligned(gold, *predictions) -> tuple[np.ndarray, ...]:
    arrays = [np.asarray([str(v) for v in gold], dtype=object)]
    for pred in predictions:
        array = np.asarray([str(v) for v in pred], dtype=object)
        if len(array) != len(arrays[0]):
            raise ValueError(f"{len(arrays[0])} gold labels but {len(array)} predictions")
        arrays.append(array)
    return tuple(arrays)
