"""Paired tests and intervals against hand-computed cases."""

import math

import numpy as np
import pytest

from comment_stance.metrics import bootstrap_ci, macro_f1, resampled_macro_f1
from comment_stance.significance import mcnemar, paired_bootstrap


def test_mcnemar_exact_by_hand():
    gold = ["x"] * 10
    a = ["x"] * 8 + ["y"] * 2  # A wrong on 8, 9
    b = ["y"] * 5 + ["x"] * 3 + ["x", "y"]  # B wrong on 0-4 and 9
    # A right & B wrong: 0-4 -> 5; A wrong & B right: 8 -> 1; n = 6
    r = mcnemar(gold, a, b)
    assert (r.a_only, r.b_only, r.method) == (5, 1, "exact")
    # two-sided binomial: 2 * P(X <= 1), X ~ Bin(6, 1/2) = 2 * (1 + 6) / 64
    assert r.p_value == pytest.approx(14 / 64)


def test_mcnemar_chi2_by_hand():
    gold = ["x"] * 40
    a = ["x"] * 30 + ["y"] * 5 + ["x"] * 5
    b = ["y"] * 30 + ["x"] * 5 + ["x"] * 5
    r = mcnemar(gold, a, b)
    assert (r.a_only, r.b_only, r.method) == (30, 5, "chi2")
    statistic = (abs(30 - 5) - 1) ** 2 / 35  # 576 / 35
    assert r.statistic == pytest.approx(statistic)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert r.p_value == pytest.approx(scipy_stats.chi2.sf(statistic, df=1))
    assert r.p_value == pytest.approx(math.erfc(math.sqrt(statistic / 2)))


def test_mcnemar_is_symmetric_and_one_without_disagreement():
    gold = ["a", "b", "a", "b", "a"]
    a = ["a", "a", "a", "b", "b"]
    b = ["b", "b", "a", "a", "a"]
    assert mcnemar(gold, a, b).p_value == mcnemar(gold, b, a).p_value
    same = mcnemar(gold, a, a)
    assert (same.a_only, same.b_only, same.p_value) == (0, 0, 1.0)
    assert mcnemar(gold, a, b, exact=False).method == "chi2"


def test_paired_bootstrap_with_hand_drawn_resamples():
    gold = ["a", "b", "a", "b"]
    perfect = gold
    all_a = ["a"] * 4  # macro-F1: F1(a) = 2*2/(4+2) = 2/3, F1(b) = 0 -> 1/3
    draws = np.array([[0, 1, 2, 3], [0, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    r = paired_bootstrap(gold, perfect, all_a, ["a", "b"], draws=draws)
    assert r.delta == pytest.approx(2 / 3)
    # resampled deltas (macro-F1 over both labels, a label absent from a resample has F1 0):
    #   2/3, 2/3, (1 + 0)/2 - (1 + 0)/2 = 0, (0 + 1)/2 - (0 + 0)/2 = 1/2 (gold 'b', B says 'a')
    # |d* - d| >= |d|: only the third (0): p = (1 + 1) / (1 + 4)
    assert r.p_value == pytest.approx(2 / 5)
    assert r.n_resamples == 4


def test_paired_bootstrap_extremes():
    gold = ["a", "b", "c"] * 30
    same = paired_bootstrap(gold, gold, gold, ["a", "b", "c"], n_resamples=200)
    assert same.delta == 0 and same.p_value == 1.0
    wrong = ["b", "c", "a"] * 30
    clear = paired_bootstrap(gold, gold, wrong, ["a", "b", "c"], n_resamples=200)
    assert clear.delta == pytest.approx(1.0)
    assert clear.p_value == pytest.approx(1 / 201)  # no resample is as far from δ as 0 is
    assert clear.ci[0] > 0.9


def test_paired_bootstrap_is_deterministic_and_antisymmetric():
    rng = np.random.default_rng(1)
    labels = ["a", "b", "c"]
    gold = rng.choice(labels, 80).tolist()
    a = [g if rng.random() < 0.7 else rng.choice(labels) for g in gold]
    b = [g if rng.random() < 0.5 else rng.choice(labels) for g in gold]
    first = paired_bootstrap(gold, a, b, labels, seed=3)
    assert first == paired_bootstrap(gold, a, b, labels, seed=3)
    swapped = paired_bootstrap(gold, b, a, labels, seed=3)
    assert swapped.delta == pytest.approx(-first.delta)
    assert swapped.p_value == pytest.approx(first.p_value)
    assert first.delta == pytest.approx(macro_f1(gold, a, labels) - macro_f1(gold, b, labels))


def test_seed_average_of_identical_lists_is_the_interval_of_one():
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    gold = rng.choice(labels, 60).tolist()
    pred = [g if rng.random() < 0.6 else rng.choice(labels) for g in gold]
    assert bootstrap_ci(gold, [pred, pred], labels, n_resamples=300, seed=4) == \
        bootstrap_ci(gold, pred, labels, n_resamples=300, seed=4)


def test_resampled_macro_f1_averages_over_seeds():
    gold = ["a", "b"]
    draws = np.array([[0, 1]])
    one = resampled_macro_f1(gold, ["a", "b"], labels=["a", "b"], draws=draws)[0, 0]  # 1.0
    other = resampled_macro_f1(gold, ["a", "a"], labels=["a", "b"], draws=draws)[0, 0]  # (2/3 + 0) / 2
    assert (one, round(other, 6)) == (1.0, round(1 / 3, 6))
    both = resampled_macro_f1(gold, [["a", "b"], ["a", "a"]], labels=["a", "b"], draws=draws)[0, 0]
    assert both == pytest.approx((1 + 1 / 3) / 2)


def test_paired_bootstrap_scores_both_systems_on_the_same_resamples():
    # with A == B every resampled delta is exactly 0: the two were drawn on the same comments
    rng = np.random.default_rng(5)
    labels = ["a", "b", "c"]
    gold = rng.choice(labels, 200).tolist()
    pred = rng.choice(labels, 200).tolist()
    scores = resampled_macro_f1(gold, pred, list(pred), labels=labels, n_resamples=100, seed=1)
    assert scores.shape == (2, 100) and (scores[0] == scores[1]).all() and scores[0].std() > 0


def test_lengths_must_match():
    with pytest.raises(ValueError, match="3 gold labels but 2 predictions"):
        mcnemar(["a", "b", "a"], ["a", "b"], ["a", "b", "a"])
    with pytest.raises(ValueError, match="3 gold labels but 2 predictions"):
        paired_bootstrap(["a", "b", "a"], ["a", "b"], ["a", "b", "a"], ["a", "b"], n_resamples=10)
