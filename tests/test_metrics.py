"""Metric values against cases worked out by hand."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from comment_stance.errors import DataError
from comment_stance.metrics import bootstrap_ci, confusion, f_avg, macro_f1, score

# Hand case: gold a a a b b c ; predicted a a b b c c
#   a: tp 2, fp 0, fn 1 -> P 1, R 2/3, F1 0.8
#   b: tp 1, fp 1, fn 1 -> P 1/2, R 1/2, F1 0.5
#   c: tp 1, fp 1, fn 0 -> P 1/2, R 1, F1 2/3
GOLD = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", "c", "c"]


def test_confusion_rows_are_gold_columns_predicted():
    assert confusion(GOLD, PRED, ["a", "b", "c"]).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_per_class_and_macro_by_hand():
    s = score(GOLD, PRED, ["a", "b", "c"], n_resamples=0)
    assert s["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert s["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert s["per_class"]["c"]["precision"] == pytest.approx(0.5)
    assert s["per_class"]["c"]["recall"] == pytest.approx(1.0)
    assert s["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["weighted_f1"] == pytest.approx((0.8 * 3 + 0.5 * 2 + 2 / 3 * 1) / 6)


def test_macro_f1_agrees_with_sklearn():
    rng = np.random.default_rng(1)
    gold = rng.choice(["x", "y", "z"], 300).tolist()
    pred = rng.choice(["x", "y", "z"], 300).tolist()
    assert macro_f1(gold, pred) == pytest.approx(f1_score(gold, pred, average="macro"))


def test_macro_f1_averages_over_the_label_set_even_a_label_never_predicted():
    # gold a a b c ; predicted a a b b: c is never predicted
    #   a: tp 2, fp 0, fn 0 -> F1 1 ; b: tp 1, fp 1, fn 0 -> P 1/2, R 1, F1 2/3 ; c: tp 0 -> F1 0
    gold, pred = ["a", "a", "b", "c"], ["a", "a", "b", "b"]
    by_hand = (1 + 2 / 3 + 0) / 3
    assert macro_f1(gold, pred) == pytest.approx(by_hand)
    assert macro_f1(gold, pred, ["a", "b", "c"]) == pytest.approx(by_hand)
    assert score(gold, pred, ["a", "b", "c"], n_resamples=0)["macro_f1"] == pytest.approx(by_hand)
    assert f1_score(gold, pred, average="macro", zero_division=0) == pytest.approx(by_hand)
    # a label of the model's set absent from gold and predictions alike still counts, with F1 0
    assert score(gold, pred, ["a", "b", "c", "d"], n_resamples=0)["macro_f1"] == pytest.approx((1 + 2 / 3) / 4)
    assert macro_f1(gold, pred, ["a", "b", "c", "d"]) == pytest.approx((1 + 2 / 3) / 4)
    # a label only predicted, never gold, is part of the default set (scikit-learn's union)
    assert macro_f1(["a", "a"], ["a", "b"]) == pytest.approx((2 / 3 + 0) / 2)


def test_f_avg_is_mean_f1_of_the_polar_pair():
    # SemEval-2016 style: F_avg = (F1_FAVOR + F1_AGAINST) / 2, NONE left out.
    gold = ["FAVOR", "FAVOR", "AGAINST", "AGAINST", "NONE", "NONE"]
    pred = ["FAVOR", "AGAINST", "AGAINST", "AGAINST", "NONE", "FAVOR"]
    # FAVOR: tp1 fp1 fn1 -> F1 0.5 ; AGAINST: tp2 fp1 fn0 -> P 2/3 R 1 F1 0.8
    labels = ["AGAINST", "FAVOR", "NONE"]
    assert f_avg(gold, pred, ["FAVOR", "AGAINST"], labels) == pytest.approx(0.65)
    assert score(gold, pred, labels, polar=["FAVOR", "AGAINST"], n_resamples=0)["f_avg"] == pytest.approx(0.65)


def test_bootstrap_interval_brackets_the_point_estimate_and_narrows_with_data():
    rng = np.random.default_rng(0)
    gold = rng.choice(["a", "b", "c"], 2000)
    pred = np.where(rng.random(2000) < 0.7, gold, rng.choice(["a", "b", "c"], 2000))
    point = macro_f1(gold.tolist(), pred.tolist())
    lo, hi = bootstrap_ci(gold.tolist(), pred.tolist(), ["a", "b", "c"], n_resamples=300)
    small_lo, small_hi = bootstrap_ci(gold[:100].tolist(), pred[:100].tolist(), ["a", "b", "c"], n_resamples=300)
    assert lo < point < hi
    assert (hi - lo) < (small_hi - small_lo)


def _row_bootstrap_ci(gold, pred, labels, n_resamples, seed):
    """The former implementation, as an independent oracle: draw n row indices per resample."""
    index = {label: i for i, label in enumerate(labels)}
    t = np.array([index[v] for v in gold])
    p = np.array([index[v] for v in pred])
    rng = np.random.default_rng(seed)
    scores = []
    for rows in rng.integers(0, len(t), size=(n_resamples, len(t))):
        f1 = []
        for c in range(len(labels)):  # F1 = 2 tp / (2 tp + fp + fn)
            tp = np.sum((t[rows] == c) & (p[rows] == c))
            wrong = np.sum((t[rows] == c) != (p[rows] == c))
            f1.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
        scores.append(np.mean(f1))
    return np.quantile(scores, 0.025), np.quantile(scores, 0.975)


def test_bootstrap_ci_matches_row_resampling_within_monte_carlo_error():
    rng = np.random.default_rng(7)
    labels = ["a", "b", "c"]
    gold = rng.choice(labels, 300, p=[0.5, 0.3, 0.2]).tolist()
    pred = [g if rng.random() < 0.65 else str(rng.choice(labels)) for g in gold]
    lo, hi = bootstrap_ci(gold, pred, labels, n_resamples=2000, seed=3)
    old_lo, old_hi = _row_bootstrap_ci(gold, pred, labels, 2000, seed=11)
    # the interval is about 0.1 wide; the Monte Carlo error of each 2.5% quantile is about 0.003
    assert (hi - lo) > 0.05
    assert lo == pytest.approx(old_lo, abs=0.012) and hi == pytest.approx(old_hi, abs=0.012)
    assert (lo, hi) == bootstrap_ci(gold, pred, labels, n_resamples=2000, seed=3)  # fixed seed, same interval


def test_bootstrap_memory_does_not_grow_with_rows_times_resamples():
    import tracemalloc

    n = 1_000_000
    rng = np.random.default_rng(0)
    gold = rng.choice(["supportive", "skeptical", "conditional"], n).tolist()
    pred = [g if r < 0.7 else "skeptical" for g, r in zip(gold, rng.random(n))]
    tracemalloc.start()
    try:
        s = score(gold, pred, ["conditional", "skeptical", "supportive"], n_resamples=1000, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # resampling row indices would hold 1000 x 1,000,000 int64 = 8 GB; the counts need a few MB
    # (the peak is the label lists copied and coded, about 40 MB)
    assert peak < 64 * 2**20
    lo, hi = s["macro_f1_ci"]
    assert lo < s["macro_f1"] < hi and hi - lo < 0.01


def test_perfect_predictions_give_a_degenerate_interval():
    # every label common enough to be in every resample (a label missing from a resample would
    # count with F1 0, as in the point estimate over a fixed label set)
    gold = ["a", "b", "c"] * 40
    s = score(gold, gold, ["a", "b", "c"], n_resamples=200)
    assert s["macro_f1"] == 1.0 and s["macro_f1_ci"] == [1.0, 1.0]


def test_per_target_breakdown():
    s = score(GOLD, PRED, ["a", "b", "c"], targets=["t1", "t1", "t1", "t2", "t2", "t2"], n_resamples=0)
    assert s["per_target"]["t1"]["accuracy"] == pytest.approx(2 / 3)
    assert s["per_target"]["t2"]["n"] == 3


def test_polar_must_name_two_known_labels():
    with pytest.raises(DataError, match="--polar"):
        score(GOLD, PRED, ["a", "b", "c"], polar=["a", "zzz"], n_resamples=0)


def test_cohen_kappa_by_hand_and_against_sklearn():
    from sklearn.metrics import cohen_kappa_score

    from comment_stance.metrics import cohen_kappa

    # observed 0.75; expected 0.5*0.25 + 0.5*0.75 = 0.5 -> kappa 0.5
    k = cohen_kappa(["x", "x", "y", "y"], ["x", "y", "y", "y"])
    assert k["overall"] == pytest.approx(0.5) and k["agreement"] == 0.75
    rng = np.random.default_rng(3)
    a = rng.choice(["p", "q", "r"], 200).tolist()
    b = [v if rng.random() < 0.7 else "q" for v in a]
    assert cohen_kappa(a, b)["overall"] == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(a, b)["per_label"]["p"] == pytest.approx(cohen_kappa_score([v == "p" for v in a], [v == "p" for v in b]))


def test_score_counts_equals_score_interval_included():
    """The distributed path (confusion counts only) gives score()'s numbers, bootstrap interval too."""
    from comment_stance.metrics import confusion, score, score_counts

    rng = np.random.default_rng(3)
    labels = ["a", "b", "c"]
    y_true = list(rng.choice(labels, 500))
    y_pred = [t if rng.random() < 0.7 else rng.choice(labels) for t in y_true]
    direct = score(y_true, y_pred, labels, n_resamples=300, seed=5)
    counted = score_counts(confusion(y_true, y_pred, labels), labels, n_resamples=300, seed=5)
    for key in ("n", "accuracy", "macro_f1", "weighted_f1", "per_class", "confusion", "macro_f1_ci"):
        assert counted[key] == direct[key], key
