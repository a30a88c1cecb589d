"""Adapting a fitted model to a few labelled comments of a new target (a new pact).

Two pieces live here, shared by the model families and by :func:`comment_stance.training.train`
(``init=MODEL_DIR``, ``stance train --from MODEL_DIR``):

- :func:`check_adaptation_labels`: the adaptation labels must be labels the source model knows
  (a subset is fine: 16 comments of a new pact may hold no ``conditional`` one); a new label
  needs a new model, so it is refused in one line.
- :func:`adapt_linear`: the TF-IDF family's adaptation. The source model's linear classifier
  (weights ``W0``, intercepts ``b0``) is re-fitted on the new rows with an L2 penalty that pulls
  toward the *source* weights instead of toward zero::

      minimize  C * sum_i w_i * loss(x_i, y_i; W, b)  +  1/2 * ||W - W0||^2  +  1/2 * ||b - b0||^2

  This is the "prior-centred" (biased) regularization of Chelba & Acero (2006, "Adaptation of
  maximum entropy capitaliser: little data can help a lot"): with no new rows the answer is the
  source model itself, and each new row moves it only as far as the data outweighs the penalty,
  so a few labels adapt it without forgetting what the source learned. A plain warm start would
  forget: re-fitting with the usual penalty toward zero on 16 rows pulls every weight the new rows
  do not support back to zero. ``loss`` is the classifier's own: softmax cross-entropy for
  logistic regression, one-vs-rest squared hinge for the linear SVM; ``w_i`` are the "balanced"
  class weights of the new rows when the source used them. The fitted vectorizer is kept as is
  (the new pact's words that it never saw carry no weight; the character n-grams usually cover
  them).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import DataError, ModelError

#: fewer adaptation rows than this and the transformer trains on all of them, with no dev carve-out
MIN_ROWS_FOR_DEV = 200


def check_adaptation_labels(classes: Sequence[str], labels: Sequence[str], where: str = "the adaptation data") -> None:
    """Raise :class:`DataError` when ``labels`` holds a label the source model does not know.

    >>> check_adaptation_labels(["a", "b"], ["a", "a"])
    >>> check_adaptation_labels(["a", "b"], ["a", "c"])
    Traceback (most recent call last):
    ...
    comment_stance.errors.DataError: the adaptation data has the label 'c', which the source model does not know (its labels: a, b) (relabel to the source model's labels, or train a new model without --from)
    """
    known = [str(c) for c in classes]
    unknown = sorted({str(v) for v in labels} - set(known))
    if unknown:
        raise DataError(f"{where} has the label '{unknown[0]}', which the source model does not know "
                        f"(its labels: {', '.join(known)})",
                        "relabel to the source model's labels, or train a new model without --from")


def adapt_linear(clf: Any, features, labels: np.ndarray, *, C: float = 1.0, balanced: bool = True,
                 max_iter: int = 500) -> Any:
    """A copy of the fitted linear classifier ``clf`` (LogisticRegression or LinearSVC) moved
    toward ``features``/``labels`` with a penalty toward its own weights (see the module docstring).

    ``features`` is the sparse (or dense) feature matrix of the new rows, ``labels`` their labels
    (strings among ``clf.classes_``). ``clf`` itself is not changed.

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]] * 5); y = np.array(["a", "b"] * 5)
    >>> source = LogisticRegression().fit(X, y)
    >>> flipped = adapt_linear(source, X[:2], np.array(["b", "a"]), C=50.0)
    >>> source.predict(X[:2]).tolist(), flipped.predict(X[:2]).tolist()
    (['a', 'b'], ['b', 'a'])
    """
    import copy

    classes = [str(c) for c in clf.classes_]
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[str(v)] for v in labels])
    W, b = prior_centred_fit(clf.coef_, clf.intercept_, features, y, len(classes),
                             kind="hinge" if type(clf).__name__ == "LinearSVC" else "logistic",
                             C=C, balanced=balanced, max_iter=max_iter)
    adapted = copy.deepcopy(clf)
    adapted.coef_ = W.astype(clf.coef_.dtype)
    adapted.intercept_ = b.astype(np.asarray(clf.intercept_).dtype)
    return adapted


def prior_centred_fit(W0, b0, features, y: np.ndarray, n_classes: int, *, kind: str = "logistic",
                      C: float = 1.0, balanced: bool = True, max_iter: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The weights ``(W, b)`` of a linear layer moved from ``(W0, b0)`` toward the rows
    ``features`` with labels ``y`` (class indices) under the objective of the module docstring:
    the core of :func:`adapt_linear`, and of the transformer's head-only adaptation (its last
    linear layer on the frozen features that feed it). ``W0`` has one row per output: one per
    class, or a single row for a binary scikit-learn classifier (scoring class 1)."""
    from scipy.optimize import minimize
    from scipy.sparse import issparse

    if not (isinstance(C, (int, float)) and not isinstance(C, bool) and C > 0):
        raise ModelError(f"adaptation strength C={C!r} is not usable", "give a positive number such as 1.0")
    W0 = np.asarray(W0, dtype=np.float64)
    b0 = np.asarray(b0, dtype=np.float64).reshape(-1)
    m, n_features = W0.shape
    X = features.tocsr().astype(np.float64) if issparse(features) else np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    weights = np.ones(n)
    if balanced:
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        present = counts > 0
        weights = n / (present.sum() * counts[y])
    # one column per output of the classifier: K columns, or one for a binary problem (classes_[1])
    if m == 1:
        targets = (y == 1).astype(np.float64)[:, None]
    else:
        targets = np.zeros((n, m))
        targets[np.arange(n), y] = 1.0

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[:m * n_features].reshape(m, n_features)
        b = theta[m * n_features:]
        scores = np.asarray(X @ W.T) + b
        if kind == "logistic":
            full = np.column_stack([np.zeros(n), scores[:, 0]]) if m == 1 else scores
            full = full - full.max(axis=1, keepdims=True)
            log_p = full - np.log(np.exp(full).sum(axis=1, keepdims=True))
            p = np.exp(log_p)
            loss = -np.sum(weights * log_p[np.arange(n), y])
            d_full = (p - (np.eye(full.shape[1])[y])) * weights[:, None]
            d_scores = d_full[:, 1:2] if m == 1 else d_full
        else:
            signs = 2 * targets - 1
            margin = np.maximum(0.0, 1.0 - signs * scores)
            loss = np.sum(weights[:, None] * margin ** 2)
            d_scores = -2.0 * signs * margin * weights[:, None]
        dW = np.asarray(X.T @ d_scores).T if issparse(X) else d_scores.T @ X
        db = d_scores.sum(axis=0)
        dW_pen, db_pen = W - W0, b - b0
        value = C * loss + 0.5 * (np.sum(dW_pen ** 2) + np.sum(db_pen ** 2))
        grad = np.concatenate([(C * dW + dW_pen).ravel(), C * db + db_pen])
        return float(value), grad

    start = np.concatenate([W0.ravel(), b0])
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return result.x[:m * n_features].reshape(m, n_features), result.x[m * n_features:]
