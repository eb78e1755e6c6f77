"""The lyrics study runner: run folders, results.csv, reuse, reproducibility, evaluate_run."""

from __future__ import annotations

import json
import shutil
from copy import deepcopy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows
from sklearn.metrics import accuracy_score, f1_score

from studybench.config import CleaningConfig, DataConfig
from studybench.data.cleaning import clean_frame
from studybench.data.demo import generate
from studybench.data.lyrics import read_lyrics
from studybench.errors import StudybenchError
from studybench.records import RunWriter, environment
from studybench.studies.lyrics import evaluate_run, load_run_model, run_lyrics
from studybench.runfolder import RESULT_COLUMNS as COLUMNS
from studybench.runfolder import collect_results

RUN_FILES = {"config.json", "metrics.json", "predictions.csv", "val_predictions.csv", "model.skops", "environment.json",
             "split.json"}
ARGS = dict(models="majority,tfidf_logreg", features="lyrics", seeds="0,1", preset="seed", split="random")


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder``: its mtime and bytes."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The synthetic demo corpus with 12 artists (about 220 songs), Kaggle train schema."""
    path = tmp_path_factory.mktemp("corpus") / "demo12.csv"
    generate(0, n_artists=12).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def study(corpus, tmp_path_factory):
    """One study run: 2 models x 1 feature set x 2 seeds = 4 runs."""
    out = tmp_path_factory.mktemp("study") / "out"
    calls = []
    table = run_lyrics(corpus, out=out, progress=lambda event, status: calls.append((event, deepcopy(status))),
                       **ARGS)
    return out, table, calls


def _run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in (out / "runs").iterdir() if p.is_dir())


def test_one_folder_per_run_with_every_record(study):
    out, _, _ = study
    runs = _run_dirs(out)
    assert len(runs) == 4
    assert sorted(r.name.split("-")[0] for r in runs) == [
        "majority.lyrics.seed.random.s0", "majority.lyrics.seed.random.s1",
        "tfidf_logreg.lyrics.seed.random.s0", "tfidf_logreg.lyrics.seed.random.s1"]
    for run in runs:
        assert {p.name for p in run.iterdir()} == RUN_FILES


def test_metrics_json_contents(study):
    out, _, _ = study
    for run in _run_dirs(out):
        metrics = json.loads((run / "metrics.json").read_text())
        config = json.loads((run / "config.json").read_text())
        test = metrics["test"]
        assert metrics["run_id"] == run.name == config["run_id"]
        assert metrics["model"] == config["model"] and metrics["seed"] == config["seed"]
        assert metrics["split"] == "random"
        assert metrics["seed"] in (0, 1)
        assert set(metrics["sizes"]) == {"train", "val", "test"}
        assert sum(metrics["sizes"].values()) == config["data"]["cleaning"]["rows_out"]
        assert metrics["fit_seconds"] >= 0 and metrics["predict_seconds"] >= 0
        assert test["class_names"] == ["country", "hip hop", "jazz", "pop", "rock"]
        assert set(test["per_class"]) == set(test["class_names"])
        assert sum(c["support"] for c in test["per_class"].values()) == metrics["sizes"]["test"]
        matrix = np.array(test["confusion_matrix"])
        assert matrix.shape == (5, 5) and matrix.sum() == metrics["sizes"]["test"]
        assert test["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
        assert 0 <= test["macro_f1"] <= 1


def test_metrics_agree_with_predictions_csv(study):
    out, _, _ = study
    for run in _run_dirs(out):
        metrics = json.loads((run / "metrics.json").read_text())["test"]
        predictions = pd.read_csv(run / "predictions.csv", dtype=str, keep_default_na=False)
        assert list(predictions.columns[:5]) == ["row", "song", "artist", "label", "predicted"]
        assert len(predictions) == metrics["n"]
        assert accuracy_score(predictions["label"], predictions["predicted"]) == pytest.approx(metrics["accuracy"])
        present = sorted(set(predictions["label"]))
        assert f1_score(predictions["label"], predictions["predicted"], labels=present, average="macro",
                        zero_division=0) == pytest.approx(metrics["macro_f1"])


def test_config_and_split_records(study, corpus):
    out, _, _ = study
    run = _run_dirs(out)[0]
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["path"] == str(corpus)
    assert config["data"]["schema"] == "kaggle_train"
    assert len(config["data"]["sha256"]) == 64
    assert config["config"]["split"]["kind"] == "random"
    assert config["artifact"] == {"kind": "sklearn", "file": "model.skops"}
    split = json.loads((run / "split.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert split["sizes"] == metrics["sizes"]
    assert split["kind"] == "random" and split["seed"] == metrics["seed"]
    env = json.loads((run / "environment.json").read_text())
    assert env["packages"]["scikit-learn"] and env["python"]
    assert set(env["threads"]) == {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "torch"}


def test_environment_records_the_thread_settings(monkeypatch):
    import torch  # any neural run has imported it; torch threads are recorded only then

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    threads = environment()["threads"]
    assert threads["OMP_NUM_THREADS"] == "3" and threads["MKL_NUM_THREADS"] is None
    assert threads["torch"] == torch.get_num_threads()


def test_results_csv_has_one_row_per_run(study):
    out, table, _ = study
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == COLUMNS
    assert sorted(results["run_id"]) == [r.name for r in _run_dirs(out)]
    for row in results.itertuples():
        metrics = json.loads((out / "runs" / row.run_id / "metrics.json").read_text())
        assert row.accuracy == pytest.approx(metrics["test"]["accuracy"])
        assert row.macro_f1 == pytest.approx(metrics["test"]["macro_f1"])
    # the returned summary is the mean over the two seeds
    assert table["model"].tolist() == ["majority", "tfidf_logreg"]
    assert table["seeds"].tolist() == [2, 2]
    logreg = results[results["model"] == "tfidf_logreg"]
    got = table.set_index("model").loc["tfidf_logreg"]
    assert got["macro_f1_mean"] == pytest.approx(logreg["macro_f1"].mean())
    assert got["macro_f1_std"] == pytest.approx(logreg["macro_f1"].std())


def test_tfidf_logreg_beats_the_majority_baseline(study):
    _, table, _ = study
    f1 = table.set_index("model")["macro_f1_mean"]
    assert f1["tfidf_logreg"] > f1["majority"] + 0.3


def test_progress_reports_every_run(study):
    _, _, calls = study
    ends = [(event.run_id, status.done, status.total) for event, status in calls if event.kind == "finished"]
    assert [e[1:] for e in ends] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert sorted(e[0] for e in ends) == [r.name for r in _run_dirs(study[0])]
    kinds = [event.kind for event, _ in calls]
    assert kinds[0] == "planned" and kinds[-1] == "done"
    assert kinds.count("dispatched") == kinds.count("started") == 4


def test_rerun_reuses_finished_runs(study, corpus):
    out, table, _ = study
    before = _snapshot(out / "runs")
    results_before = (out / "results.csv").read_text()
    again = run_lyrics(corpus, out=out, **ARGS)
    assert _snapshot(out / "runs") == before  # same files, bytes and mtimes: nothing recomputed
    assert (out / "results.csv").read_text() == results_before
    pd.testing.assert_frame_equal(again, table)


def test_same_seed_into_another_folder_reproduces_the_metrics(study, corpus, tmp_path):
    out, _, _ = study
    other = tmp_path / "other"
    run_lyrics(corpus, out=other, models="tfidf_logreg", features="lyrics", seeds="1", preset="seed",
               split="random")
    (run,) = _run_dirs(other)
    original = out / "runs" / run.name  # same config and data -> same run id
    assert original.is_dir()
    first = json.loads((original / "metrics.json").read_text())
    second = json.loads((run / "metrics.json").read_text())
    for key in ("test", "sizes", "selection", "score_kind"):
        assert first[key] == second[key]
    assert (original / "predictions.csv").read_bytes() == (run / "predictions.csv").read_bytes()
    assert (original / "split.json").read_bytes() == (run / "split.json").read_bytes()


def test_different_seeds_give_different_test_sets(study):
    out, _, _ = study
    tests = {}
    for run in _run_dirs(out):
        if run.name.startswith("majority"):
            seed = json.loads((run / "metrics.json").read_text())["seed"]
            tests[seed] = set(pd.read_csv(run / "predictions.csv")["row"])
    assert tests[0] != tests[1]


def _unseen_artists_file(tmp_path: Path, classes: list[str]) -> Path:
    """Songs by artists absent from training, written in the tcc_ceds schema."""
    frame = generate(1, n_artists=8)
    frame = frame[frame["Genre"].str.lower().str.replace("-", " ").isin(classes)]
    rows = [[f"Unseen {r.Artist}", r.Song, "2001", r.Genre, r.Lyrics] for r in frame.itertuples()]
    return write_rows(tmp_path / "unseen.csv", ["Artist", "Song", "Year", "Genre", "Lyrics"], rows)


def test_evaluate_run_matches_recomputation(study, tmp_path, corpus):
    out, _, _ = study
    run = next(r for r in _run_dirs(out) if r.name.startswith("tfidf_logreg"))
    _, model = load_run_model(run)
    path = _unseen_artists_file(tmp_path, model.classes_)
    result = evaluate_run(run, path)
    train_artists = set(read_lyrics(corpus).frame["artist"])
    frame, _ = clean_frame(read_lyrics(path, DataConfig()).frame, CleaningConfig())
    assert train_artists.isdisjoint(frame["artist"])
    predicted = np.asarray(model.classes_)[np.argmax(model.scores(frame)[0], axis=1)]
    truth = frame["label"].to_numpy()
    assert result["run_id"] == run.name and result["model"] == "tfidf_logreg"
    assert result["data"]["schema"] == "tcc_ceds"  # detected afresh, not the run's kaggle_train
    assert result["metrics"]["n"] == len(frame)
    assert result["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert result["macro_f1"] == pytest.approx(
        f1_score(truth, predicted, labels=sorted(set(truth)), average="macro", zero_division=0))
    assert result["accuracy"] > 0.5  # unseen artists, but the genre words still carry


def test_evaluate_run_with_an_unknown_genre_names_it(study, tmp_path):
    out, _, _ = study
    run = _run_dirs(out)[0]
    path = write_rows(tmp_path / "polka.csv", ["Artist", "Song", "Year", "Genre", "Lyrics"],
                      [["X", "s", "2000", "Polka", "accordion dance"]])
    with pytest.raises(StudybenchError, match="polka.csv: genre 'polka' \\(row 1\\) is unknown to training"):
        evaluate_run(run, path)


def test_evaluate_run_on_a_folder_that_is_not_a_run(tmp_path, corpus):
    with pytest.raises(StudybenchError, match="not a studybench run folder"):
        evaluate_run(tmp_path, corpus)


def test_partial_folder_is_not_a_run_and_gets_replaced(study, corpus, tmp_path):
    out, _, _ = study
    target = tmp_path / "out"
    # a crash left a complete-looking copy of one run, but still named .partial
    finished = next(r for r in _run_dirs(out) if r.name.startswith("majority") and r.name.split("-")[0].endswith("s0"))
    partial = target / "runs" / (finished.name + ".partial")
    shutil.copytree(finished, partial)
    (partial / "leftover.txt").write_text("from the crash")
    assert collect_results(target).empty  # not counted
    run_lyrics(corpus, out=target, models="majority", features="lyrics", seeds="0", preset="seed", split="random")
    assert not partial.exists()
    fresh = target / "runs" / finished.name
    assert {p.name for p in fresh.iterdir()} == RUN_FILES  # rebuilt, without the leftover
    results = pd.read_csv(target / "results.csv")
    assert results["run_id"].tolist() == [finished.name]


def test_run_writer_is_all_or_nothing(tmp_path):
    final = tmp_path / "runs" / "r1"
    (tmp_path / "runs" / "r1.partial").mkdir(parents=True)
    (tmp_path / "runs" / "r1.partial" / "junk").write_text("old")
    with RunWriter(final) as tmp:
        assert tmp.name == "r1.partial" and not (tmp / "junk").exists()
        (tmp / "a.txt").write_text("ok")
    assert [p.name for p in final.iterdir()] == ["a.txt"]
    assert not (tmp_path / "runs" / "r1.partial").exists()
    with pytest.raises(RuntimeError):
        with RunWriter(tmp_path / "runs" / "r2") as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("crash")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["r1"]


def test_artist_split_with_artist_features(corpus, tmp_path):
    out = tmp_path / "out"
    run_lyrics(corpus, out=out, models="majority", features="lyrics,lyrics+artist", split="artist",
               seeds="0", preset="seed")
    runs = _run_dirs(out)
    assert sorted(r.name.split(".s0-")[0] for r in runs) == [
        "majority.lyrics+artist.seed.artist", "majority.lyrics.seed.artist"]
    for run in runs:
        split = json.loads((run / "split.json").read_text())
        assert split["kind"] == "artist"
        assert split["artists_shared_train_test"] == 0 and split["artists_shared_train_val"] == 0
        predictions = pd.read_csv(run / "predictions.csv", keep_default_na=False)
        assert split["test_songs_by_known_artists"] == 0 and len(predictions) == split["sizes"]["test"]


@pytest.mark.parametrize("preset, split, overrides, noted", [
    ("seed", "artist", [], True),
    ("seed", "random", [], False),  # the random split's test artists are known
    ("seed", "artist", [("model.artist_dropout", "0.5")], False),
    ("tuned", "artist", [], False),
])
def test_artist_features_without_artist_dropout_are_flagged(corpus, tmp_path, preset, split, overrides, noted):
    lines = []
    run_lyrics(corpus, out=tmp_path / "out", models="majority,tfidf_logreg", features="lyrics+artist",
               split=split, seeds="0", preset=preset, overrides=overrides, log=lines.append)
    notes = [line for line in lines if line.startswith("note:")]
    assert len(notes) == int(noted)
    if noted:  # names the model that has no dropout, not the one without an artist branch
        assert notes[0].startswith("note: tfidf_logreg train +artist") and "model.artist_dropout=0.5" in notes[0]


def test_file_split_scores_the_test_file(corpus, tmp_path):
    test = _unseen_artists_file(tmp_path, ["country", "hip hop", "jazz", "pop", "rock"])
    out = tmp_path / "out"
    run_lyrics(corpus, test_data=test, out=out, models="majority", features="lyrics", seeds="0", preset="seed")
    (run,) = _run_dirs(out)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "file"
    cleaned, _ = clean_frame(read_lyrics(test).frame, CleaningConfig())
    assert metrics["sizes"]["test"] == len(cleaned)
    config = json.loads((run / "config.json").read_text())
    assert config["test_data"]["path"] == str(test)


@pytest.mark.parametrize("kwargs, message", [
    (dict(features="lyrics,words"), "--features words: unknown feature set"),
    (dict(seeds="0,x"), "--seeds 'x': expected whole numbers"),
    (dict(seeds=" , "), "--seeds: empty list"),
    (dict(preset="fast"), "--preset fast: unknown preset"),
    (dict(models="majority,tfidf_logrg"), "did you mean tfidf_logreg"),
    (dict(overrides={"model.nope": 1}), "--set model.nope: unknown key for majority"),
    (dict(overrides={"split.test_size": "abc"}), "--set split.test_size: expected float"),
    (dict(split="year"), "--split year: unknown split kind"),
    (dict(split="file"), "--split file needs --test-data"),
    # the split itself is made before anything is recorded (it once left a planned run behind)
    (dict(overrides={"split.test_size": "0.6", "split.val_size": "0.5"}), "leaves no training songs"),
    (dict(seeds="0,1", split="random", overrides={"split.test_size": "0.001"}), "cannot make the random split"),
])
def test_run_lyrics_input_errors_create_nothing(corpus, tmp_path, kwargs, message):
    out = tmp_path / "out"
    args = {"models": "majority", "features": "lyrics", "seeds": "0", "preset": "seed", **kwargs}
    with pytest.raises(StudybenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_lyrics(corpus, out=out, **args)
    assert not out.exists()


def test_test_data_with_a_non_file_split_is_an_error(corpus, tmp_path):
    with pytest.raises(StudybenchError, match="--test-data is used only with --split file"):
        run_lyrics(corpus, test_data=corpus, split="random", out=tmp_path / "o", models="majority")


def test_artist_features_on_a_file_without_artists(tmp_path):
    path = write_rows(tmp_path / "mlgc.csv", ["textid", "Language", "Genre", "Lyrics", "source_file"],
                      [[str(i), "en", ["Rock", "Pop"][i % 2], f"guitar road {i}", "x"] for i in range(20)])
    with pytest.raises(StudybenchError, match="lyrics\\+artist needs an artist column"):
        run_lyrics(path, out=tmp_path / "o", models="majority", features="lyrics+artist", seeds="0")


def test_all_lyrics_empty_after_cleaning(tmp_path):
    path = write_rows(tmp_path / "stop.csv", ["Artist", "Song", "Genre", "Language", "Lyrics"],
                      [["A", "1", "Rock", "en", "The and of"], ["B", "2", "Pop", "en", "!!!"]])
    with pytest.raises(StudybenchError, match="stop.csv: no songs left after cleaning"):
        run_lyrics(path, out=tmp_path / "o", models="majority", features="lyrics", seeds="0")


@pytest.mark.parametrize("seeds", ["-1", "99999999999"])
def test_out_of_range_seed_is_an_input_error(corpus, tmp_path, seeds):
    with pytest.raises(StudybenchError, match="--seeds"):
        run_lyrics(corpus, out=tmp_path / "o", models="majority", features="lyrics", seeds=seeds, preset="seed")


def test_repeated_seed_is_not_counted_twice(corpus, tmp_path):
    try:
        table = run_lyrics(corpus, out=tmp_path / "o", models="majority", features="lyrics", seeds="0,0",
                           preset="seed")
    except StudybenchError as exc:  # refusing the repeated seed is a fix too
        assert "--seeds" in str(exc)
        return
    assert table["seeds"].tolist() == [1]


# ---- defaults that follow the file (issue: honest defaults on first contact) -------------------

def _plan(path, **kwargs):
    from studybench.studies.lyrics import plan_lyrics

    notes: list[str] = []
    plan = plan_lyrics(path, models="majority", log=notes.append, **kwargs)
    return plan, notes


def test_a_file_with_artists_is_split_by_artist_unless_told_otherwise(tmp_path):
    path = write_rows(tmp_path / "songs.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows())
    plan, notes = _plan(path)
    assert {job.settings.split.kind for job in plan.jobs} == {"artist"}
    assert all(".artist.s0-" in job.run_id for job in plan.jobs)
    assert any(n.startswith("split: artist") for n in notes)
    plan, _ = _plan(path, split="random")  # the study's protocol: one flag away
    assert {job.settings.split.kind for job in plan.jobs} == {"random"}


def test_lyrics_plus_artist_on_a_shared_artist_split_is_warned_about(tmp_path):
    path = write_rows(tmp_path / "songs.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows())
    _, notes = _plan(path, split="random")
    assert any(n.startswith("warning: the random split") and "lyrics+artist" in n for n in notes)
    _, notes = _plan(path, split="random", features="lyrics")
    assert not any(n.startswith("warning:") for n in notes)
    _, notes = _plan(path, split="artist")
    assert not any(n.startswith("warning:") for n in notes)


def test_a_file_without_artists_runs_the_feature_sets_it_can_feed(tmp_path):
    rows = [[str(i), "en", r[2], r[4]] for i, r in enumerate(kaggle_train_rows())]
    path = write_rows(tmp_path / "sample.csv", ["textid", "Language", "Genre", "Lyrics"], rows)
    plan, notes = _plan(path)
    assert {job.variant for job in plan.jobs} == {"lyrics"}
    assert {job.settings.split.kind for job in plan.jobs} == {"random"}
    assert any("sample.csv has no artist column" in n for n in notes)
    with pytest.raises(StudybenchError, match="needs an artist column"):
        _plan(path, features="lyrics,lyrics+artist")  # asked for by name: still an error
