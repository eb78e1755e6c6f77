"""Naive-Bayes-weighted logistic regression (Wang & Manning 2012, "NBSVM" with a logistic loss).

For each genre, every feature is scaled by its Naive Bayes log-count ratio
``r = log((p / |p|_1) / (q / |q|_1))``, where ``p`` and ``q`` are the feature's smoothed
counts in the songs of that genre and in all other songs; a binary logistic regression on
the scaled features then separates that genre from the rest (one-vs-rest). The ratio is
folded into the coefficients after fitting, so the fitted model is a plain linear model
``X @ coef_.T + intercept_`` on the unscaled features: stored as two arrays, scored as fast
as any linear model. On binary bag-of-n-gram features NB scaling lets a linear model weigh
rare, genre-specific n-grams more than plain TF-IDF does.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


def nb_ratio(x, positive: np.ndarray, alpha: float) -> np.ndarray:
    """The log-count ratio of every column of ``x`` for the rows in ``positive`` against the rest."""
    p = alpha + np.asarray(x[positive].sum(axis=0)).ravel()
    q = alpha + np.asarray(x[~positive].sum(axis=0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


class NBLogisticRegression(ClassifierMixin, BaseEstimator):
    """One-vs-rest logistic regressions on NB-scaled features; probabilities normalised over
    the genres as scikit-learn does for one-vs-rest."""

    def __init__(self, C: float = 1.0, alpha: float = 1.0, class_weight: str | None = None,
                 max_iter: int = 1000, random_state: int = 0):
        self.C = C
        self.alpha = alpha
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, x, y):
        x = sparse.csr_matrix(x, dtype=np.float64)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError("NBLogisticRegression needs at least two classes")
        coef, intercept = [], []
        for c in self.classes_:
            positive = y == c
            ratio = nb_ratio(x, positive, self.alpha)
            scaled = x.multiply(ratio[None, :]).tocsr()
            scaled.sort_indices()
            binary = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter,
                                        random_state=self.random_state)
            binary.fit(scaled, positive)
            coef.append(binary.coef_[0] * ratio)  # (x * r) @ w == x @ (r * w)
            intercept.append(binary.intercept_[0])
        self.coef_ = np.vstack(coef).astype(np.float32)
        self.intercept_ = np.asarray(intercept, dtype=np.float32)
        self.n_features_in_ = x.shape[1]
        return self

    def decision_function(self, x) -> np.ndarray:
        return np.asarray(x @ self.coef_.T) + self.intercept_

    def predict_proba(self, x) -> np.ndarray:
        scores = 1.0 / (1.0 + np.exp(-self.decision_function(x).astype(np.float64)))
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, x) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(x), axis=1)]
