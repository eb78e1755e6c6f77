"""The run folder's schema: the one module that writes and reads ``metrics.json`` and knows
which files make a finished run.

Both studies write one ``metrics.json`` shape (format 2): every key is present in every
run, ``null`` where it does not apply (a lyrics run has no transfer arm, an image run no
feature set). Format-1 files, written before the two studies shared a shape, are read
and upgraded here, so no other reader tells the studies apart by guessing at keys.

A run folder is finished when it exists under ``runs/`` with a readable ``config.json``
and ``metrics.json``; ``<run>.partial`` folders are being written (or were, by a process
that died) and are never read as runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from studybench.records import write_json

METRICS_VERSION = 2
REQUIRED = ("config.json", "metrics.json")
STUDIES = ("lyrics", "images")

# Every key of a format-2 metrics.json, in the order it is written.
METRICS_KEYS = (
    "format_version", "run_id", "study", "model", "preset", "seed",
    "features",  # lyrics: lyrics | lyrics+artist; images: null
    "split",  # lyrics: random | artist | file; images: null (blocks with the official test images)
    "stage", "arm", "fraction",  # images: block1 | transfer, the transfer arm, the share of training images
    "task",  # classification | reconstruction
    "sizes", "test", "score_kind", "selection",
    "fit_seconds", "predict_seconds", "n_params", "n_trainable",
)

# Files a later run or a bundle needs to rebuild a run's model, by artifact kind.
ARTIFACT_FILES = {"sklearn": ("model.skops",), "torch": ("model.safetensors", "model.json"),
                  "torch-sentence": ("model.safetensors", "model.json"),
                  "ensemble": ("members", "ensemble.json"),  # members/: each member's model files
                  "torch-image": ("model.safetensors", "model.json")}


def metrics_record(**fields: Any) -> dict[str, Any]:
    """A format-2 ``metrics.json`` from keyword fields; a key outside the schema is a bug."""
    unknown = set(fields) - set(METRICS_KEYS)
    if unknown:
        raise TypeError(f"not metrics.json keys: {', '.join(sorted(unknown))}")
    if fields.get("study") not in STUDIES:
        raise ValueError(f"study must be one of {STUDIES}, not {fields.get('study')!r}")
    record = {key: fields.get(key) for key in METRICS_KEYS}
    record["format_version"] = METRICS_VERSION
    return record


def write_metrics(folder: str | Path, **fields: Any) -> None:
    """Write ``folder/metrics.json`` in the format-2 shape."""
    write_json(Path(folder) / "metrics.json", metrics_record(**fields))


def upgrade_metrics(metrics: dict, config: dict) -> dict:
    """Any ``metrics.json`` this studybench wrote, in the format-2 shape. Format 1 has no
    ``study`` key: ``config.json`` has always named it (lyrics runs before it did are lyrics)."""
    if metrics.get("format_version") == METRICS_VERSION:
        return metrics
    study = metrics.get("study") or config.get("study") or "lyrics"
    task = metrics.get("task") or "classification"
    fields = {key: metrics.get(key) for key in METRICS_KEYS if key != "format_version"}
    fields.update(study=study, task=task)
    return metrics_record(**fields)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Run:
    """One finished run folder, as read from disk (metrics in the format-2 shape)."""

    path: Path
    config: dict
    metrics: dict
    history: pd.DataFrame | None
    environment: dict

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def study(self) -> str:
        return self.metrics["study"]


def read_run(folder: str | Path) -> Run:
    """A finished run folder; raises ValueError naming the first missing or unreadable file."""
    folder = Path(folder)
    for name in REQUIRED:
        if not (folder / name).is_file():
            raise ValueError(f"no {name}")
    try:
        config, metrics = _read_json(folder / "config.json"), _read_json(folder / "metrics.json")
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(metrics, dict):
        raise ValueError("config.json or metrics.json is not a JSON object")
    try:
        metrics = upgrade_metrics(metrics, config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metrics.json of an unknown shape ({exc})") from None
    history = None
    if (folder / "history.csv").is_file():
        try:
            history = pd.read_csv(folder / "history.csv")
        except (OSError, ValueError, pd.errors.ParserError):
            history = None
    environment = {}
    if (folder / "environment.json").is_file():
        try:
            environment = _read_json(folder / "environment.json")
        except (OSError, ValueError):
            environment = {}
    return Run(folder, config, metrics, history, environment)


def is_finished_name(name: str) -> bool:
    """Whether a name under ``runs/`` can be a finished run (not a ``.partial`` or hidden folder)."""
    return not name.endswith(".partial") and not name.startswith(".")


def finished_runs(out: str | Path, run_ids=None) -> list[Run]:
    """Every readable finished run under ``out/runs`` (or only ``run_ids``, in that order)."""
    runs = Path(out) / "runs"
    if run_ids is not None:
        folders = [runs / r for r in run_ids]
    else:
        folders = sorted(p for p in runs.iterdir() if p.is_dir() and is_finished_name(p.name)) \
            if runs.is_dir() else []
    found = []
    for folder in folders:
        try:
            found.append(read_run(folder))
        except ValueError:
            continue  # missing or unreadable: not a finished run
    return found


def artifact_files(config: dict) -> tuple[str, ...]:
    """The files (or folders) that hold a run's model (``config.json`` aside), from its artifact kind."""
    artifact = config.get("artifact") or {}
    return ARTIFACT_FILES.get(artifact.get("kind"), ())


def expand_files(folder: Path, names: tuple[str, ...]) -> list[str]:
    """``names`` relative to ``folder`` with every folder among them replaced by the files in it;
    a missing name stays as it is (for the caller to report)."""
    found = []
    for name in names:
        path = folder / name
        if path.is_dir():
            found += [str(p.relative_to(folder)) for p in sorted(path.rglob("*")) if p.is_file()]
        else:
            found.append(name)
    return found


# --------------------------------------------------------------------------- results.csv rows

RESULT_COLUMNS = ["run_id", "study", "model", "features", "stage", "arm", "fraction", "preset", "split",
                  "seed", "task", "accuracy", "macro_f1", "mse", "psnr", "n_train", "n_val", "n_test",
                  "fit_seconds", "predict_seconds", "n_params", "n_trainable", "epochs_run", "data",
                  "trunk", "block_seed"]  # images: a transfer arm's block-1 CNN; the class-block draw


def _round(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, (int, float)) and math.isfinite(value) else value


def image_context(run: Run) -> tuple[str | None, int | None]:
    """An image run's transfer trunk (None at block 1) and class-block draw (None in records
    older than the draws)."""
    config = run.config
    images = config.get("images") or {}
    block_seed = images.get("block_seed", (config.get("config") or {}).get("block_seed"))
    return (config.get("cnn") if run.metrics["stage"] == "transfer" else None), block_seed


def result_row(run: Run) -> dict[str, Any]:
    """One row of ``results.csv`` (and of every study table) for a finished run."""
    m, config = run.metrics, run.config
    test, sizes = m.get("test") or {}, m.get("sizes") or {}
    trunk = block_seed = None
    if m["study"] == "lyrics":
        data = Path((config.get("data") or {}).get("path", "")).name
    else:
        data = str((config.get("images") or {}).get("dataset", "")) or None
        trunk, block_seed = image_context(run)
    return {
        "run_id": run.run_id, "study": m["study"], "model": m["model"], "features": m["features"],
        "stage": m["stage"], "arm": m["arm"], "fraction": m["fraction"], "preset": m["preset"],
        "split": m["split"], "seed": m["seed"], "task": m["task"], "accuracy": test.get("accuracy"),
        "macro_f1": test.get("macro_f1"), "mse": test.get("mse"), "psnr": test.get("psnr"),
        "n_train": sizes.get("train"), "n_val": sizes.get("val"), "n_test": sizes.get("test"),
        "fit_seconds": _round(m["fit_seconds"]), "predict_seconds": _round(m["predict_seconds"]),
        "n_params": m["n_params"], "n_trainable": m["n_trainable"],
        "epochs_run": (m.get("selection") or {}).get("epochs_run"), "data": data,
        "trunk": trunk, "block_seed": block_seed,
    }


def results_frame(runs: list[Run]) -> pd.DataFrame:
    """``results.csv`` as a frame: one row per run, the columns of every study."""
    return pd.DataFrame([result_row(r) for r in runs], columns=RESULT_COLUMNS)


def collect_results(out: str | Path, run_ids=None) -> pd.DataFrame:
    """One row per finished run of any study under ``out/runs`` (optionally only ``run_ids``)."""
    return results_frame(finished_runs(out, run_ids))
