"""Study-level tables built from run folders only (never from models in memory)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

COLUMNS = ["run_id", "study", "model", "features", "preset", "split", "seed", "accuracy", "macro_f1",
           "n_train", "n_val", "n_test", "fit_seconds", "predict_seconds", "n_params", "data"]


def collect_results(out: str | Path, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per finished run under ``out/runs`` (optionally only ``run_ids``, in that order)."""
    runs = Path(out) / "runs"
    folders = [runs / r for r in run_ids] if run_ids is not None else sorted(
        p for p in runs.iterdir() if p.is_dir() and not p.name.endswith(".partial"))
    rows = []
    for folder in folders:
        try:
            metrics = json.loads((folder / "metrics.json").read_text())
            config = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue  # unreadable or missing: not a finished run
        rows.append({
            "run_id": folder.name, "study": config.get("study"), "model": metrics["model"],
            "features": metrics["features"], "preset": metrics["preset"], "split": metrics["split"],
            "seed": metrics["seed"], "accuracy": metrics["test"]["accuracy"],
            "macro_f1": metrics["test"]["macro_f1"], "n_train": metrics["sizes"]["train"],
            "n_val": metrics["sizes"]["val"], "n_test": metrics["sizes"]["test"],
            "fit_seconds": round(metrics["fit_seconds"], 3),
            "predict_seconds": round(metrics["predict_seconds"], 3),
            "n_params": metrics.get("n_params"),
            "data": Path(config["data"]["path"]).name,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds per (model, features, preset, split, data file), in
    first-seen order."""
    keys = ["model", "features", "preset", "split", "data"]
    grouped = results.groupby(keys, sort=False)
    table = grouped.agg(
        seeds=("seed", "count"),
        accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        macro_f1_mean=("macro_f1", "mean"), macro_f1_std=("macro_f1", "std"),
        fit_seconds=("fit_seconds", "mean"), n_params=("n_params", "max"),
    ).reset_index()
    return table.fillna({"accuracy_std": 0.0, "macro_f1_std": 0.0})
