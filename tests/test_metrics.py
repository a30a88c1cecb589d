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


def test_perfect_predictions_give_a_degenerate_interval():
    s = score(GOLD, GOLD, ["a", "b", "c"], n_resamples=200)
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
