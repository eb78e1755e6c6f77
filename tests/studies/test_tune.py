"""`studybench tune`: trials as run folders, the objective on validation only, pruning by epoch
in the run, a best.yaml that `--config` turns back into the best trial's run, and reruns that
reuse every finished trial."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import KAGGLE_TRAIN_HEADER, canonical_frame, kaggle_train_rows, write_rows
from typer.testing import CliRunner

from studybench import registry
from studybench.cli import app
from studybench.config import load_yaml_overrides
from studybench.errors import StudybenchError
from studybench.studies.lyrics import plan_lyrics
from studybench.studies.tune import (
    STARTUP_TRIALS,
    WARMUP_EPOCHS,
    thresholds,
    tune_lyrics,
    val_macro_f1,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tune")
    return write_rows(tmp / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=30, artists_per_genre=6))


def test_thresholds_are_medians_after_warm_up_and_enough_trials():
    curves = [[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.5, 0.6], [0.1, 0.2, 0.1, 0.2], [0.1, 0.2, 0.3]]
    assert thresholds(curves[:STARTUP_TRIALS - 1]) == ()  # too few finished trials: never prune
    limits = thresholds(curves)
    assert limits[:WARMUP_EPOCHS] == (0.0,) * WARMUP_EPOCHS
    assert limits[2] == pytest.approx(0.3)  # median of 0.3, 0.5, 0.1, 0.3
    assert len(limits) == 3  # epoch 4: only three trials got there


def test_a_trial_below_the_median_stops_and_says_when():
    train = canonical_frame(per_class=10, artists_per_genre=3)
    val = canonical_frame(per_class=3, artist_prefix="Val")
    spec = registry.get("embedding_bag")
    model = spec.build(spec.resolve("tuned", {"train.epochs": 6, "train.prune_below": (0.0, 0.0, 1.01)}), "lyrics", 0)
    selection = model.fit(train, val)
    assert selection["pruned_at"] == 3 and selection["epochs_run"] == 3
    unpruned = spec.build(spec.resolve("tuned", {"train.epochs": 4}), "lyrics", 0).fit(train, val)
    assert "pruned_at" not in unpruned and unpruned["epochs_run"] == 4
    with pytest.raises(StudybenchError, match="prune_below"):
        spec.build(spec.resolve("tuned", {"train.epochs": 2, "train.monitor": "val_loss",
                                          "train.prune_below": (0.5,)}), "lyrics", 0).fit(train, val)


def test_tune_writes_trials_and_a_best_yaml_that_reruns_the_best_trial(corpus, tmp_path):
    out = tmp_path / "out"
    result = tune_lyrics(corpus, "tfidf_logreg", trials=3, out=out)
    trials = pd.read_csv(out / "trials.csv")
    assert trials["trial"].tolist() == ["preset", "0", "1", "2"]
    assert set(trials["state"]) == {"complete"}
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == 4 and set(trials["run_id"]) == set(runs)
    for row in trials.itertuples():  # the objective is each run's own validation macro-F1
        assert row.val_macro_f1 == pytest.approx(val_macro_f1(out / "runs" / row.run_id))
    best = trials[trials["trial"] != "preset"].sort_values("val_macro_f1", ascending=False).iloc[0]
    assert result.best_value == pytest.approx(best["val_macro_f1"])
    text = result.yaml.read_text()
    assert text.startswith("# studybench tune") and "--config" in text
    overrides = load_yaml_overrides(result.yaml)
    assert set(overrides) == {f"model.{k}" for k in registry.get("tfidf_logreg").space}
    plan = plan_lyrics(corpus, models="tfidf_logreg", features="lyrics", seeds="0", overrides=overrides)
    assert plan.jobs[0].run_id in set(trials.loc[trials["val_macro_f1"] == result.best_value, "run_id"])
    # the same command again proposes the same trials: every run is reused, nothing is trained
    before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    again = tune_lyrics(corpus, "tfidf_logreg", trials=3, out=out)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == before
    assert again.best == result.best


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "majority"}, "declares no search space"),
    ({"model": "cnn_basic"}, "images study"),
    ({"model": "tfidf_logreg", "features": "lyrics,lyrics+artist"}, "one feature set"),
    ({"model": "tfidf_logreg", "overrides": {"model.C": 2}}, "--set model.C: searched by tune"),
    ({"model": "tfidf_logreg", "trials": 0}, "--trials 0"),
])
def test_tune_refuses_what_it_cannot_search(corpus, tmp_path, kwargs, message):
    with pytest.raises(StudybenchError, match=message):
        tune_lyrics(corpus, out=tmp_path / "out", **kwargs)
    assert not (tmp_path / "out" / "runs").exists()


def test_tune_command(corpus, tmp_path):
    result = CliRunner().invoke(app, ["tune", "nb_logreg", "--data", str(corpus), "--trials", "2", "--workers", "1",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "best validation macro-F1" in result.output and (tmp_path / "out" / "best.yaml").is_file()
    bad = CliRunner().invoke(app, ["tune", "majority", "--data", str(corpus), "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "no search space" in bad.output


def test_runs_without_pruning_keep_the_ids_they_had_before_it_existed(corpus):
    plain = plan_lyrics(corpus, models="embedding_bag", features="lyrics", seeds="0").jobs[0]
    assert "prune_below" not in plain.record["params"]["train"]  # unset: not part of the id
    pruned = plan_lyrics(corpus, models="embedding_bag", features="lyrics", seeds="0",
                         overrides={"train.prune_below": "0,0,0.5"}).jobs[0]
    assert pruned.record["params"]["train"]["prune_below"] == [0.0, 0.0, 0.5]
    assert pruned.run_id != plain.run_id
