"""Classification metrics in one JSON-ready dict: accuracy beside macro-F1, per class, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], class_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1 over ``class_names`` (rows of the
    confusion matrix are true classes, columns predicted). Classes absent from ``y_true`` still
    appear, with support 0, so runs compare column by column."""
    labels = list(class_names)
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    present = [c for c in labels if (y_true == c).any()]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # Macro over the classes that occur in this test set: an absent class has no F1 to average.
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)),
        "n": int(len(y_true)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "class_names": labels,
    }
