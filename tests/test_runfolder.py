"""The run folder's schema: one metrics.json shape for both studies (format-1 files upgraded
on reading), results.csv rows of every study, and the lyrics summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from studybench.results import summarize, summarize_images
from studybench.runfolder import METRICS_KEYS, collect_results, metrics_record, read_run
from studybench.runfolder import RESULT_COLUMNS as COLUMNS


def _fake_run(runs, run_id, model, seed, accuracy, macro_f1):
    folder = runs / run_id
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "model": model, "features": "lyrics", "preset": "seed", "split": "random", "seed": seed,
        "test": {"accuracy": accuracy, "macro_f1": macro_f1},
        "sizes": {"train": 8, "val": 1, "test": 2}, "fit_seconds": 1.23456, "predict_seconds": 0.0001,
    }))
    (folder / "config.json").write_text(json.dumps({"study": "lyrics", "data": {"path": "/x/y/songs.csv"}}))
    return folder


def test_collect_results_skips_partial_and_unreadable_folders(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "b", "m", 1, 0.5, 0.4)
    _fake_run(runs, "a", "m", 0, 0.7, 0.6)
    _fake_run(runs, "c.partial", "m", 2, 0.9, 0.9)
    (runs / "d").mkdir()  # no metrics.json
    (runs / "e").mkdir()
    (runs / "e" / "metrics.json").write_text("{not json")
    (runs / "e" / "config.json").write_text("{}")
    results = collect_results(tmp_path)
    assert list(results.columns) == COLUMNS
    assert results["run_id"].tolist() == ["a", "b"]
    assert results["data"].tolist() == ["songs.csv", "songs.csv"]
    assert results["fit_seconds"].tolist() == [1.235, 1.235]
    assert collect_results(tmp_path, ["b"])["run_id"].tolist() == ["b"]


def test_summarize_mean_and_sample_std(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "z1", "zeta", 0, 0.5, 0.2)
    _fake_run(runs, "z2", "zeta", 1, 0.7, 0.4)
    _fake_run(runs, "a1", "alpha", 0, 0.9, 0.8)
    table = summarize(collect_results(tmp_path, ["z1", "z2", "a1"]))
    assert table["model"].tolist() == ["zeta", "alpha"]  # first-seen order
    zeta = table.iloc[0]
    assert zeta["seeds"] == 2
    assert zeta["accuracy_mean"] == pytest.approx(0.6)
    assert zeta["macro_f1_std"] == pytest.approx(pd.Series([0.2, 0.4]).std())
    assert table.iloc[1]["accuracy_std"] == 0.0  # one seed: std 0, not NaN


def _fake_image_run(runs, run_id, stage, seed, accuracy, arm=None):
    """A format-1 image run, as studybench wrote them before the studies shared a shape."""
    folder = runs / run_id
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "run_id": run_id, "stage": stage, "model": f"transfer:{arm}" if arm else "cnn_basic", "arm": arm,
        "fraction": 1.0, "preset": "tuned", "seed": seed, "task": "classification",
        "sizes": {"train": 40, "val": 10, "test": 20}, "test": {"accuracy": accuracy, "macro_f1": accuracy},
        "selection": {"epochs_run": 3}, "fit_seconds": 2.0, "predict_seconds": 0.1, "n_params": 100,
        "n_trainable": 90}))
    (folder / "config.json").write_text(json.dumps({"study": "images", "images": {"dataset": "cifar10"}}))
    return folder


def test_format_1_files_of_both_studies_read_as_one_shape(tmp_path):
    runs = tmp_path / "runs"
    lyrics = read_run(_fake_run(runs, "l", "m", 0, 0.5, 0.4))
    image = read_run(_fake_image_run(runs, "i", "block1", 0, 0.8))
    for run in (lyrics, image):
        assert list(run.metrics) == list(METRICS_KEYS) and run.metrics["format_version"] == 2
    assert lyrics.study == "lyrics" and lyrics.metrics["features"] == "lyrics" and lyrics.metrics["stage"] is None
    assert lyrics.metrics["task"] == "classification"
    assert image.study == "images" and image.metrics["features"] is None and image.metrics["stage"] == "block1"
    assert image.metrics["n_trainable"] == 90


def test_a_folder_with_both_studies_has_one_results_table(tmp_path):
    """A lyrics run and image runs in one --out: every row, each study's columns, and each
    study's summary of its own rows (this mix raised KeyError: 'features' once)."""
    runs = tmp_path / "runs"
    _fake_run(runs, "l0", "tfidf_logreg", 0, 0.5, 0.4)
    _fake_image_run(runs, "b0", "block1", 0, 0.8)
    _fake_image_run(runs, "t0", "transfer", 0, 0.7, arm="scratch")
    results = collect_results(tmp_path)
    assert results.set_index("run_id")["study"].to_dict() == {"b0": "images", "l0": "lyrics", "t0": "images"}
    assert results.set_index("run_id").loc["t0", "arm"] == "scratch"
    assert summarize(results)["model"].tolist() == ["tfidf_logreg"]
    block1, transfer = summarize_images(results)
    assert block1["model"].tolist() == ["cnn_basic"] and transfer["arm"].tolist() == ["scratch"]


def test_metrics_record_refuses_keys_outside_the_schema():
    with pytest.raises(TypeError, match="features2"):
        metrics_record(study="lyrics", features2="x")
    with pytest.raises(ValueError, match="study"):
        metrics_record(study="audio")
    assert metrics_record(study="images", seed=3)["features"] is None
