"""Temperature scaling, ECE and Brier score against hand-computed values."""

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from comment_stance.calibration import (MAX_TEMPERATURE, MIN_TEMPERATURE, REVIEW_THRESHOLDS, brier_score,
                                        calibration_report, confidence_cells, confidence_summary,
                                        expected_calibration_error, fit_temperature, nll, softmax)


def test_softmax_rows_sum_to_one_and_temperature_flattens():
    logits = np.array([[2.0, 0.0, -1.0], [1000.0, 0.0, 0.0]])
    p = softmax(logits)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[1, 0] == pytest.approx(1.0)  # no overflow
    assert softmax(logits, 10.0)[0, 0] < p[0, 0]
    # the temperature divides: softmax([2 ln 3, 0] / 2) = [3, 1] / 4
    np.testing.assert_allclose(softmax(np.array([[2 * np.log(3), 0.0]]), 2.0), [[0.75, 0.25]])


def test_nll_by_hand():
    # p(true) = e^1 / (e^1 + e^0) for the first row; uniform for the second
    logits = np.array([[1.0, 0.0], [0.0, 0.0]])
    expected = (-np.log(np.e / (np.e + 1)) + np.log(2)) / 2
    assert nll(logits, np.array([0, 1])) == pytest.approx(expected)


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(20000, 3))
    true_t = 2.5
    p = softmax(logits, true_t)
    labels = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.05)


def test_fit_temperature_is_the_minimum_of_the_nll():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=4.0, size=(300, 4))
    labels = rng.integers(0, 4, size=300)
    labels[:150] = logits[:150].argmax(axis=1)  # half right: over-confident logits
    t = fit_temperature(logits, labels)
    best = nll(logits / t, labels)
    for other in (t * 0.9, t * 1.1, 1.0):
        assert best <= nll(logits / other, labels) + 1e-12


def test_fit_temperature_clips_degenerate_cases():
    right = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert fit_temperature(right, np.array([0, 1])) == MIN_TEMPERATURE  # perfectly separated
    assert fit_temperature(right, np.array([1, 0])) == MAX_TEMPERATURE  # always wrong
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0
    with pytest.raises(ValueError):
        fit_temperature(right, np.array([0, 1, 1]))


def test_ece_by_hand():
    # confidences .9 (right), .9 (wrong), .6 (right), .8 (right); 10 bins:
    # bin (.8,.9]: |.9 - .5| * 2, bin (.5,.6]: |.6 - 1|, bin (.7,.8]: |.8 - 1| -> (0.8 + 0.4 + 0.2) / 4
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    assert expected_calibration_error(proba, np.array([0, 1, 0, 1]), n_bins=10) == pytest.approx(0.35)
    # a sure and right model is perfectly calibrated
    assert expected_calibration_error(np.eye(3), np.arange(3)) == 0.0


def test_brier_by_hand():
    proba = np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    # row 1: .3^2 + .2^2 + .1^2 = .14; row 2: .5^2 + .5^2 = .5
    assert brier_score(proba, np.array([0, 1])) == pytest.approx((0.14 + 0.5) / 2)
    assert brier_score(np.eye(2), np.array([1, 0])) == pytest.approx(2.0)


def test_report_before_and_after():
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=5.0, size=(500, 3))
    labels = np.where(rng.random(500) < 0.6, logits.argmax(axis=1), rng.integers(0, 3, 500))
    t = fit_temperature(logits, labels)
    report = calibration_report(logits, labels, t)
    assert report["temperature"] == t > 1.0 and report["n"] == 500
    assert report["after"]["nll"] < report["before"]["nll"]
    assert report["after"]["ece"] < report["before"]["ece"]
    assert report["after"]["brier"] < report["before"]["brier"]
    # scaling never changes the predicted label
    assert (softmax(logits, t).argmax(axis=1) == logits.argmax(axis=1)).all()


def test_the_review_table_by_hand():
    # confidences 0.95 (right), 0.55 (wrong), 0.65 (wrong), 0.8 (right), 0.7 (right: 0.7 is not below 0.7)
    proba = np.array([[0.95, 0.05], [0.55, 0.45], [0.65, 0.35], [0.2, 0.8], [0.7, 0.3]])
    summary = confidence_summary(confidence_cells(proba, np.array([0, 1, 1, 1, 0])))
    assert (summary["n"], summary["errors"], summary["accuracy"]) == (5, 2, 0.6)
    rows = {r["below"]: r for r in summary["review"]}
    assert [(t, rows[t]["flagged"], rows[t]["errors_caught"]) for t in REVIEW_THRESHOLDS] == \
        [(0.5, 0, 0), (0.6, 1, 1), (0.7, 2, 2), (0.8, 3, 2), (0.9, 4, 2)]
    assert rows[0.7]["errors_caught_share"] == 1.0 and rows[0.7]["accuracy_unflagged"] == 1.0
    assert rows[0.5]["accuracy_unflagged"] == 0.6 and rows[0.8]["flagged_share"] == 0.6
    assert summary["mean_confidence"] == pytest.approx((0.95 + 0.55 + 0.65 + 0.8 + 0.7) / 5)


def test_no_comments_and_no_errors():
    empty = confidence_summary(confidence_cells(np.zeros((0, 3)), np.zeros(0)))
    assert empty["n"] == 0 and empty["ece"] == 0.0 and all(r["accuracy_unflagged"] is None for r in empty["review"])
    perfect = confidence_summary(confidence_cells(np.array([[0.99, 0.01]]), np.array([0])))
    assert perfect["errors"] == 0 and all(r["errors_caught_share"] == 0.0 for r in perfect["review"])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 80), st.integers(2, 4), st.integers(0, 2**32 - 1), st.booleans())
def test_the_summary_equals_the_row_by_row_computation(n, k, seed, split):
    """Cells add up: computed in two chunks or at once, the summary equals ECE, Brier and the
    ``--review-below`` counts computed on every comment directly."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k) * 0.5, size=n)
    proba[: n // 4] = np.round(proba[: n // 4], 1)  # confidences on the thresholds and bin edges too
    proba[: n // 4] /= np.maximum(proba[: n // 4].sum(axis=1, keepdims=True), 1e-12)
    labels = rng.integers(0, k, size=n)
    if split and n > 1:
        cells = confidence_cells(proba[: n // 2], labels[: n // 2]) + confidence_cells(proba[n // 2:], labels[n // 2:])
    else:
        cells = confidence_cells(proba, labels)
    summary = confidence_summary(cells)
    assert summary["ece"] == pytest.approx(expected_calibration_error(proba, labels), abs=1e-12)
    assert summary["brier"] == pytest.approx(brier_score(proba, labels), abs=1e-12)
    confidence = proba.max(axis=1)
    wrong = proba.argmax(axis=1) != labels
    for row in summary["review"]:
        flagged = confidence < row["below"]
        assert row["flagged"] == flagged.sum() and row["errors_caught"] == (wrong & flagged).sum()
