"""The ensemble: weights on the simplex chosen on validation scores, members from run folders,
and a saved ensemble that scores exactly as the run did."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows

from studybench.errors import StudybenchError
from studybench.models.artifacts import load_model
from studybench.models.text.ensemble import (
    EnsembleModel,
    EnsembleParams,
    choose_weights,
    fit_temperature,
    macro_f1,
    simplex,
    softmax,
)
from studybench.studies.lyrics import plan_lyrics, run_lyrics


def test_simplex_covers_every_weighting_once():
    grid = simplex(3, 0.5)
    assert len(grid) == 6  # (1,0,0) x3, (.5,.5,0) x3
    assert all(np.isclose(w.sum(), 1) and (w >= 0).all() for w in grid)
    assert len(simplex(3, 0.1)) == 66
    with pytest.raises(StudybenchError, match="model.step=0.3"):
        simplex(3, 0.3)


def test_choose_weights_prefers_the_member_that_is_right_and_even_weights_on_ties():
    y = np.array([0, 1, 2, 0, 1, 2])
    right = np.eye(3)[y] * 0.6 + 0.1
    wrong = np.eye(3)[(y + 1) % 3] * 0.6 + 0.1
    weights, score = choose_weights([wrong, right], y, 3, 0.25)
    assert score == 1.0 and weights[1] > weights[0]
    assert weights.tolist() == [0.25, 0.75]  # the most even of the perfect weightings
    same, _ = choose_weights([right, right], y, 3, 0.25)
    assert same.tolist() == [0.5, 0.5]


def test_fit_temperature_undoes_a_scale():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 3)) * 2
    y = np.array([rng.choice(3, p=p) for p in softmax(logits, 1.0)])
    t = fit_temperature(logits * 5, y)  # margins five times too large
    assert 3.5 < t < 7


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    assert macro_f1(y, p, 4) == pytest.approx(f1_score(y, p, average="macro"))


def test_members_must_be_two_different_models():
    with pytest.raises(StudybenchError, match="two or more"):
        EnsembleModel(EnsembleParams(members=("nb_logreg",)), "lyrics")
    with pytest.raises(StudybenchError, match="own member"):
        EnsembleModel(EnsembleParams(members=("nb_logreg", "ensemble")), "lyrics")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ensemble")
    return write_rows(tmp / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=30, artists_per_genre=6))


def test_plan_adds_members_and_the_ensemble_depends_on_their_runs(corpus):
    lines = []
    plan = plan_lyrics(corpus, models="ensemble", features="lyrics,lyrics+artist", split="artist", seeds="0,1",
                       overrides={"model.members": "tfidf_logreg,majority"}, log=lines.append)
    assert any("adds its members tfidf_logreg, majority" in line for line in lines)
    by_id = {job.run_id: job for job in plan.jobs}
    ensembles = [job for job in plan.jobs if job.model == "ensemble"]
    assert len(ensembles) == 4
    for job in ensembles:
        assert set(job.sources) == {"tfidf_logreg", "majority"}
        for member, run_id in job.sources.items():
            source = by_id[run_id]
            assert (source.model, source.variant, source.seed) == (member, job.variant, job.seed)
        assert plan.jobs.index(job) > max(plan.jobs.index(by_id[r]) for r in job.sources.values())
    with pytest.raises(StudybenchError, match="model.members=ensemble"):
        plan_lyrics(corpus, models="ensemble", split="artist", overrides={"model.members": "tfidf_logreg,ensemble"})


def test_ensemble_run_weights_members_on_validation_and_reloads(corpus, tmp_path):
    out = tmp_path / "out"
    run_lyrics(corpus, models="ensemble", features="lyrics+artist", split="artist", seeds="0",
               overrides={"model.members": "tfidf_logreg,tfidf_linear_svm,majority", "model.step": 0.25}, out=out)
    run = next((out / "runs").glob("ensemble.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    selection = metrics["selection"]
    assert set(selection["weights"]) == {"tfidf_logreg", "tfidf_linear_svm", "majority"}
    assert sum(selection["weights"].values()) == pytest.approx(1.0)
    assert selection["val_macro_f1"] >= max(selection["members_val_macro_f1"].values())  # a member alone is a weighting
    assert "tfidf_linear_svm" in selection["temperatures"]  # margins, made probabilities
    # the validation scores it chose on are the members' own, as saved with their runs
    svm_run = next((out / "runs").glob("tfidf_linear_svm.*"))
    val = pd.read_csv(svm_run / "val_predictions.csv")
    assert len(val) == metrics["sizes"]["val"]
    # reloaded from the run folder (exact test scores again: tests/test_bundles.py, through predict)
    config = json.loads((run / "config.json").read_text())
    assert config["artifact"] == {"kind": "ensemble", "file": "ensemble.json"}
    assert sorted(p.name for p in (run / "members").iterdir()) == ["majority", "tfidf_linear_svm", "tfidf_logreg"]
    model = load_model("ensemble", run / "ensemble.json")
    assert model.weights_ == selection["weights"] and model.classes_ == config["classes"]


def test_the_weights_do_not_change_when_the_test_rows_change(tmp_path):
    """Nothing of the test part reaches the choice: the same training file with two different
    test files (--split file) gives the same members' validation scores and the same weights."""
    rows = kaggle_train_rows(per_class=30, artists_per_genre=6)
    data = write_rows(tmp_path / "train.csv", KAGGLE_TRAIN_HEADER, rows)
    selections = []
    for name, test_rows in (("a", kaggle_train_rows(per_class=4, artists_per_genre=2)),
                            ("b", kaggle_train_rows(per_class=9, artists_per_genre=3)[::2])):
        test = write_rows(tmp_path / f"test_{name}.csv", KAGGLE_TRAIN_HEADER, test_rows)
        out = tmp_path / name
        run_lyrics(data, test_data=test, models="ensemble", features="lyrics", seeds="0",
                   overrides={"model.members": "tfidf_logreg,tfidf_linear_svm,majority", "model.step": 0.25}, out=out)
        run = next((out / "runs").glob("ensemble.*"))
        selections.append((json.loads((run / "metrics.json").read_text()), out))
    (first, out_a), (second, out_b) = selections
    assert first["sizes"]["test"] != second["sizes"]["test"]  # really other test rows
    assert first["selection"] == second["selection"]  # weights, temperatures, validation scores
    for member in ("tfidf_logreg", "tfidf_linear_svm"):
        a = pd.read_csv(next((out_a / "runs").glob(f"{member}.*")) / "val_predictions.csv")
        b = pd.read_csv(next((out_b / "runs").glob(f"{member}.*")) / "val_predictions.csv")
        pd.testing.assert_frame_equal(a, b)
