"""What the pipeline tests share: a small grid, its corpus, and what a record must keep
whichever executor made it."""

from __future__ import annotations

import json
from pathlib import Path

from studybench.data.demo import generate

# two classical models and a short neural one, two seeds: 6 runs
GRID = dict(models="majority,tfidf_logreg,embedding_bag", features="lyrics", seeds="0,1", split="random",
            overrides={"train.epochs": "3", "model.max_len": "40"})
IMAGES = {"train.epochs": 2, "train.batch_size": 16, "model.widths": "8,16,16", "transfer.fractions": "1.0",
          "transfer.arms": "scratch,cnn_finetune,ae_frozen"}


def write_corpus(folder: Path) -> Path:
    """The synthetic demo corpus with 12 artists (about 220 songs)."""
    path = folder / "demo12.csv"
    generate(0, n_artists=12).to_csv(path, index=False)
    return path


def records(out: Path) -> dict[str, tuple]:
    """What must not depend on the executor: every run's test metrics and predictions."""
    found = {}
    for run in sorted((out / "runs").iterdir()):
        metrics = json.loads((run / "metrics.json").read_text())
        predictions = (run / "predictions.csv").read_bytes() if (run / "predictions.csv").is_file() else b""
        found[run.name] = (metrics["test"], predictions, metrics["sizes"])
    return found


def execution(out: Path) -> list[dict]:
    return [json.loads((run / "environment.json").read_text())["execution"]
            for run in sorted((out / "runs").iterdir())]


