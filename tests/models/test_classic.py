"""Every registered lyrics model that is not a trunk network (test_neural.py) nor an ensemble
(test_ensemble.py) x both feature sets x its presets: fit, score, save, load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import canonical_frame

from studybench import registry
from studybench.errors import StudybenchError
from studybench.models.artifacts import load_model, load_sklearn, save_sklearn
from studybench.models.text.classic import ClassicModel

GENRES = ("rock", "pop", "jazz")


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    # >= 5 songs per class in train: the seed decision tree uses 5-fold CV
    train = canonical_frame(per_class=10, artists_per_genre=3)
    val = canonical_frame(per_class=3, artist_prefix="Val").assign(row=lambda f: f["row"] + 100)
    test = pd.concat([
        canonical_frame(per_class=2, artists_per_genre=2),  # known artists
        canonical_frame(per_class=2, artist_prefix="Unseen"),  # unknown artists
    ], ignore_index=True)
    test.loc[0, "artist"] = ""  # and one song without an artist
    return train, val, test


COMBOS = [(name, features, preset)
          for name in registry.names("lyrics")
          if not hasattr(registry.get(name).build, "make_trunk")  # neural models: test_neural.py
          and name != "ensemble"  # it combines runs: test_ensemble.py
          for features in ("lyrics", "lyrics+artist")
          for preset in registry.get(name).presets]


@pytest.mark.parametrize("name, features, preset", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_build_fit_score_save_load(frames, tmp_path, name, features, preset):
    train, val, test = frames
    spec = registry.get(name)
    assert features in spec.features
    model = spec.build(spec.resolve(preset), features, 0)
    selection = model.fit(train, val)
    assert isinstance(selection, dict)
    assert model.classes_ == sorted(GENRES)
    scores, kind = model.scores(test)
    assert scores.shape == (len(test), len(GENRES))
    assert kind in ("probability", "decision_function")
    assert np.isfinite(scores).all()
    if kind == "probability":
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    path = tmp_path / model.save(tmp_path)
    assert path.is_file()
    loaded = load_model(model.kind, path)
    assert loaded.classes_ == model.classes_
    again, again_kind = loaded.scores(test)
    assert again_kind == kind
    np.testing.assert_array_equal(again, scores)
    if name != "majority":  # the lyrics carry the genre: every real model beats chance on train
        predicted = np.asarray(model.classes_)[np.argmax(model.scores(train)[0], axis=1)]
        assert (predicted == train["label"].to_numpy()).mean() > 0.6


def test_majority_predicts_the_most_frequent_training_genre(frames):
    train, val, test = frames
    train = pd.concat([train, canonical_frame(per_class=4, genres=("pop",), artist_prefix="More")],
                      ignore_index=True)
    model = registry.get("majority").build(registry.get("majority").resolve("seed"), "lyrics", 0)
    model.fit(train, val)
    scores, _ = model.scores(test)
    assert set(np.asarray(model.classes_)[np.argmax(scores, axis=1)]) == {"pop"}


def test_lyrics_only_model_ignores_the_artist(frames):
    train, val, test = frames
    spec = registry.get("tfidf_logreg")
    model = spec.build(spec.resolve("seed"), "lyrics", 0)
    model.fit(train, val)
    renamed = test.assign(artist="Somebody Else")
    np.testing.assert_array_equal(model.scores(test)[0], model.scores(renamed)[0])


def test_lyrics_plus_artist_model_uses_the_artist(frames):
    train, val, test = frames
    spec = registry.get("tfidf_logreg")
    model = spec.build(spec.resolve("seed"), "lyrics+artist", 0)
    model.fit(train, val)
    known = test.iloc[2:4]  # songs by training artists
    assert (known["artist"].isin(set(train["artist"]))).all()
    assert not np.allclose(model.scores(known)[0], model.scores(known.assign(artist="Nobody"))[0])


def test_validation_selection_records_every_candidate(frames):
    train, val, _ = frames
    spec = registry.get("tfidf_logreg")
    model = spec.build(spec.resolve("seed", {"C": [0.5, 2.0]}), "lyrics", 0)
    selection = model.fit(train, val)
    assert selection["method"] == "validation macro-F1"
    assert [t["params"] for t in selection["tried"]] == [{"C": 0.5}, {"C": 2.0}]
    assert selection["chosen"] in ({"C": 0.5}, {"C": 2.0})
    best = max(selection["tried"], key=lambda t: t["val_macro_f1"])
    assert selection["chosen"] == best["params"]


def test_seed_tree_selects_by_five_fold_cv(frames):
    train, val, _ = frames
    spec = registry.get("decision_tree")
    model = spec.build(spec.resolve("seed"), "lyrics", 0)
    selection = model.fit(train, val)
    assert selection["method"] == "5-fold CV on train"
    assert set(selection["chosen"]) == {"max_depth", "min_samples_split", "min_samples_leaf"}
    assert 0.0 <= selection["cv_accuracy"] <= 1.0


def test_tree_with_an_unknown_input_is_an_error():
    spec = registry.get("decision_tree")
    with pytest.raises(StudybenchError, match="model.input=words"):
        spec.build(spec.resolve("seed", {"input": "words"}), "lyrics", 0)


def test_load_refuses_untrusted_types(tmp_path):
    from collections import OrderedDict  # trusted prefix "collections." is fine; a Fraction is not
    from fractions import Fraction

    path = tmp_path / "odd.skops"
    save_sklearn({"x": Fraction(1, 3), "y": OrderedDict()}, path)
    with pytest.raises(StudybenchError, match="untrusted types: fractions.Fraction"):
        load_sklearn(path)


def test_load_a_non_artifact_is_an_error(tmp_path):
    path = tmp_path / "junk.skops"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(StudybenchError, match="not a readable model artifact"):
        ClassicModel.load(path)
    with pytest.raises(StudybenchError, match="model artifact not found"):
        ClassicModel.load(tmp_path / "missing.skops")


def _vocabulary(model: ClassicModel) -> set[str]:
    lyrics_branch = model.pipeline_.named_steps["features"].named_transformers_["lyrics"]
    return set(lyrics_branch.vocabulary_)


@pytest.mark.parametrize("refit", [False, True])
def test_refit_fits_again_on_train_plus_validation(frames, refit):
    train, val, test = frames
    val = val.assign(text=val["text"] + " valonlyword")
    spec = registry.get("tfidf_logreg")
    model = spec.build(spec.resolve("seed", {"refit": refit, "C": [1.0, 4.0]}), "lyrics", 0)
    selection = model.fit(train, val)
    assert ("valonlyword" in _vocabulary(model)) is refit
    assert selection.get("refit") == ("train + validation" if refit else None)
    assert selection["method"] == "validation macro-F1"  # the choice itself is still made on val
    assert model.scores(test)[0].shape == (len(test), 3)


def test_cv5_tree_is_not_refitted(frames):
    train, val, _ = frames
    spec = registry.get("decision_tree")
    model = spec.build(spec.resolve("seed", {"refit": True, "max_depth": [4], "min_samples_split": [2],
                                             "min_samples_leaf": [1, 2]}), "lyrics", 0)
    assert model.refit is False
    assert "refit" not in model.fit(train, val)
