"""Neural lyrics runs through the same runner: records, reuse of the engine, reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import neural_lyrics_models, write_glove

from studybench import registry
from studybench.data.demo import generate
from studybench.errors import StudybenchError
from studybench.studies.lyrics import evaluate_run, run_lyrics

TINY = {"train.epochs": "3", "model.max_len": "40", "model.max_words": "300"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "demo24.csv"
    generate(0, n_artists=24).to_csv(path, index=False)
    return path


def _run(corpus: Path, out: Path, **kwargs):
    args = dict(models="embedding_bag", features="lyrics,lyrics+artist", seeds="0", split="artist",
                overrides=TINY, out=out)
    args.update(kwargs)
    return run_lyrics(corpus, **args)


def test_same_command_same_seed_gives_identical_test_metrics(corpus, tmp_path):
    first = _run(corpus, tmp_path / "a")
    second = _run(corpus, tmp_path / "b")
    metrics = ["accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std"]
    pd.testing.assert_frame_equal(first[metrics], second[metrics])  # timings differ, metrics may not
    preds = [sorted((tmp_path / d / "runs").glob("embedding_bag.lyrics+artist.*"))[0] / "predictions.csv"
             for d in "ab"]
    assert preds[0].read_bytes() == preds[1].read_bytes()  # every probability, not just the summary
    other_seed = _run(corpus, tmp_path / "c", seeds="1")
    assert not other_seed[["accuracy_mean", "macro_f1_mean"]].equals(first[["accuracy_mean", "macro_f1_mean"]])


def test_neural_run_folder_has_weights_history_and_counts(corpus, tmp_path):
    _run(corpus, tmp_path / "out", features="lyrics+artist")
    (run,) = (tmp_path / "out" / "runs").iterdir()
    names = {p.name for p in run.iterdir()}
    assert {"model.safetensors", "model.json", "history.csv", "metrics.json", "predictions.csv"} <= names
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    assert {"train_loss", "val_loss", "train_macro_f1", "val_macro_f1", "lr"} <= set(history.columns)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_params"] > 1000 and metrics["selection"]["n_artists"] > 0
    assert 1 <= metrics["selection"]["best_epoch"] <= 3
    assert json.loads((run / "config.json").read_text())["artifact"] == {"kind": "torch", "file": "model.json"}


def test_evaluate_reloads_the_network_and_rescores(corpus, tmp_path):
    _run(corpus, tmp_path / "out", features="lyrics")
    (run,) = (tmp_path / "out" / "runs").iterdir()
    predictions = pd.read_csv(run / "predictions.csv")
    source = pd.read_csv(corpus)
    rows = source.iloc[predictions["row"] - 1]
    file = tmp_path / "unseen.csv"
    rows.to_csv(file, index=False)
    result = evaluate_run(run, file)
    recorded = json.loads((run / "metrics.json").read_text())["test"]
    assert result["accuracy"] == pytest.approx(recorded["accuracy"])
    assert result["macro_f1"] == pytest.approx(recorded["macro_f1"])


def test_train_keys_reach_neural_models_and_are_checked(corpus, tmp_path):
    table = _run(corpus, tmp_path / "out", features="lyrics",
                 overrides={**TINY, "train.class_weights": "balanced", "train.epochs": "1"})
    assert table["seeds"].tolist() == [1]
    with pytest.raises(StudybenchError, match="train.nope"):
        _run(corpus, tmp_path / "bad", overrides={"train.nope": "1"})
    with pytest.raises(StudybenchError, match="train.epochs"):
        _run(corpus, tmp_path / "bad", models="tfidf_logreg", overrides={"train.epochs": "1"})


def test_progress_hears_every_epoch_of_a_neural_run(corpus, tmp_path):
    calls = []
    _run(corpus, tmp_path / "out", features="lyrics", progress=lambda event, status: calls.append(
        (event, {r: (x.epoch, x.max_epochs, x.text) for r, x in status.running.items()})))
    epochs = [(event.run_id, running[event.run_id]) for event, running in calls if event.kind == "epoch"]
    assert [e[1][:2] for e in epochs] == [(1, 3), (2, 3), (3, 3)]
    assert all(run_id.startswith("embedding_bag.lyrics.tuned.artist.s0-") and text.startswith("val macro f1 0.")
               for run_id, (_, _, text) in epochs)


NEURAL = neural_lyrics_models()


@pytest.fixture(scope="module")
def every_neural_run(corpus, tmp_path_factory):
    """One tiny tuned run of every neural model x both feature sets, and the test rows."""
    out = tmp_path_factory.mktemp("every")
    words = sorted({w for text in pd.read_csv(corpus)["Lyrics"] for w in text.lower().split() if w.isalpha()})
    glove = write_glove(out / "glove.txt", words[:200])  # over the corpus's own words, 8-d
    for name in NEURAL:
        overrides = {**TINY, "train.epochs": "1", "model.max_len": "60"}
        if registry.get(name).resolve("tuned").vectors != "none":  # the tiny GloVe file, not 76 MB
            overrides.update({"model.vectors": str(glove), "model.embedding_dim": "8"})
        # the random split, so that test artists are known and the artist table is exercised
        run_lyrics(corpus, models=name, features="lyrics,lyrics+artist", seeds="0", split="random",
                   overrides=overrides, out=out / "study")
    runs = {p.name.split("-")[0]: p for p in (out / "study" / "runs").iterdir()}
    some = next(iter(runs.values()))
    rows = pd.read_csv(corpus).iloc[pd.read_csv(some / "predictions.csv")["row"] - 1]
    rows.to_csv(out / "test_rows.csv", index=False)
    return runs, out / "test_rows.csv"


@pytest.mark.parametrize("features", ["lyrics", "lyrics+artist"])
@pytest.mark.parametrize("name", NEURAL)
def test_every_neural_model_reloads_and_rescores_its_test_set(every_neural_run, name, features):
    """`studybench evaluate` on each model x feature set: the network, vocabulary and artist
    table read back from the run folder give the recorded test metrics again."""
    runs, test_rows = every_neural_run
    run = runs[f"{name}.{features}.tuned.random.s0"]
    recorded = json.loads((run / "metrics.json").read_text())["test"]
    result = evaluate_run(run, test_rows)
    assert result["metrics"]["confusion_matrix"] == recorded["confusion_matrix"]  # every prediction
    assert result["accuracy"] == pytest.approx(recorded["accuracy"])
    assert result["macro_f1"] == pytest.approx(recorded["macro_f1"])
