"""``studybench tune``: search a lyrics model's declared space with Optuna on validation macro-F1.

Each trial is an ordinary run of the lyrics study (one model, one feature set, one seed, the
chosen split), planned with the trial's parameters as ``--set`` overrides and executed by the
study's executor (in this process, on local workers or on Ray), so every trial is a run folder
under ``--out/runs`` with its records, and a rerun of the same command reuses the finished
ones. The objective is the macro-F1 on the *validation* part of the split, from the run's
``val_predictions.csv`` (the model as selected, before any refit on train + validation); the
test part is never looked at to choose, and each trial's test score is reported beside it.

Optuna's TPE sampler proposes the parameters (seeded: the same command proposes the same
trials). With several workers, trials are asked for in batches of the executor's slots and run
side by side. Neural trials are pruned by epoch in the run itself (``train.prune_below``: the
median of earlier trials' validation macro-F1 at each epoch after a warm-up, as Optuna's
MedianPruner), so pruning works on every executor. The preset the search starts from is run
too, as the trial to beat. The best parameters are written as YAML that ``--config`` accepts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studybench import registry
from studybench.errors import StudybenchError
from studybench.pipeline.jobs import Plan
from studybench.records import write_csv, write_text

STARTUP_TRIALS = 4  # finished trials needed before an epoch's median can prune (MedianPruner's 5, for 30 trials)
WARMUP_EPOCHS = 2  # never prune before this many epochs: early validation scores are noisy


@dataclass
class TuneResult:
    """The trials table, the best trial's parameters and the YAML file they were written to."""

    trials: pd.DataFrame
    best: dict[str, Any]
    best_value: float
    baseline_value: float
    yaml: Path


def suggest(trial, key: str, dimension: tuple) -> Any:
    """One value of ``dimension`` for ``key`` from an Optuna trial."""
    kind, *bounds = dimension
    if kind == "log":
        return trial.suggest_float(key, bounds[0], bounds[1], log=True)
    if kind == "float":
        return trial.suggest_float(key, bounds[0], bounds[1])
    if kind == "int":
        return trial.suggest_int(key, bounds[0], bounds[1])
    return trial.suggest_categorical(key, list(bounds[0]))


def as_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """Space keys as ``--set`` keys: ``train.*`` as they are, the rest under ``model.``."""
    return {k if k.startswith("train.") else f"model.{k}": v for k, v in params.items()}


def val_macro_f1(run: Path) -> float:
    """Macro-F1 of a finished lyrics run on its validation songs (over the model's genres)."""
    from sklearn.metrics import f1_score

    frame = pd.read_csv(run / "val_predictions.csv", keep_default_na=False)
    columns = [c for c in frame.columns if c.startswith("score:")]
    classes = [c[len("score:"):] for c in columns]
    predicted = np.asarray(classes, dtype=object)[np.argmax(frame[columns].to_numpy(), axis=1)]
    return float(f1_score(frame["label"].astype(str), predicted, labels=classes, average="macro", zero_division=0))


def epoch_curve(run: Path) -> list[float]:
    """Validation macro-F1 after each epoch of a neural run (empty for other models)."""
    path = run / "history.csv"
    if not path.is_file():
        return []
    history = pd.read_csv(path)
    return history["val_macro_f1"].tolist() if "val_macro_f1" in history else []


def thresholds(curves: list[list[float]]) -> tuple[float, ...]:
    """Per epoch, the median validation macro-F1 of the finished trials that reached it (0 where
    fewer than STARTUP_TRIALS did, and for the warm-up epochs): a trial below it stops there."""
    longest = max((len(c) for c in curves), default=0)
    out = []
    for epoch in range(longest):
        values = [c[epoch] for c in curves if len(c) > epoch]
        ready = len(values) >= STARTUP_TRIALS and epoch >= WARMUP_EPOCHS
        out.append(round(float(np.median(values)), 6) if ready else 0.0)
    while out and out[-1] == 0.0:
        out.pop()
    return tuple(out)


def _yaml(best: dict[str, Any], header: list[str]) -> str:
    import yaml

    nested: dict[str, dict[str, Any]] = {}
    for key, value in as_overrides(best).items():
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value.item() if hasattr(value, "item") else value
    return "".join(f"# {line}\n" for line in header) + yaml.safe_dump(nested, sort_keys=True)


def tune_lyrics(
    data: str | Path,
    model: str,
    features: str = "lyrics",
    split: str | None = None,
    seed: int = 0,
    trials: int = 30,
    preset: str = "tuned",
    overrides: dict[str, Any] | None = None,
    out: str | Path = "runs/tune",
    test_data: str | Path | None = None,
    executor=None,
    workers: int | str = 1,
    threads: int | None = None,
    ray: str | None = None,
    progress=None,
    log: Callable[[str], None] | None = None,
    prune: bool = True,
) -> TuneResult:
    """Run ``trials`` Optuna trials of ``model`` (plus its preset) and write ``best.yaml`` into ``out``."""
    import optuna

    from studybench.pipeline.driver import StudyFailed, execute_plan
    from studybench.pipeline.executors import make_executor
    from studybench.records import check_out_folder
    from studybench.studies.lyrics import plan_lyrics

    spec = registry.get(model)
    if spec.study != "lyrics":
        raise StudybenchError(f"tune: {model} is a model of the {spec.study} study; tune searches lyrics models")
    if not spec.space:
        raise StudybenchError(f"tune: {model} declares no search space")
    if "," in features:
        raise StudybenchError(f"--features {features}: tune searches one feature set at a time")
    if trials < 1:
        raise StudybenchError(f"--trials {trials}: expected at least 1")
    out = Path(out)
    check_out_folder(out)
    base = dict(overrides or {})
    searched = set(as_overrides(dict.fromkeys(spec.space)))
    fixed = sorted(searched & set(base))
    if fixed:
        raise StudybenchError(f"--set {fixed[0]}: searched by tune; leave it out (or tune another model)")
    neural = "train.lr" in spec.space and prune

    def plan_of(extra: dict[str, Any]) -> Plan:
        return plan_lyrics(data, test_data, model, features, split, [seed], preset, {**base, **extra})

    baseline = plan_of({})  # checks every input before anything runs
    if log:
        log(f"tune: {model} ({features}), {trials} trials of {len(spec.space)} parameters on validation "
            f"macro-F1, seed {seed}; the {spec.preset_for(preset)} preset is the trial to beat")
    owned = executor is None
    if owned:
        executor = make_executor(workers, threads, ray)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    rows, curves = [], []

    def execute(plans: list[Plan]) -> None:
        merged = Plan("lyrics", [j for p in plans for j in p.jobs], {k: v for p in plans for k, v in p.payloads.items()})
        try:
            execute_plan(merged, out, executor, progress)
        except StudyFailed:
            pass  # a failed trial is recorded in failures.json and told to Optuna as failed

    def record(number: Any, plan: Plan, params: dict[str, Any]) -> tuple[float | None, int | None]:
        run = out / "runs" / plan.jobs[0].run_id
        if not (run / "metrics.json").is_file():
            rows.append({"trial": number, "state": "failed", "run_id": run.name, **params})
            return None, None
        metrics = json.loads((run / "metrics.json").read_text())
        value, curve = val_macro_f1(run), epoch_curve(run)
        pruned = (metrics.get("selection") or {}).get("pruned_at")
        if not pruned and curve:
            curves.append(curve)
        rows.append({"trial": number, "state": "pruned" if pruned else "complete", "val_macro_f1": value,
                     "test_macro_f1": metrics["test"]["macro_f1"], "epochs": len(curve) or None,
                     "fit_seconds": metrics.get("fit_seconds"), "run_id": run.name, **params})
        return value, pruned

    try:
        execute([baseline])
        baseline_value, _ = record("preset", baseline, {})
        done = 0
        while done < trials:
            batch = [study.ask() for _ in range(min(executor.slots, trials - done))]
            plans, chosen = [], []
            for trial in batch:
                params = {key: suggest(trial, key, dim) for key, dim in spec.space.items()}
                limits = thresholds(curves) if neural else ()
                plans.append(plan_of({**as_overrides(params), **({"train.prune_below": limits} if limits else {})}))
                chosen.append(params)
            execute(plans)
            for trial, plan, params in zip(batch, plans, chosen):
                value, pruned = record(trial.number, plan, params)
                for epoch, score in enumerate(epoch_curve(out / "runs" / plan.jobs[0].run_id), start=1):
                    trial.report(score, epoch)
                if value is None:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                elif pruned:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, value)
            done += len(batch)
    finally:
        if owned:
            executor.close()
        if rows:
            write_csv(out / "trials.csv", pd.DataFrame(rows))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise StudybenchError(f"tune: no trial of {model} finished; see {out / 'failures.json'}")
    best = study.best_trial
    best_row = next(r for r in rows if r["trial"] == best.number)
    header = [f"studybench tune: the best of {trials} trials of {model} ({features}, seed {seed}, split "
              f"{baseline.jobs[0].record['config']['split']['kind']}) on validation macro-F1",
              f"validation macro-F1 {best.value:.4f} (the {spec.preset_for(preset)} preset: "
              f"{baseline_value if baseline_value is not None else float('nan'):.4f}); "
              f"test macro-F1 {best_row['test_macro_f1']:.4f}; run {best_row['run_id']}",
              f"use: studybench run lyrics --models {model} --config {out / 'best.yaml'}"]
    write_text(out / "best.yaml", _yaml(best.params, header))
    return TuneResult(pd.DataFrame(rows), dict(best.params), float(best.value),
                      float("nan") if baseline_value is None else baseline_value, out / "best.yaml")

