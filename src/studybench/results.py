"""Study tables from ``results.csv`` rows (see :func:`studybench.runfolder.results_frame`):
mean and sample std over seeds, and transfer gains paired by seed. Computed here once and
used by the end-of-run summary, the console and the report alike."""

from __future__ import annotations

import pandas as pd

LYRICS_KEYS = ["model", "features", "preset", "split", "data"]


def mean_std(mean: float, std: float, digits: int = 3, seeds: int | None = None) -> str:
    """``mean ± std`` for a table cell; the mean alone where there is no spread to state (one
    seed: ``seeds < 2``, or a NaN std), never ``± 0.000``, which reads as a measured zero."""
    if mean != mean:
        return ""
    if std != std or (seeds is not None and seeds < 2):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def gain_points(gain) -> str:
    """A gain over scratch (a row with ``gain_seeds``, ``gain_mean`` and ``gain_std``, fractions) in
    points; the mean alone for a single pair, which has no spread to state."""
    if gain.gain_seeds < 2:
        return f"{100 * gain.gain_mean:+.1f}"
    return f"{100 * gain.gain_mean:+.1f} ± {100 * gain.gain_std:.1f}"


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Lyrics: mean and sample std over seeds per (model, features, preset, split, data file),
    in first-seen order; one seed has std 0."""
    lyrics = results[results["study"] == "lyrics"] if "study" in results else results
    grouped = lyrics.groupby(LYRICS_KEYS, sort=False)
    table = grouped.agg(
        seeds=("seed", "count"),
        accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        macro_f1_mean=("macro_f1", "mean"), macro_f1_std=("macro_f1", "std"),
        fit_seconds=("fit_seconds", "mean"), n_params=("n_params", "max"),
    ).reset_index()
    return table.fillna({"accuracy_std": 0.0, "macro_f1_std": 0.0})


TRANSFER_KEYS = ("preset", "trunk", "block_seed")  # what a transfer arm is compared within


def _keys(runs: pd.DataFrame, keys) -> list[str]:
    """``keys`` (default :data:`TRANSFER_KEYS`) that are columns of ``runs``."""
    return [k for k in (TRANSFER_KEYS if keys is None else keys) if k in runs.columns]


def paired_gains(runs: pd.DataFrame, keys: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per transfer run (not scratch) with ``gain``: its test accuracy minus that of
    ``scratch`` trained on the same fraction with the same seed, within the same ``keys``
    (preset, block-1 trunk and class-block draw: same split, budget and task)."""
    transfer = runs[runs["arm"].notna()]
    keys = _keys(transfer, keys)
    by = [*keys, "fraction", "seed"]
    scratch = (transfer[transfer["arm"] == "scratch"].drop_duplicates(by)[[*by, "accuracy"]]
               .rename(columns={"accuracy": "scratch_accuracy"}))
    paired = transfer[transfer["arm"] != "scratch"].merge(scratch, on=by)
    return paired.assign(gain=paired["accuracy"] - paired["scratch_accuracy"])


def gains_over_scratch(runs: pd.DataFrame, keys: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Test accuracy of every transfer arm minus that of ``scratch`` trained on the same
    fraction with the same seed (same split and budget), paired by seed: one row per arm x
    ``keys`` x fraction with ``gain_seeds``, ``gain_mean`` and sample ``gain_std`` (0 for one seed),
    and ``gain_draws``: how many class-block draws those pairs come from.

    Pairing by seed removes the seed-to-seed variation the two arms share (the split, the
    kept fraction), so the std is that of the difference, not of either arm. Pairs are made
    within :data:`TRANSFER_KEYS`; a ``keys`` without ``block_seed`` then pools the pairs of
    several class-block draws (mean ± std over seeds and draws)."""
    paired = paired_gains(runs)
    keys = _keys(paired, keys)
    # no transfer run or no scratch arm: an empty frame that keeps the key columns' types
    # records from before the class-block draws have none: draw 0
    paired = paired.assign(draw=paired["block_seed"].fillna(0) if "block_seed" in paired else 0)
    gains = (paired.groupby(["arm", *keys, "fraction"], sort=False, dropna=False)
             .agg(gain_seeds=("gain", "count"), gain_mean=("gain", "mean"), gain_std=("gain", "std"),
                  gain_draws=("draw", "nunique")).reset_index())
    gains["gain_std"] = gains["gain_std"].fillna(0.0)
    return gains


def summarize_images(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(block1, transfer)``: mean and sample std over seeds, in first-seen order. The
    transfer table also holds each arm's gain over scratch, paired by seed
    (:func:`gains_over_scratch`; empty for scratch itself)."""
    results = results[results["study"] == "images"] if "study" in results else results
    results = results.astype({c: float for c in ("accuracy", "macro_f1", "mse", "psnr", "fraction")})
    aggregations = dict(
        seeds=("seed", "count"),
        accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        macro_f1_mean=("macro_f1", "mean"), macro_f1_std=("macro_f1", "std"),
        mse_mean=("mse", "mean"), mse_std=("mse", "std"), psnr_mean=("psnr", "mean"),
        fit_seconds=("fit_seconds", "mean"), n_params=("n_params", "max"),
        n_trainable=("n_trainable", "max"), n_train=("n_train", "max"),
    )
    tables = []
    draws = [k for k in ("trunk", "block_seed") if k in results.columns]
    block1_draw = [k for k in draws if k == "block_seed"]
    for stage, keys in (("block1", ["model", "task", "preset", "fraction", *block1_draw]),
                        ("transfer", ["arm", "fraction", "preset", *draws])):
        part = results[results["stage"] == stage]
        table = part.groupby(keys, sort=False, dropna=False).agg(**aggregations).reset_index()
        for metric in ("accuracy", "macro_f1", "mse"):  # one seed: std 0; no such metric: empty
            std = table[f"{metric}_std"].fillna(0.0)
            table[f"{metric}_std"] = std.where(table[f"{metric}_mean"].notna())
        tables.append(table)
    block1, transfer = tables
    gains = gains_over_scratch(results[results["stage"] == "transfer"])
    return block1, transfer.merge(gains, on=["arm", "preset", "fraction", *draws], how="left")
