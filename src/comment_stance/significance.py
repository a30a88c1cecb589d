"""Is model A really better than model B on the same comments? Paired tests and seed-averaged CIs.

Both tests compare two prediction lists for the *same* gold labels, item by item:

- :func:`paired_bootstrap` resamples comments with replacement and recomputes the difference in
  macro-F1 on every resample (Koehn, 2004; Berg-Kirkpatrick et al., 2012). It tests the metric
  the leaderboard ranks by, and accepts several seeds per model: the statistic is then the
  macro-F1 averaged over seeds, computed on the same resample for every seed. The resampling
  and macro-F1 are :func:`comment_stance.metrics.resampled_macro_f1`, the same as behind
  every confidence interval (:func:`comment_stance.metrics.bootstrap_ci`).
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

from .metrics import _runs, macro_f1, resampled_macro_f1

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
    delta = _seed_mean_f1(gold, pred_a, labels) - _seed_mean_f1(gold, pred_b, labels)
    deltas = np.subtract(*resampled_macro_f1(gold, pred_a, pred_b, labels=labels, n_resamples=n_resamples,
                                             seed=seed, draws=draws))
    # a tolerance so that floating-point noise does not decide ties
    extreme = int(np.sum(np.abs(deltas - delta) >= abs(delta) - 1e-12))
    p_value = (1 + extreme) / (1 + len(deltas)) if delta != 0 else 1.0
    alpha = (1 - confidence) / 2
    ci = (float(np.quantile(deltas, alpha)), float(np.quantile(deltas, 1 - alpha)))
    return PairedBootstrapResult(delta, ci, float(min(1.0, p_value)), int(len(deltas)))


# -- helpers -------------------------------------------------------------------------------------
def _seed_mean_f1(gold: list[str], predictions, labels: Sequence[str]) -> float:
    """Macro-F1 of one prediction list, or its mean over several (one per seed)."""
    runs = _runs(predictions, len(gold))
    return float(np.mean([macro_f1(gold, [str(v) for v in run], labels) for run in runs]))


def _aligned(gold, *predictions) -> tuple[np.ndarray, ...]:
    arrays = [np.asarray([str(v) for v in gold], dtype=object)]
    for pred in predictions:
        array = np.asarray([str(v) for v in pred], dtype=object)
        if len(array) != len(arrays[0]):
            raise ValueError(f"{len(arrays[0])} gold labels but {len(array)} predictions")
        arrays.append(array)
    return tuple(arrays)
