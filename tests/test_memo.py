"""Preparation made once per process: reused only for the same settings and the same songs,
and a model fitted from the cache is the model fitted without it."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

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
    assert calls == [1, 3] and (memo.stats["hits"], memo.stats["misses"]) == (1, 2)


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


# ---- the disk layer: entries shared by the workers of one machine ----------------------------

@pytest.fixture
def shared(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYBENCH_CACHE", str(tmp_path / "cache"))
    memo.share_on_disk(True)
    yield tmp_path / "cache" / "prep"
    memo.share_on_disk(False)


def _make_logged(log: Path, value: int = 7, pause: float = 0.0):
    def make():
        time.sleep(pause)
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        return value
    return make


INT = memo.Codec(lambda value, folder: (folder / "v.txt").write_text(str(value)),
                 lambda folder: int((folder / "v.txt").read_text()))


def test_a_value_with_a_codec_is_read_from_disk_in_another_process(shared, tmp_path):
    log = tmp_path / "made.log"
    assert memo.remember("k1", _make_logged(log), INT) == 7
    assert (shared / "k1" / "v.txt").read_text() == "7"
    memo.clear()  # as a fresh worker process
    assert memo.remember("k1", _make_logged(log, 8), INT) == 7
    assert log.read_text().count("\n") == 1 and memo.stats["disk_hits"] == 1


def test_without_sharing_nothing_goes_to_disk(shared):
    memo.share_on_disk(False)
    assert memo.remember("k2", lambda: 3, INT) == 3
    assert not (shared / "k2").exists()


def _remember_in_child(name, log, value):
    memo.clear()
    memo.share_on_disk(True)
    memo.remember(name, _make_logged(log, value, pause=1.0), INT)


def test_two_workers_needing_one_entry_make_it_once(shared, tmp_path):
    log = tmp_path / "made.log"
    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=_remember_in_child, args=("k3", log, v)) for v in (1, 2)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert log.read_text().count("\n") == 1  # the second waited on the lock, then loaded
    memo.clear()
    assert memo.remember("k3", lambda: 99, INT) in (1, 2)


def test_a_damaged_entry_is_made_again(shared, tmp_path):
    memo.remember("k4", lambda: 5, INT)
    (shared / "k4" / "v.txt").write_text("not a number")
    memo.clear()
    assert memo.remember("k4", lambda: 6, INT) == 6
    memo.clear()
    assert memo.remember("k4", lambda: 7, INT) == 6  # the remade entry replaced the damaged one


def test_the_least_recently_used_entries_go_beyond_the_size_limit(shared, monkeypatch):
    big = memo.Codec(lambda value, folder: (folder / "blob").write_bytes(b"x" * value), lambda folder: 0)
    monkeypatch.setenv("STUDYBENCH_PREP_CACHE_GB", str(2500 / 2**30))
    for i, name in enumerate(["old", "mid", "new"]):
        memo.remember(name, lambda: 1000, big)
        os.utime(shared / name, (1000 + i, 1000 + i))
    memo.clear()
    memo.remember("old", lambda: 1000, big)  # read again: now the most recently used
    memo.remember("newest", lambda: 1000, big)
    assert sorted(p.name for p in shared.iterdir() if p.is_dir()) == ["newest", "old"]


def _fit_in_child(name, cache):
    os.environ["STUDYBENCH_CACHE"] = cache
    memo.clear()
    memo.share_on_disk(True)
    _fit(name)


def test_a_tfidf_fitted_by_another_worker_is_loaded_and_scores_the_same(shared, monkeypatch):
    test = canonical_frame(per_class=3, artist_prefix="T")
    child = multiprocessing.get_context("spawn").Process(
        target=_fit_in_child, args=("tfidf_logreg", str(shared.parent)))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    memo.clear()
    svm = _fit("tfidf_linear_svm")  # its TF-IDF: the other process's, from disk
    assert memo.stats["disk_hits"] >= 1 and memo.stats["misses"] == 0
    monkeypatch.setenv("STUDYBENCH_PREP_CACHE", "0")
    fresh = _fit("tfidf_linear_svm")
    for a, b in zip(svm.scores(test), fresh.scores(test)):
        np.testing.assert_array_equal(a, b)


def test_an_encoder_and_token_ids_from_disk_equal_the_fitted_ones(shared):
    spec = registry.get("lstm")
    train, val = canonical_frame(per_class=10), canonical_frame(per_class=4, artist_prefix="V")
    first = spec.build(spec.resolve("tuned"), "lyrics", 0)
    made, _ = first.prepare(train, val)
    assert memo.stats["disk_writes"] >= 2
    memo.clear()
    second = spec.build(spec.resolve("tuned"), "lyrics", 0)
    loaded, _ = second.prepare(train, val)
    assert memo.stats["misses"] == 0 and memo.stats["disk_hits"] >= 2
    assert second.encoder_.vocabulary() == first.encoder_.vocabulary()
    for name in ("ids", "lengths"):
        assert loaded[name].equal(made[name])
    other = canonical_frame(per_class=2, artist_prefix="Z")["text"].tolist()
    assert all(a.equal(b) for a, b in zip(second.encoder_.transform(other), first.encoder_.transform(other)))
