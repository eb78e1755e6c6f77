"""NB-weighted logistic regression: the Naive Bayes ratio, the folded linear model and its
probabilities, on matrices small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from studybench.models.text.nblinear import NBLogisticRegression, nb_ratio


def _data(seed: int = 0, rows: int = 60, cols: int = 12):
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, rows)]
    x = (rng.random((rows, cols)) < 0.3).astype(np.float32)
    x[:, 0] = y == "a"  # one feature per genre that gives it away
    x[:, 1] = y == "b"
    return sparse.csr_matrix(x), y


def test_nb_ratio_is_the_smoothed_log_count_ratio():
    x = sparse.csr_matrix(np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    positive = np.array([True, True, False])
    p, q = np.array([3, 2, 2]), np.array([1, 2, 2])  # counts + alpha=1 in the positive rows / the rest
    expected = np.log((p / p.sum()) / (q / q.sum()))
    np.testing.assert_allclose(nb_ratio(x, positive, 1.0), expected)
    assert nb_ratio(x, positive, 1.0)[0] > 0 > nb_ratio(x, ~positive, 1.0)[0]


def test_folded_coefficients_score_as_the_logistic_regression_on_scaled_features():
    x, y = _data()
    model = NBLogisticRegression(C=1.0).fit(x, y)
    for i, c in enumerate(model.classes_):
        ratio = nb_ratio(x, y == c, 1.0)
        binary = LogisticRegression(C=1.0, max_iter=1000, random_state=0).fit(
            x.multiply(ratio[None, :]).tocsr(), y == c)
        np.testing.assert_allclose(model.decision_function(x)[:, i], binary.decision_function(
            x.multiply(ratio[None, :]).tocsr()), rtol=1e-4, atol=1e-4)


def test_probabilities_sum_to_one_and_the_giveaway_features_decide():
    x, y = _data(1)
    model = NBLogisticRegression(C=10.0).fit(x, y)
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(model.classes_) == ["a", "b", "c"]
    assert (model.predict(x) == y).mean() > 0.95
    assert model.coef_.dtype == np.float32 and model.coef_.shape == (3, x.shape[1])


def test_one_class_is_refused():
    x, _ = _data()
    with pytest.raises(ValueError, match="at least two classes"):
        NBLogisticRegression().fit(x, np.array(["a"] * x.shape[0]))
