"""classification_metrics: accuracy beside macro-F1 over present classes, per class, confusion."""

from __future__ import annotations

import pytest

from studybench.evaluation.metrics import classification_metrics


def test_metrics_on_a_hand_checked_example():
    truth = ["rock", "rock", "pop", "pop", "jazz"]
    predicted = ["rock", "pop", "pop", "pop", "rock"]
    m = classification_metrics(truth, predicted, ["jazz", "pop", "rock"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    # F1: jazz 0, pop 2*(2/3*1)/(2/3+1) = 0.8, rock 2*(0.5*0.5)/1 = 0.5
    assert m["per_class"]["pop"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert m["per_class"]["rock"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["jazz"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == pytest.approx((0 + 0.8 + 0.5) / 3)
    assert m["n"] == 5
    assert m["class_names"] == ["jazz", "pop", "rock"]
    assert m["confusion_matrix"] == [[0, 0, 1], [0, 2, 0], [0, 1, 1]]


def test_absent_class_is_listed_but_not_averaged():
    m = classification_metrics(["rock", "pop"], ["rock", "pop"], ["jazz", "pop", "rock"])
    assert m["macro_f1"] == 1.0  # jazz is absent from the test set: no F1 to average
    assert m["per_class"]["jazz"]["support"] == 0
    assert m["confusion_matrix"][0] == [0, 0, 0]
