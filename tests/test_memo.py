"""Preparation made once per process: reused only for the same settings and the same songs,
and a model fitted from the cache is the model fitted without it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import canonical_frame

from studybench import memo, registry


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    monkeypatch.setenv("STUDYBENCH_PREP_CACHE", "1")
    memo.clear()
    yield
    memo.clear()


def _fit(name: str, features: str = "lyrics+artist", train=None, val=None):
    spec = registry.get(name)
    model = spec.build(spec.resolve("tuned"), features, 0)
    model.fit(canonical_frame(per_class=10) if train is None else train,
              canonical_frame(per_class=4, artist_prefix="V") if val is None else val)
    return model


def test_remember_makes_a_value_once_per_key():
    calls = []
    assert memo.remember("a", lambda: calls.append(1) or 1) == 1
    assert memo.remember("a", lambda: calls.append(2) or 2) == 1
    assert memo.remember("b", lambda: calls.append(3) or 3) == 3
    assert calls == [1, 3] and memo.stats == {"hits": 1, "misses": 2}


def test_the_key_follows_settings_and_content():
    frame = canonical_frame()
    assert memo.key("x", frame) == memo.key("x", frame.copy())
    changed = frame.copy()
    changed.loc[0, "text"] += " extra"
    assert memo.key("x", frame) != memo.key("x", changed)
    assert memo.key("x", frame, 1) != memo.key("x", frame, 2)


def test_logreg_and_svm_share_one_tfidf_and_score_as_without_it(monkeypatch):
    test = canonical_frame(per_class=3, artist_prefix="T")
    logreg = _fit("tfidf_logreg")
    misses = memo.stats["misses"]
    svm = _fit("tfidf_linear_svm")  # the same TF-IDF settings and songs: nothing featurized again
    assert memo.stats["misses"] == misses and memo.stats["hits"] >= 2
    assert svm.pipeline_["features"] is logreg.pipeline_["features"]
    cached = (logreg.scores(test)[0], svm.scores(test)[0])
    monkeypatch.setenv("STUDYBENCH_PREP_CACHE", "0")
    fresh = (_fit("tfidf_logreg").scores(test)[0], _fit("tfidf_linear_svm").scores(test)[0])
    for a, b in zip(cached, fresh):
        np.testing.assert_array_equal(a, b)


def test_other_songs_or_settings_are_prepared_anew():
    _fit("tfidf_logreg")
    misses = memo.stats["misses"]
    _fit("tfidf_logreg", train=canonical_frame(per_class=11))  # another training part
    assert memo.stats["misses"] > misses
    misses = memo.stats["misses"]
    _fit("decision_tree")  # other TF-IDF settings
    assert memo.stats["misses"] > misses


def test_neural_models_share_an_encoder_and_token_ids():
    spec = registry.get("embedding_bag")
    train, val = canonical_frame(per_class=10), canonical_frame(per_class=4, artist_prefix="V")
    first = spec.build(spec.resolve("tuned"), "lyrics", 0)
    first.prepare(train, val)
    second = spec.build(spec.resolve("tuned"), "lyrics+artist", 1)
    tensors, _ = second.prepare(train, val)
    assert second.encoder_ is first.encoder_
    ids, lengths = first.encoder_.transform(train["text"].tolist())
    assert tensors["ids"].equal(ids) and tensors["lengths"].equal(lengths)
