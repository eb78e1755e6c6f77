"""Study tables from run folders: collect_results and summarize."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from studybench.studies.results import COLUMNS, collect_results, summarize


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
