"""SIGTERM and SIGINT during a study: the command stops at once with exit 143 / 130 and one
line saying how many runs finished, records nothing that did not finish, keeps the current
run's checkpoint, and the same command then resumes from it and completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows


@pytest.mark.parametrize("signum, code, workers", [(signal.SIGTERM, 143, "1"), (signal.SIGINT, 130, "1"),
                                                   (signal.SIGTERM, 143, "2")])
def test_a_signal_mid_training_stops_the_study_and_the_rerun_resumes(tmp_path, signum, code, workers):
    data = write_rows(tmp_path / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=20))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "studybench.cli", "run", "lyrics", "--data", str(data), "--models", "lstm",
               "--features", "lyrics", "--seeds", "0", "--split", "random", "--workers", workers,
               "--set", "train.epochs=60", "--set", "train.patience=60", "--set", "model.max_len=30",
               "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint_dir = out / "checkpoints"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:  # signal once an epoch is saved
        if checkpoint_dir.is_dir() and any(checkpoint_dir.glob("*.ckpt")):
            break
        time.sleep(0.05)
    assert process.poll() is None, "the study ended before the signal"
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the study did not stop within 60 s of the signal") from None
    assert process.returncode == code, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and "━" not in line]
    assert lines[-1] == ("interrupted: 0 of 1 runs finished; rerun the same command to resume "
                         f"({signal.Signals(signum).name})"), stderr
    assert "Traceback" not in stderr
    runs = list((out / "runs").iterdir()) if (out / "runs").is_dir() else []
    assert not runs, runs  # nothing recorded as finished, not even a .partial
    (checkpoint,) = checkpoint_dir.glob("*.ckpt")  # kept for the rerun

    # the same command resumes from the checkpoint and completes
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    (run,) = (out / "runs").iterdir()
    assert run.name == checkpoint.name[: -len(".ckpt")]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["selection"]["seconds_before_resume"] > 0  # the first attempt's epochs were kept
    assert not any(checkpoint_dir.glob("*"))  # cleaned once the run finished


def test_a_signal_outside_a_study_gives_the_same_line_and_code():
    """Any command, even one that is not running a grid (here one that only waits)."""
    code = ("import time, studybench.cli as cli\n"
            "cli.app = lambda: (print('ready', flush=True), time.sleep(60))\n"
            "cli.main()\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143
    assert stderr.strip() == "interrupted: finished runs are kept; rerun the same command to resume (SIGTERM)"
