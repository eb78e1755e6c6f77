"""Interrupted studies: a run killed mid-training resumes from its last epoch; a study killed
part-way finishes only what is missing, with every run once and results.csv intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
from conftest import KAGGLE_TRAIN_HEADER, canonical_frame, kaggle_train_rows, write_rows

from studybench import registry


def test_killed_study_completes_on_rerun(tmp_path):
    data = write_rows(tmp_path / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=20))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "studybench.cli", "run", "lyrics", "--data", str(data),
               "--models", "majority,embedding_bag,lstm", "--features", "lyrics", "--seeds", "0,1",
               "--set", "train.epochs=60", "--set", "train.patience=60", "--set", "model.max_len=30",
               "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints, runs = out / "checkpoints", out / "runs"
    deadline = time.monotonic() + 120
    try:  # kill once some runs are finished and a neural one is mid-training
        while time.monotonic() < deadline and process.poll() is None:
            finished = [p for p in runs.glob("*") if not p.name.endswith(".partial")] if runs.is_dir() else []
            if len(finished) >= 2 and checkpoints.is_dir() and any(checkpoints.glob("*.ckpt")):
                break
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the study ended before it could be killed"
    interrupted = [p.name[: -len(".ckpt")] for p in checkpoints.glob("*.ckpt")]
    assert interrupted, "no run was mid-training when killed"
    before = {p.name for p in runs.iterdir() if not p.name.endswith(".partial")}
    stamps = {name: (runs / name / "metrics.json").stat().st_mtime_ns for name in before}

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    after = sorted(p.name for p in runs.iterdir())
    assert len(after) == 6 and not any(name.endswith(".partial") for name in after)
    assert len({name.split("-")[0] for name in after}) == 6  # each (model, seed) exactly once
    assert all((runs / name / "metrics.json").stat().st_mtime_ns == stamps[name] for name in before)
    assert set(interrupted) <= set(after) and not list(checkpoints.glob("*"))  # resumed, then cleaned
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["run_id"]) == after and results["macro_f1"].notna().all()
    history = pd.read_csv(runs / interrupted[0] / "history.csv")
    assert history["epoch"].tolist() == list(range(1, len(history) + 1))  # no epoch lost or repeated


def test_resumed_training_equals_uninterrupted(tmp_path):
    train, val = canonical_frame(per_class=20), canonical_frame(per_class=4, artist_prefix="V")
    test = canonical_frame(per_class=3, artist_prefix="T")
    spec = registry.get("embedding_bag")
    params = spec.resolve("tuned", {"train.epochs": 5, "train.patience": 10, "max_words": 200, "max_len": 40})
    reference = spec.build(params, "lyrics", 0)
    reference.fit(train, val)

    class Stop(Exception):
        pass

    def stop_at_three(row):
        if row["epoch"] == 3:
            raise Stop

    checkpoint = tmp_path / "run.ckpt"
    first = spec.build(params, "lyrics", 0)
    first.on_epoch = stop_at_three
    started = time.perf_counter()
    try:
        first.fit(train, val, checkpoint=checkpoint)
    except Stop:
        pass
    first_attempt = time.perf_counter() - started
    assert checkpoint.is_file()
    resumed = spec.build(params, "lyrics", 0)
    result = resumed.fit(train, val, checkpoint=checkpoint)
    assert result["epochs_run"] == 5 and not checkpoint.exists()
    # the interrupted attempt's training time is carried over, not lost
    assert 0 < result["seconds_before_resume"] < first_attempt
    assert reference.fit(train, val)["seconds_before_resume"] == 0.0
    assert (resumed.scores(test)[0] == reference.scores(test)[0]).all()
    assert [h["val_loss"] for h in resumed.history_] == [h["val_loss"] for h in reference.history_]


def test_damaged_checkpoint_means_a_fresh_start(tmp_path):
    train, val = canonical_frame(per_class=10), canonical_frame(per_class=3, artist_prefix="V")
    spec = registry.get("embedding_bag")
    params = spec.resolve("tuned", {"train.epochs": 2, "max_words": 100, "max_len": 30})
    checkpoint = tmp_path / "run.ckpt"
    checkpoint.write_bytes(b"not a checkpoint")
    result = spec.build(params, "lyrics", 0).fit(train, val, checkpoint=checkpoint)
    assert result["epochs_run"] == 2 and not checkpoint.exists()
