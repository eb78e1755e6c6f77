"""The lyrics study: what is specific to it, wired into the shared run pipeline.

:func:`plan_lyrics` turns a request into jobs (every model x features x seed) without
running anything; :func:`execute_job` is one run, in whatever worker an executor chose;
:func:`run_lyrics` does both through the driver and returns the table of test accuracy
and macro-F1 (mean +- std over seeds); :func:`evaluate_run` scores a finished run on
another labelled file.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studybench import registry
from studybench.config import (
    SPLIT_KINDS,
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
from studybench.pipeline.driver import Progress, run_plan
from studybench.pipeline.executors import Executor
from studybench.pipeline.jobs import DataRef, Inputs, Job, Plan
from studybench.records import config_hash, file_digest, read_record, write_csv, write_json
from studybench.results import summarize
from studybench.runfolder import write_metrics
from studybench.studies.common import (
    check_model_overrides,
    note_emulated_bf16,
    parse_list,
    parse_seeds,
    run_params,
    seed_everything,
)

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


RUNNER = "studybench.studies.lyrics:execute_job"


def plan_lyrics(
    data: str | Path,
    test_data: str | Path | None = None,
    models: str | Sequence[str] | None = None,
    features: str | Sequence[str] | None = None,
    split: str | None = None,
    seeds: str | Sequence[int] = (0,),
    preset: str = "tuned",
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> Plan:
    """Every (model x features x seed) of the lyrics study as jobs; nothing is written.

    The files are read and cleaned here, once (their digests are part of every run id);
    each seed's split is a payload the driver makes once, before the first run starts.

    Defaults follow the file: without ``split`` the test part is ``test_data`` if given,
    else whole artists where the file names artists (the honest protocol; ``random`` is
    the study's), else random songs; without ``features``, the feature sets the file can
    feed (``lyrics+artist`` only where it has artists)."""
    run_over, model_over = split_overrides(dict(overrides or {}))
    if split is not None:
        run_over["split.kind"] = split
    chosen_kind = run_over.get("split.kind")
    if chosen_kind is None:
        run_over["split.kind"] = "file" if test_data else "random"  # until the file is read (below)
    config: LyricsConfig = apply_overrides(LyricsConfig(), run_over)
    kind = config.split.kind
    if kind not in SPLIT_KINDS:
        raise StudybenchError(f"--split {kind}: unknown split kind (known: {', '.join(SPLIT_KINDS)})")
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
    feature_sets = parse_list(features, "features") if features else list(FEATURE_SETS)
    for fs in feature_sets:
        if fs not in FEATURE_SETS:
            raise StudybenchError(f"--features {fs}: unknown feature set (known: {', '.join(FEATURE_SETS)})")
    seed_list = parse_seeds(seeds)
    if preset not in registry.PRESETS:
        raise StudybenchError(f"--preset {preset}: unknown preset (known: {', '.join(registry.PRESETS)})")
    params = {spec.name: spec.resolve(preset, {k: v for k, v in model_over.items() if spec.knows(k)})
              for spec in specs}
    specs, params = _with_members(specs, params, preset, model_over, log)
    note_emulated_bf16(params, log)
    beyond = [spec.name for spec in specs if spec.preset_for(preset) != preset]
    if beyond and log:
        log(f"note: {', '.join(beyond)} {'is' if len(beyond) == 1 else 'are'} not in the study (no {preset} "
            f"preset to reproduce): run with the tuned preset")

    train_data = load_clean(data, config)
    test_loaded = load_clean(test_data, config) if test_data else None
    for loaded in filter(None, (train_data, test_loaded)):
        if log:
            log(loaded.summary_line())
    genres = train_data.frame["label"].unique()
    if len(genres) < 2:
        raise StudybenchError(f"{data}: one genre ({genres[0]!r}) after cleaning; a genre classifier needs "
                              "at least two")
    if test_loaded is not None:  # a genre the training file lacks could only ever be scored wrong
        check_known_labels(test_loaded.frame, set(genres), f"--test-data {test_data}")
    has_artist = train_data.file.has_artist
    if chosen_kind is None and not test_data and has_artist:
        config = replace(config, split=replace(config.split, kind="artist"))
        kind = "artist"
        if log:
            log("split: artist (whole artists held out, the default for a file with artists; "
                "--split random is the study's song-level split)")
    if not features and not has_artist:
        feature_sets = [fs for fs in feature_sets if fs != "lyrics+artist"]
        if log:
            log(f"features: lyrics ({Path(str(data)).name} has no artist column, so lyrics+artist is left out)")
    if "lyrics+artist" in feature_sets and not has_artist:
        raise StudybenchError(f"{data}: --features lyrics+artist needs an artist column; this file has none")
    if log and "lyrics+artist" in feature_sets and kind == "random":
        log("warning: the random split puts songs of one artist on both sides, so lyrics+artist scores "
            "reward recognising artists (the study's leak), not genres; --split artist measures unseen artists")
    if log and "lyrics+artist" in feature_sets and kind != "random":
        undropped = [n for n, p in params.items() if getattr(p, "artist_dropout", None) == 0]
        if undropped:
            log(f"note: {', '.join(undropped)} train +artist without artist dropout (the seed preset has none; "
                f"the study had no artist input). Test artists are unknown on the {kind} split, so their "
                "+artist scores rest on an untrained artist bucket; --set model.artist_dropout=0.5 fixes this.")

    test_digest = test_loaded.digest if test_loaded else None
    context = {"data": train_data.describe(), "test_data": test_loaded.describe() if test_loaded else None}
    jobs, payloads = [], {}
    for seed in seed_list:
        # the split of one seed, shared by every model and feature set of that seed
        key = f"lyrics-split:{train_data.digest}:{test_digest}:{config_hash(to_dict(config))}:s{seed}"
        payloads[key] = functools.partial(make_split, train_data.frame, config.split, seed,
                                          test_loaded.frame if test_loaded else None, str(data),
                                          str(test_data or ""))
        run_ids: dict[tuple[str, str], str] = {}  # (model, features) -> run id, for ensembles
        for spec in specs:
            run_preset = spec.preset_for(preset)
            members = getattr(params[spec.name], "members", ())
            for fs in feature_sets:
                record = {
                    "study": "lyrics", "model": spec.name, "features": fs, "preset": run_preset, "seed": seed,
                    "params": run_params(params[spec.name]), "config": to_dict(config),
                    "data": train_data.digest, "test_data": test_digest,
                }
                if members:  # the member runs are part of what an ensemble run depends on
                    record["sources"] = {m: run_ids[(m, fs)] for m in members}
                run_id = f"{spec.name}.{fs}.{run_preset}.{kind}.s{seed}-{config_hash(record)}"
                run_ids[(spec.name, fs)] = run_id
                jobs.append(Job(run_id, "lyrics", RUNNER, spec.name, fs, run_preset, seed, record,
                                DataRef(str(data), train_data.digest), inputs=(key,),
                                sources=dict(record.get("sources", {})), params=params[spec.name],
                                settings=config, context=context,
                                cost=spec.relative_cost(run_preset, params[spec.name])))
    return Plan("lyrics", jobs, payloads)


def _with_members(specs: list, params: dict, preset: str, model_over: dict, log) -> tuple[list, dict]:
    """The grid's models with every ensemble's members added (with their own parameters) and
    the ensembles last, so each combines runs of the same split, seed and feature set."""
    combiners = [s for s in specs if getattr(params[s.name], "members", ())]
    if not combiners:
        return specs, params
    added = []
    for combiner in combiners:
        for member in params[combiner.name].members:
            spec = registry.get(member)
            if spec.study != "lyrics" or getattr(spec.resolve("tuned"), "members", ()):
                raise StudybenchError(f"--set model.members={member}: not a lyrics model an ensemble can combine")
            if member not in params:
                params[member] = spec.resolve(preset, {k: v for k, v in model_over.items() if spec.knows(k)})
                specs.append(spec)
                added.append(member)
    if added and log:
        log(f"ensemble: adds its members {', '.join(added)} to the grid (it combines their runs)")
    return [s for s in specs if s not in combiners] + combiners, params


def run_lyrics(
    data: str | Path,
    test_data: str | Path | None = None,
    models: str | Sequence[str] | None = None,
    features: str | Sequence[str] | None = None,
    split: str | None = None,
    seeds: str | Sequence[int] = (0,),
    preset: str = "tuned",
    overrides: dict[str, Any] | None = None,
    out: str | Path = "runs/lyrics",
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
    tracker=None,
    workers: int | str = 1,
    threads: int | None = None,
    ray: str | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Train and test every (model x features x seed); return the summary table.

    Finished runs already in ``out`` are reused, not recomputed. ``overrides`` are
    dotted keys as given to ``--set`` (``model.*`` keys go to the models that have them).
    ``workers``/``threads``/``ray`` choose where runs execute (see
    :func:`studybench.pipeline.executors.make_executor`; default: one at a time, here), or
    pass an ``executor``. ``progress(event, status)`` hears every run and epoch;
    ``tracker`` (e.g. :class:`studybench.tracking.MlflowTracker`) gets every finished run
    folder. Failed runs raise :class:`~studybench.pipeline.driver.StudyFailed` once the
    others are done, with the table of those in ``.result``."""
    from studybench.records import check_out_folder

    check_out_folder(out)
    plan = plan_lyrics(data, test_data, models, features, split, seeds, preset, overrides, log)
    return run_plan(plan, out, summarize, executor=executor, workers=workers, threads=threads, ray=ray,
                    progress=progress, tracker=tracker, log=log)


def execute_job(job: Job, inputs: Inputs, folder: Path, on_epoch: Callable[[dict], None] | None = None) -> None:
    """One lyrics run, in a worker: fit on the split's training part, select on validation,
    score the test part, and write the run's files into ``folder``."""
    split: LyricsSplit = inputs.payloads[job.inputs[0]]
    spec = registry.get(job.model)
    seed_everything(job.seed)
    model = spec.build(job.params, job.variant, job.seed)
    if hasattr(model, "on_epoch"):
        model.on_epoch = on_epoch
    if getattr(model, "needs_sources", False):  # an ensemble: its members' run files
        model.sources_ = dict(inputs.sources)
    started = time.perf_counter()
    if getattr(model, "resumable", False):  # neural: save every epoch, resume after an interruption
        selection = model.fit(split.train, split.val, checkpoint=inputs.checkpoint)
    else:
        selection = model.fit(split.train, split.val)
    # a resumed run also counts the training time of its interrupted attempts
    fit_seconds = time.perf_counter() - started + selection.get("seconds_before_resume", 0.0)
    # validation scores as the model had them when it was selected (before any refit on
    # train + validation): what an ensemble of this run chooses its weights on
    val_scores, val_classes = getattr(model, "val_scores_", None) or (model.scores(split.val)[0], model.classes_)
    scores, score_kind, predicted, predict_seconds = _predict(model, split.test)
    classes = model.classes_
    metrics = classification_metrics(split.test["label"], predicted, sorted(set(classes) | set(split.test["label"])))
    write_json(folder / "config.json", {
        **job.record, "run_id": job.run_id, "data": job.context["data"], "test_data": job.context["test_data"],
        "artifact": {"kind": model.kind, "file": model.save(folder)}, "classes": classes,
    })
    if getattr(model, "history_", None):
        write_csv(folder / "history.csv", pd.DataFrame(model.history_))
    write_json(folder / "split.json", split.summary())
    predictions = split.test[["row", "song", "artist", "label"]].assign(predicted=predicted)
    score_cols = pd.DataFrame(scores, columns=[f"score:{c}" for c in classes])
    write_csv(folder / "predictions.csv", pd.concat([predictions, score_cols], axis=1))
    val_cols = pd.DataFrame(val_scores, columns=[f"score:{c}" for c in val_classes])
    write_csv(folder / "val_predictions.csv", pd.concat([split.val[["row", "label"]].reset_index(drop=True),
                                                         val_cols], axis=1))
    write_metrics(
        folder, run_id=job.run_id, study="lyrics", model=job.model, preset=job.preset, seed=job.seed,
        features=job.variant, split=split.kind, task="classification",
        sizes={"train": len(split.train), "val": len(split.val), "test": len(split.test)},
        test=metrics, score_kind=score_kind, selection=json_ready(selection),
        fit_seconds=fit_seconds, predict_seconds=predict_seconds, n_params=int(model.n_params_))


def _predict(model, frame: pd.DataFrame) -> tuple[np.ndarray, str, np.ndarray, float]:
    """Scores, their kind, the top class per song and the seconds it took."""
    started = time.perf_counter()
    scores, kind = model.scores(frame)
    seconds = time.perf_counter() - started
    return scores, kind, np.asarray(model.classes_, dtype=object)[np.argmax(scores, axis=1)], seconds


def load_run_model(run_dir: str | Path):
    """The fitted model of a finished run, loaded without unrestricted unpickling."""
    from studybench.models.artifacts import LYRICS_KINDS, load_model

    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise StudybenchError(f"{run_dir}: not a studybench run folder (no config.json)")
    config = read_record(config_path, "run record", keys=("run_id", "model", "features", "config", "artifact"))
    artifact = config["artifact"] if isinstance(config["artifact"], dict) else {}
    if config.get("study", "lyrics") != "lyrics":
        raise StudybenchError(f"{run_dir}: a run of the {config.get('study')} study; evaluate scores lyrics runs")
    if artifact.get("kind") not in LYRICS_KINDS or not isinstance(artifact.get("file"), str):
        raise StudybenchError(f"{config_path}: unsupported model artifact {artifact!r}")
    return config, load_model(artifact["kind"], run_dir / artifact["file"])  # a missing file: named by its loader


def evaluate_run(run_dir: str | Path, data: str | Path, overrides: dict[str, Any] | None = None) -> dict:
    """Score a finished lyrics run on another labelled file (any supported schema)."""
    config_json, model = load_run_model(run_dir)
    try:
        config: LyricsConfig = from_dict(LyricsConfig, config_json["config"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise StudybenchError(f"{Path(run_dir) / 'config.json'}: its 'config' is not a lyrics configuration "
                              f"({exc})") from None
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
