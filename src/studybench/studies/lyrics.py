"""The lyrics study: the one place that wires data, models and run records together.

:func:`run_lyrics` trains and tests every (model x features x seed) combination
and returns the table of test accuracy and macro-F1 (mean +- std over seeds);
:func:`evaluate_run` scores a finished run on another labelled file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studybench import registry
from studybench.config import (
    LyricsConfig,
    apply_overrides,
    from_dict,
    json_ready,
    split_overrides,
    to_dict,
)
from studybench.data.cleaning import CleaningReport, clean_frame
from studybench.data.lyrics import LyricsFile, read_lyrics
from studybench.data.splits import LyricsSplit, check_known_labels, make_split
from studybench.errors import StudybenchError
from studybench.evaluation.metrics import classification_metrics
from studybench.records import (
    RunWriter,
    config_hash,
    environment,
    file_digest,
    read_json,
    record_plan,
    write_csv,
    write_json,
)
from studybench.studies.common import (
    check_model_overrides,
    checkpoint_path,
    parse_list,
    parse_seeds,
    seed_everything,
)
from studybench.studies.results import collect_results, summarize

FEATURE_SETS = ("lyrics", "lyrics+artist")


@dataclass(frozen=True)
class LoadedData:
    """A cleaned lyrics file and what cleaning did to it."""

    file: LyricsFile
    frame: pd.DataFrame
    report: CleaningReport
    digest: str

    def summary_line(self) -> str:
        """One line for the user: what was read and what cleaning dropped."""
        r = self.report
        return (f"{Path(self.file.path).name}: {r.rows_in:,} songs (schema {self.file.schema}) -> "
                f"{r.rows_out:,} after cleaning ({r.dropped_empty} empty, {r.dropped_missing_label} "
                f"without genre, {r.dropped_duplicates} duplicate lyrics dropped)")

    def describe(self) -> dict[str, Any]:
        return {"path": self.file.path, "schema": self.file.schema, "sha256": self.digest,
                "rows": len(self.file.frame), "cleaning": vars(self.report)}


def load_clean(path: str | Path, config: LyricsConfig) -> LoadedData:
    """Read any supported schema, then clean with ``config.clean``."""
    file = read_lyrics(path, config.data)
    frame, report = clean_frame(file.frame, config.clean)
    if frame.empty:
        raise StudybenchError(f"{path}: no songs left after cleaning (all lyrics empty)")
    return LoadedData(file, frame, report, file_digest(path))


def run_lyrics(
    data: str | Path,
    test_data: str | Path | None = None,
    models: str | Sequence[str] | None = None,
    features: str | Sequence[str] = FEATURE_SETS,
    split: str | None = None,
    seeds: str | Sequence[int] = (0,),
    preset: str = "tuned",
    overrides: dict[str, Any] | None = None,
    out: str | Path = "runs/lyrics",
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    tracker=None,
) -> pd.DataFrame:
    """Train and test every (model x features x seed); return the summary table.

    Finished runs already in ``out`` are reused, not recomputed. ``overrides`` are
    dotted keys as given to ``--set`` (``model.*`` keys go to the models that have them).
    ``tracker`` (e.g. :class:`studybench.tracking.MlflowTracker`) gets every finished run folder.
    """
    run_over, model_over = split_overrides(dict(overrides or {}))
    if split is not None:
        run_over["split.kind"] = split
    elif "split.kind" not in run_over:
        run_over["split.kind"] = "file" if test_data else "random"
    config: LyricsConfig = apply_overrides(LyricsConfig(), run_over)
    kind = config.split.kind
    if kind not in ("random", "artist", "file"):
        raise StudybenchError(f"--split {kind}: unknown split kind (known: random, artist, file)")
    if kind == "file" and not test_data:
        raise StudybenchError("--split file needs --test-data FILE")
    if test_data and kind != "file":
        raise StudybenchError(f"--test-data is used only with --split file (got --split {kind})")
    names = parse_list(models, "models") if models else registry.names("lyrics")
    specs = [registry.get(n) for n in names]
    for spec in specs:
        if spec.study != "lyrics":
            raise StudybenchError(f"model {spec.name!r} belongs to the {spec.study} study, not lyrics")
    check_model_overrides(specs, model_over)
    feature_sets = parse_list(features, "features")
    for fs in feature_sets:
        if fs not in FEATURE_SETS:
            raise StudybenchError(f"--features {fs}: unknown feature set (known: {', '.join(FEATURE_SETS)})")
    seed_list = parse_seeds(seeds)
    if preset not in registry.PRESETS:
        raise StudybenchError(f"--preset {preset}: unknown preset (known: {', '.join(registry.PRESETS)})")
    params = {spec.name: spec.resolve(preset, {k: v for k, v in model_over.items() if spec.knows(k)})
              for spec in specs}

    train_data = load_clean(data, config)
    test_loaded = load_clean(test_data, config) if test_data else None
    for loaded in filter(None, (train_data, test_loaded)):
        if log:
            log(loaded.summary_line())
    if "lyrics+artist" in feature_sets and not train_data.file.has_artist:
        raise StudybenchError(f"{data}: --features lyrics+artist needs an artist column; this file has none")
    if log and "lyrics+artist" in feature_sets and kind != "random":
        undropped = [n for n, p in params.items() if getattr(p, "artist_dropout", None) == 0]
        if undropped:
            log(f"note: {', '.join(undropped)} train +artist without artist dropout (the seed preset has none; "
                f"the study had no artist input). Test artists are unknown on the {kind} split, so their "
                "+artist scores rest on an untrained artist bucket; --set model.artist_dropout=0.5 fixes this.")

    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    jobs = []
    for seed in seed_list:
        for spec in specs:
            for fs in feature_sets:
                record = {
                    "study": "lyrics", "model": spec.name, "features": fs, "preset": preset, "seed": seed,
                    "params": to_dict(params[spec.name]), "config": to_dict(config),
                    "data": train_data.digest, "test_data": test_loaded.digest if test_loaded else None,
                }
                run_id = f"{spec.name}.{fs}.{preset}.{kind}.s{seed}-{config_hash(record)}"
                jobs.append((seed, spec, record, run_id))
    run_ids = [job[-1] for job in jobs]
    record_plan(out, run_ids)
    splits = {}
    for i, (seed, spec, record, run_id) in enumerate(jobs):
        if progress:
            progress(run_id, i, len(jobs))
        run_dir = out / "runs" / run_id
        if run_dir.is_dir():
            if tracker:
                tracker.log_run(run_dir)  # finished earlier; logged unless it was then
            continue  # finished earlier: a run folder exists only once complete
        if seed not in splits:
            test_frame = test_loaded.frame if test_loaded else None
            splits[seed] = make_split(train_data.frame, config.split, seed, test_frame, str(data))
        report = None
        if progress:
            def report(row, run_id=run_id, i=i):  # epoch-level progress for neural runs
                progress(f"{run_id} · epoch {row['epoch']}/{row['max_epochs']} · val macro-F1 "
                         f"{row.get('val_macro_f1', float('nan')):.3f}", i, len(jobs))
        _execute(run_dir, run_id, record, spec, params[spec.name], splits[seed], train_data, test_loaded,
                 report)
        if tracker:
            tracker.log_run(run_dir)
        write_csv(out / "results.csv", collect_results(out))  # kept current if interrupted
    if progress:
        progress("", len(jobs), len(jobs))
    everything = collect_results(out)
    write_csv(out / "results.csv", everything)
    mine = everything.set_index("run_id").loc[run_ids].reset_index()  # this command's runs, in order
    return summarize(mine)


def _execute(run_dir: Path, run_id: str, record: dict, spec: registry.ModelSpec, params: Any,
             split: LyricsSplit, train_data: LoadedData, test_data: LoadedData | None,
             on_epoch: Callable[[dict], None] | None = None) -> None:
    seed_everything(record["seed"])
    model = spec.build(params, record["features"], record["seed"])
    if hasattr(model, "on_epoch"):
        model.on_epoch = on_epoch
    started = time.perf_counter()
    if model.kind == "torch":  # neural: save every epoch, resume after an interruption
        selection = model.fit(split.train, split.val, checkpoint=checkpoint_path(run_dir))
    else:
        selection = model.fit(split.train, split.val)
    # a resumed run also counts the training time of its interrupted attempts
    fit_seconds = time.perf_counter() - started + selection.get("seconds_before_resume", 0.0)
    scores, score_kind, predicted, predict_seconds = _predict(model, split.test)
    classes = model.classes_
    metrics = classification_metrics(split.test["label"], predicted, sorted(set(classes) | set(split.test["label"])))
    with RunWriter(run_dir) as tmp:
        write_json(tmp / "config.json", {
            **record, "run_id": run_id,
            "data": train_data.describe(), "test_data": test_data.describe() if test_data else None,
            "artifact": {"kind": model.kind, "file": model.save(tmp)}, "classes": classes,
        })
        if getattr(model, "history_", None):
            write_csv(tmp / "history.csv", pd.DataFrame(model.history_))
        write_json(tmp / "split.json", split.summary())
        predictions = split.test[["row", "song", "artist", "label"]].assign(predicted=predicted)
        score_cols = pd.DataFrame(scores, columns=[f"score:{c}" for c in classes])
        write_csv(tmp / "predictions.csv", pd.concat([predictions, score_cols], axis=1))
        write_json(tmp / "environment.json", environment())
        write_json(tmp / "metrics.json", {
            "run_id": run_id, "model": spec.name, "features": record["features"],
            "preset": record["preset"], "seed": record["seed"], "split": split.kind,
            "sizes": {"train": len(split.train), "val": len(split.val), "test": len(split.test)},
            "test": metrics, "score_kind": score_kind, "selection": json_ready(selection),
            "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
            "n_params": int(model.n_params_),
        })


def _predict(model, frame: pd.DataFrame) -> tuple[np.ndarray, str, np.ndarray, float]:
    """Scores, their kind, the top class per song and the seconds it took."""
    started = time.perf_counter()
    scores, kind = model.scores(frame)
    seconds = time.perf_counter() - started
    return scores, kind, np.asarray(model.classes_, dtype=object)[np.argmax(scores, axis=1)], seconds


def load_run_model(run_dir: str | Path):
    """The fitted model of a finished run, loaded without unrestricted unpickling."""
    from studybench.models.text.classic import ClassicModel
    from studybench.models.text.neural import NeuralTextModel

    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise StudybenchError(f"{run_dir}: not a studybench run folder (no config.json)")
    config = read_json(config_path)
    artifact = config.get("artifact", {})
    loaders = {"sklearn": ClassicModel.load, "torch": NeuralTextModel.load}
    if artifact.get("kind") not in loaders:
        raise StudybenchError(f"{run_dir}: unsupported model artifact kind {artifact.get('kind')!r}")
    return config, loaders[artifact["kind"]](run_dir / artifact["file"])


def evaluate_run(run_dir: str | Path, data: str | Path, overrides: dict[str, Any] | None = None) -> dict:
    """Score a finished lyrics run on another labelled file (any supported schema)."""
    config_json, model = load_run_model(run_dir)
    config: LyricsConfig = from_dict(LyricsConfig, config_json["config"])
    # The run's cleaning applies; the new file's schema is detected afresh unless overridden.
    config = apply_overrides(config, {"data.schema": "auto", **(overrides or {})})
    loaded = load_clean(data, config)
    check_known_labels(loaded.frame, set(model.classes_), str(data))
    _, _, predicted, seconds = _predict(model, loaded.frame)
    metrics = classification_metrics(loaded.frame["label"], predicted, model.classes_)
    return {
        "run_id": config_json["run_id"], "model": config_json["model"],
        "features": config_json["features"], "data": loaded.describe(),
        "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "metrics": metrics,
        "predict_seconds": seconds,
    }
