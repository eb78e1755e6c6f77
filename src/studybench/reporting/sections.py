"""The report's content: the protocol, the lyrics tables and figures, the image tables
and figures, each a :class:`Section` built from collected run folders (no rendering here)."""

from __future__ import annotations

import platform
import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from studybench.records import command_line
from studybench.reporting import figures
from studybench.reporting.collect import Collected, Run
from studybench.reporting.reference import (
    IMAGE_VALIDATION_ACCURACY,
    LYRICS_VALIDATION_ACCURACY,
    TRANSFER_NOTE,
)
from studybench.results import gain_points, gains_over_scratch, mean_std
from studybench.runfolder import image_context


@dataclass
class Section:
    """A heading and its blocks: ("p", text) | ("table", (headers, rows)) | ("figure", (name, png, alt))."""

    title: str
    level: int = 2
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def text(self, value: str) -> None:
        self.blocks.append(("p", value))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.blocks.append(("table", (list(headers), [list(map(str, r)) for r in rows])))

    def figure(self, name: str, png: bytes, alt: str) -> None:
        self.blocks.append(("figure", (name, png, alt)))

    def details(self, summary: str, text: str) -> None:
        """Text folded under a one-line summary (HTML ``<details>``): complete, out of the way."""
        self.blocks.append(("details", (summary, text)))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("list", list(items)))


def _std(values: pd.Series) -> float:
    """Sample std over seeds; NaN for one seed (printed as the mean alone, not as ± 0.000)."""
    return float(values.std()) if len(values) > 1 else float("nan")


# --------------------------------------------------------------------------- protocol


def _commit(env: dict) -> str:
    git = env.get("git") or {}
    commit = str(git.get("commit") or "unknown")[:12]
    return commit + (" (uncommitted changes)" if git.get("dirty") else "")


def _threads(env: dict) -> str:
    threads = env.get("threads")
    if not threads:
        return "not recorded"
    return ", ".join(f"{k}={v}" for k, v in threads.items() if v is not None) or "defaults"


PRECISIONS = {"32": "fp32", "bf16": "bf16 autocast"}  # a run's selection.precision, as a reader says it


def _tally(values) -> str:
    """``"a"`` when every run agrees, else ``"a (29 runs); b (58 runs)"`` in first-seen order."""
    counts = Counter(values)
    if len(counts) <= 1:
        return next(iter(counts), "unknown")
    return "; ".join(f"{v} ({n} run{'s' if n != 1 else ''})" for v, n in counts.items())


def protocol_section(c: Collected) -> Section:
    s = Section("Protocol")
    runs = c.lyrics + c.images
    data = {}
    for run in c.lyrics:
        for key in ("data", "test_data"):
            d = run.config.get(key)
            if isinstance(d, dict):
                data[Path(d["path"]).name] = f"{d.get('rows', '?'):,} rows ({d.get('schema', '')})"
    draws: dict[str, dict[int, tuple[str, str]]] = {}  # image source -> draw -> (dataset, its blocks)
    for run in c.images:
        info, draw = run.config.get("images", {}), image_context(run)[1]
        draws.setdefault(info.get("source", "images"), {})[0 if draw is None else draw] = (
            info.get("dataset", ""), " | ".join(", ".join(b) for b in info.get("blocks", [])))
    for source, found in draws.items():
        ordered = sorted(found.items())
        dataset = ordered[0][1][0]
        data[source] = (f"{dataset}, blocks: {ordered[0][1][1]}" if len(ordered) == 1
                        else f"{dataset}, {len(ordered)} class-block draws: "  # each draw's blocks
                             + "; ".join(f"{d}: {blocks}" for d, (_, blocks) in ordered))
    splits = sorted({r.metrics.get("split", "") for r in c.lyrics} - {""})
    seeds = sorted({r.metrics.get("seed") for r in runs})
    presets = sorted({r.metrics.get("preset", "") for r in runs})
    env = next((r.environment for r in runs if r.environment), {})
    packages = env.get("packages", {})
    rows = [("data", "; ".join(f"{k}: {v}" for k, v in data.items()) or "none"),
            *([("lyrics split kinds", ", ".join(splits) or "none")] if c.lyrics else []),
            ("seeds", ", ".join(map(str, seeds))), ("presets", ", ".join(presets)),
            ("finished runs", f"{len(c.lyrics)} lyrics, {len(c.images)} image"),
            ("hardware", f"{env.get('platform', platform.platform())}, {env.get('cpu_count', '?')} CPUs"),
            ("software", f"Python {env.get('python', '?')}; "
                         + ", ".join(f"{k} {v}" for k, v in packages.items())),
            ("git commit", _tally(_commit(r.environment) for r in runs)),
            ("threads", _tally(_threads(r.environment) for r in runs))]
    # what the networks trained in (train.precision=auto differs by machine: bf16 where native)
    precisions = [PRECISIONS.get(str(p), str(p)) for r in runs
                  if isinstance(selection := r.metrics.get("selection"), dict) and (p := selection.get("precision"))]
    rows += [("training precision of the networks", _tally(precisions))] if precisions else []
    s.table(["", ""], rows)
    def shown(command: str) -> str:  # recorded before command_line knew `python -m studybench.cli`
        try:
            return command_line(shlex.split(command))
        except ValueError:  # unbalanced quotes: shown as recorded
            return command

    planned = [shown(cmd) for cmd in c.commands]
    recorded = sorted({command_line(r.environment.get("argv", [])) for r in runs} - {""})
    commands = list(dict.fromkeys(planned + [cmd for cmd in recorded if cmd not in planned]))
    if commands:
        s.details(f"{len(commands)} command{'s' if len(commands) != 1 else ''} made these runs",
                  " · ".join(f"`{cmd}`" for cmd in commands))
    if c.missing:
        s.details(f"{len(c.missing)} planned runs have not finished (rerun the same command to complete them)",
                  ", ".join(f"`{run}`" for run in c.missing))
    status = []
    if c.failed:
        status.append(f"{len(c.failed)} runs failed (rerun the same command to try them again): " + "; ".join(
            f"{k} ({v})" for k, v in list(c.failed.items())[:10]) + (" …" if len(c.failed) > 10 else ""))
    if c.interrupted:
        status.append(f"{len(c.interrupted)} runs were interrupted mid-training: " + ", ".join(c.interrupted))
    if c.problems:
        status.append("Unreadable run folders, left out: " + "; ".join(c.problems))
    if not status and not c.missing:
        status.append("Every planned run finished; no run folder was unreadable." if c.planned else
                      "No run plan (plan.json) was recorded with these runs, so unfinished runs cannot be listed.")
    if c.duplicates:
        status.append(f"{len(c.duplicates)} runs appear in more than one runs/ folder and are counted once.")
    if status:
        s.text(" ".join(x if x.endswith((".", "…")) else x + "." for x in status))  # one sentence each
    return s


# --------------------------------------------------------------------------- findings


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def findings_section(c: Collected) -> Section | None:
    """What the runs found, in a few sentences a reader takes in first: the best model per
    split, how much the random split inflates ``lyrics+artist``, the best block-1 network and
    what transfer gains at the smallest and largest share of block-2 data."""
    items = []
    if c.lyrics:
        table = _summary(_lyrics_frame(c.lyrics), ["model", "features", "preset", "split", "data"])
        order = {"artist": 0, "file": 1, "random": 2}
        for (split, data), part in sorted(table.groupby(["split", "data"], sort=False),
                                          key=lambda g: order.get(g[0][0], 3)):
            best = part.iloc[0]
            majority = part[part.model == "majority"]
            base = f"; the majority class scores {majority.iloc[0].macro_f1:.3f}" if len(majority) else ""
            items.append(f"Lyrics, {data}, {split} split: the best model is `{best.model}` "
                         f"({best.features}, {best.preset} preset) at test macro-F1 "
                         f"{mean_std(best.macro_f1, best.macro_f1_std)} (accuracy {mean_std(best.accuracy, best.accuracy_std)}, "
                         f"{_seeds(int(best.seeds))}){base}.")
        artist = table[table.features == "lyrics+artist"]
        for data, part in artist.groupby("data", sort=False):
            by_split = part.groupby("split")["macro_f1"].max()
            if {"random", "artist"} <= set(by_split.index):
                gap = by_split["random"] - by_split["artist"]
                items.append(f"Artist leakage, {data}: the best `lyrics+artist` model reaches macro-F1 "
                             f"{by_split['random']:.3f} on the random split but {by_split['artist']:.3f} on "
                             f"artists it never saw ({gap:+.3f}); the random split's extra is recognising "
                             "artists, not genres.")
    frame = _image_frame(c.images)
    if len(frame):
        block1 = frame[(frame.stage == "block1") & frame.accuracy.notna()]
        several = block1["block_seed"].nunique() > 1  # different tasks: never averaged together
        for draw, part in block1.groupby("block_seed", sort=True):
            g = part.groupby(["model", "preset"], sort=False)["accuracy"]
            best = g.mean().idxmax()
            values = g.get_group(best)
            where = f" (class-block draw {draw}: {part['blocks'].iloc[0].split(' | ')[0]})" if several else ""
            items.append(f"Images, block 1{where}: the best network is `{best[0]}` ({best[1]} preset) at test "
                         f"accuracy {mean_std(values.mean(), _std(values))} ({_seeds(len(values))}).")
        transfer = frame[frame.stage == "transfer"]
        gains = gains_over_scratch(transfer, keys=("preset", "trunk"))  # pooled over class-block draws
        for trunk, part in gains.groupby("trunk", sort=False, dropna=False):
            ends = sorted(part["fraction"].unique())
            several = transfer[transfer.trunk == trunk]["block_seed"].nunique() > 1
            parts = []
            for fraction in dict.fromkeys((ends[0], ends[-1])):
                at = part[part.fraction == fraction].sort_values("gain_mean", ascending=False).iloc[0]
                draws = int(at.gain_draws)  # the draws its pairs come from, not every draw that has runs
                parts.append(f"with {100 * fraction:g}% of block 2's training images the best arm, `{at.arm}`, "
                             f"gains {gain_points(at)} points over scratch "
                             + (f"({int(at.gain_seeds)} draw-seed pairs over {draws} class-block "
                                f"draw{'s' if draws != 1 else ''})" if several else f"({_seeds(int(at.gain_seeds))})"))
            label = f" from `{trunk}`" if gains["trunk"].nunique() > 1 else ""
            items.append(f"Transfer{label}: " + "; ".join(parts) + ".")
    if not items:
        return None
    s = Section("Findings")
    s.bullets(items)
    s.text("Tables, figures and the protocol (data, splits, seeds, software, the commands) follow.")
    return s


# --------------------------------------------------------------------------- lyrics


def _lyrics_frame(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for r in runs:
        m = r.metrics
        rows.append({"run": r, "model": m["model"], "features": m["features"], "preset": m["preset"],
                     "split": m["split"], "seed": m["seed"], "accuracy": m["test"]["accuracy"],
                     "macro_f1": m["test"]["macro_f1"], "fit_seconds": m.get("fit_seconds", np.nan),
                     "predict_seconds": np.nan if m.get("predict_seconds") is None else m["predict_seconds"],
                     "n_params": m.get("n_params"), "data": Path(r.config["data"]["path"]).name})
    return pd.DataFrame(rows)


def _seconds(value: float) -> str:
    """Seconds for a table: blank when not recorded, two decimals below 10 s."""
    if value != value:
        return ""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _summary(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    g = frame.groupby(keys, sort=False)
    table = g.agg(seeds=("seed", "count"), accuracy=("accuracy", "mean"), macro_f1=("macro_f1", "mean"),
                  fit_seconds=("fit_seconds", "mean"), predict_seconds=("predict_seconds", "mean"),
                  n_params=("n_params", "max")).reset_index()
    table["accuracy_std"] = g["accuracy"].apply(_std).to_numpy()
    table["macro_f1_std"] = g["macro_f1"].apply(_std).to_numpy()
    return table.sort_values("macro_f1", ascending=False, kind="stable").reset_index(drop=True)


def lyrics_sections(c: Collected) -> list[Section]:
    frame = _lyrics_frame(c.lyrics)
    sections = []
    keys = ["model", "features", "preset", "split", "data"]
    table = _summary(frame, keys)
    order = {"artist": 0, "file": 1, "random": 2}  # the honest split first
    groups = sorted(table.groupby(["split", "data"], sort=False), key=lambda g: order.get(g[0][0], 3))
    for (split, data), part in groups:
        s = Section(f"Lyrics → genre: {data}, {split} split")
        s.text(f"Test metrics, mean ± sample std over seeds; sorted by macro-F1. 'Study (val.)' is the "
               f"study's own validation accuracy of its network (the seed preset) on its data (Kaggle, 10 "
               f"genres, random split), for context only.")
        rows = [(r.model, r.features, r.preset, r.seeds, mean_std(r.accuracy, r.accuracy_std),
                 mean_std(r.macro_f1, r.macro_f1_std), f"{r.fit_seconds:.1f}", _seconds(r.predict_seconds),
                 "" if r.n_params != r.n_params or r.n_params is None else f"{int(r.n_params):,}",
                 LYRICS_VALIDATION_ACCURACY.get(r.model, ""))
                for r in part.itertuples()]
        s.table(["model", "features", "preset", "seeds", "accuracy", "macro-F1", "fit s", "predict s", "params",
                 "study (val.)"], rows)
        labels = [f"{r.model} · {r.features}" + (f" · {r.preset}" if part["preset"].nunique() > 1 else "")
                  for r in part.itertuples()]
        majority = part[part.model == "majority"]["macro_f1"]
        s.figure(f"lyrics_{split}_{data}_bars", figures.bars(
            labels, part["macro_f1"].tolist(), part["macro_f1_std"].tolist(),
            f"Test macro-F1 by model ({split} split, {data})", "test macro-F1 (mean ± std over seeds)",
            groups=part["features"].tolist(),
            reference=("majority class", float(majority.iloc[0])) if len(majority) else None),
            f"bar chart of test macro-F1 per model, {split} split")
        runs = frame[(frame.split == split) & (frame.data == data)]
        per_genre = {}
        for (model, features, preset), g in runs.groupby(["model", "features", "preset"], sort=False):
            f1 = pd.DataFrame([{k: v["f1"] for k, v in r.metrics["test"]["per_class"].items()} for r in g["run"]])
            per_genre[f"{model} · {features}" + (f" · {preset}" if runs.preset.nunique() > 1 else "")] = f1.mean()
        if per_genre:
            heat = pd.DataFrame(per_genre).T.reindex([lbl for lbl in labels if lbl in per_genre])
            s.figure(f"lyrics_{split}_{data}_genres", figures.heatmap(
                heat, f"Per-genre test F1 ({split} split), mean over seeds", "F1"),
                f"heat map of per-genre F1 across models, {split} split")
        best = part.iloc[0]
        best_runs = runs[(runs.model == best.model) & (runs.features == best.features) & (runs.preset == best.preset)]
        total = sum(np.asarray(r.metrics["test"]["confusion_matrix"]) for r in best_runs["run"])
        classes = best_runs["run"].iloc[0].metrics["test"]["class_names"]
        s.figure(f"lyrics_{split}_{data}_confusion", figures.confusion(
            total.tolist(), classes, f"Confusion of the best model: {best.model} · {best.features} "
                                     f"({split} split, all seeds' test songs)"),
            f"confusion matrix of {best.model}")
        sections.append(s)
        curves = _curves(runs, ["model"], lambda r: r.metrics["features"])
        if curves:
            lc = Section(f"Learning curves: {data}, {split} split", level=3)
            lc.text("Train (dashed) and validation (solid) per epoch, first seed of each neural model.")
            for name, png in curves:
                lc.figure(f"curves_{split}_{data}_{name}", png, f"learning curves of {name}")
            sections.append(lc)
    if table["split"].nunique() > 1:
        s = Section("Random against artist-grouped split")
        s.text("Test macro-F1 of the same models under each split. A random song-level split puts an "
               "artist's songs on both sides; where `lyrics+artist` gains only there, the gain is leakage.")
        wide = table.pivot_table(index=["model", "features", "preset"], columns="split", values="macro_f1",
                                 sort=False)
        s.table(["model", "features", "preset", *wide.columns],
                [(*idx, *("" if v != v else f"{v:.3f}" for v in row)) for idx, row in wide.iterrows()])
        sections.append(s)
    return sections


def _curves(runs: pd.DataFrame, by: list[str], label) -> list[tuple[str, bytes]]:
    out = []
    for key, g in runs.groupby(by, sort=False):
        first = g.sort_values("seed")
        histories = {}
        for r in first["run"]:
            name = label(r)
            if r.history is not None and name not in histories and len(r.history):
                histories[name] = r.history
        if histories:
            name = key if isinstance(key, str) else key[0]
            out.append((name, figures.learning_curves(histories, f"{name}: learning curves")))
    return out


# --------------------------------------------------------------------------- images


def _image_frame(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for r in runs:
        m = r.metrics
        images = r.config.get("images") or {}
        trunk, block_seed = image_context(r)
        rows.append({"run": r, "stage": m["stage"], "model": m["model"], "arm": m.get("arm"), "trunk": trunk,
                     "block_seed": 0 if block_seed is None else block_seed,  # records before draws: draw 0
                     "blocks": " | ".join(", ".join(b) for b in images.get("blocks", [])),
                     "fraction": m["fraction"], "preset": m["preset"], "seed": m["seed"], "task": m["task"],
                     "accuracy": m["test"].get("accuracy", np.nan), "mse": m["test"].get("mse", np.nan),
                     "psnr": m["test"].get("psnr", np.nan), "n_train": m["sizes"]["train"],
                     "fit_seconds": m["fit_seconds"], "n_params": m["n_params"]})
    return pd.DataFrame(rows)


def _block1_table(block1: pd.DataFrame, draws: bool) -> pd.DataFrame:
    """One row per block-1 model and preset (and class-block draw, with ``draws``): mean and
    std over seeds. Sorted as a reader compares them: draw by draw (each draw is its own task),
    then by test accuracy, best first; the autoencoder, which has none, last."""
    keys = ["model", "preset", *(["block_seed"] if draws else [])]
    g = block1.groupby(keys, sort=False)
    table = g.agg(seeds=("seed", "count"), accuracy=("accuracy", "mean"), mse=("mse", "mean"),
                  psnr=("psnr", "mean"), fit_seconds=("fit_seconds", "mean"),
                  n_params=("n_params", "max"), blocks=("blocks", "first")).reset_index()
    table["accuracy_std"] = g["accuracy"].apply(_std).to_numpy()
    table["mse_std"] = g["mse"].apply(_std).to_numpy()
    order = [*(["block_seed"] if draws else []), "accuracy"]
    return table.sort_values(order, ascending=[*([True] if draws else []), False], na_position="last",
                             kind="stable").reset_index(drop=True)


def image_sections(c: Collected) -> list[Section]:
    frame = _image_frame(c.images)
    sections = []
    block1 = frame[frame.stage == "block1"]
    if len(block1):
        s = Section("Images: block 1")
        blocks = c.images[0].config.get("images", {}).get("blocks", [])
        if blocks and frame["block_seed"].nunique() == 1:
            s.text("Block 1 classes: " + ", ".join(blocks[0]) + ". Block 2 classes: "
                   + ", ".join(blocks[1] if len(blocks) > 1 else []) + ".")
        draws = block1["block_seed"].nunique() > 1  # several class-block draws: one row per draw
        table = _block1_table(block1, draws)
        if draws:
            s.text("Class-block draws: " + "; ".join(
                f"{d}: {b.split(' | ')[0]}" for d, b in table.groupby("block_seed")["blocks"].first().items()) + ".")
        s.table(["model", "preset", *(["draw"] if draws else []), "seeds", "test accuracy", "recon. MSE",
                 "PSNR dB", "fit s", "params", "study (val.)"],
                [(r.model, r.preset, *([r.block_seed] if draws else []), r.seeds, mean_std(r.accuracy, r.accuracy_std),
                  mean_std(r.mse, r.mse_std, 4), "" if r.psnr != r.psnr else f"{r.psnr:.1f}", f"{r.fit_seconds:.0f}",
                  f"{int(r.n_params):,}", IMAGE_VALIDATION_ACCURACY.get(r.model, ""))
                 for r in table.itertuples()])
        classifiers = table[table.accuracy.notna()].sort_values("accuracy", ascending=False)
        if len(classifiers):
            s.figure("images_block1_bars", figures.bars(
                [f"{r.model} · {r.preset}" + (f" · draw {r.block_seed}" if draws else "")
                 for r in classifiers.itertuples()], classifiers["accuracy"].tolist(),
                classifiers["accuracy_std"].tolist(), "Block 1 test accuracy",
                "test accuracy (mean ± std over seeds)", groups=classifiers["preset"].tolist()),
                "bar chart of block-1 test accuracy")
        for r in block1[block1.task == "reconstruction"].sort_values("seed")["run"][:1]:
            png = r.path / "reconstructions.png"
            if png.is_file():
                s.figure("images_reconstructions", png.read_bytes(),
                         "autoencoder reconstructions: originals above, reconstructions below")
                s.text("Autoencoder on block-1 test images: originals (top row) and their "
                       "reconstructions (bottom row).")
        sections.append(s)
        curves = _curves(block1, ["model"], lambda r: f"seed {r.metrics['seed']}")
        if curves:
            lc = Section("Learning curves: block 1", level=3)
            for name, png in curves:
                lc.figure(f"curves_block1_{name}", png, f"learning curves of {name}")
            sections.append(lc)
    transfer = frame[frame.stage == "transfer"]
    if len(transfer):
        groups = list(transfer.groupby(["trunk", "block_seed"], sort=True, dropna=False))  # draw by draw
        for i, ((trunk, draw), part) in enumerate(groups):
            title = "Images: transfer to block 2"
            if len(groups) > 1:
                title += f" · trunk `{trunk}`, class-block draw {draw}"
            sections.append(_transfer_section(title, part, "" if i == 0 else f"_{i}", len(groups) > 1))
        for i, (trunk, part) in enumerate(transfer.groupby("trunk", sort=False, dropna=False)):
            if part["block_seed"].nunique() > 1:
                sections.append(_pooled_section(trunk, part, f"_{i}", block1[block1.model == trunk]))
        sections[-1].text(TRANSFER_NOTE)
    return sections


def _transfer_section(title: str, transfer: pd.DataFrame, suffix: str, several: bool) -> Section:
    """Block-2 test accuracy of every arm at every share of the data, and each arm's gain
    over scratch, for one block-1 trunk and one class-block draw."""
    s = Section(title)
    if several:
        s.text(f"Blocks (block 1 | block 2): {transfer['blocks'].iloc[0]}.")
    g = transfer.groupby(["arm", "fraction"], sort=False)
    table = g.agg(seeds=("seed", "count"), accuracy=("accuracy", "mean"),
                  n_train=("n_train", "max")).reset_index()
    table["std"] = g["accuracy"].apply(_std).to_numpy()
    fractions = sorted(table.fraction.unique())
    # arms sorted by test accuracy with the most training images, best first
    order = (table.sort_values("fraction").groupby("arm", sort=False)["accuracy"].last()
             .sort_values(ascending=False).index)
    wide = {arm: {r.fraction: mean_std(r.accuracy, r.std) for r in table[table.arm == arm].itertuples()}
            for arm in order}
    seeds = table.groupby("arm")["seeds"].max()
    sizes = table.groupby("fraction")["n_train"].max()
    s.table(["arm", "seeds", *(f"{f:g} ({sizes[f]:,} images)" for f in fractions)],
            [(arm, seeds[arm], *(cells.get(f, "") for f in fractions)) for arm, cells in wide.items()])
    s.figure("images_transfer" + suffix, figures.lines_with_bands(
        table, "fraction", "accuracy", "std", "arm", "Block 2 test accuracy by training data",
        "share of block-2 training images (log scale)", "test accuracy (mean ± std over seeds)"),
        "line chart of block-2 test accuracy against training fraction, one line per arm")
    gains = gains_over_scratch(transfer)  # paired within a preset, never across presets
    if len(gains):
        several_presets = gains["preset"].nunique() > 1
        gains["label"] = gains["arm"] + (" · " + gains["preset"] if several_presets else "")
        rank = {arm: i for i, arm in enumerate(wide)}
        gains = gains.sort_values("arm", key=lambda arms: arms.map(rank), kind="stable")
        cells = {label: {r.fraction: gain_points(r)
                         for r in part.itertuples()} for label, part in gains.groupby("label", sort=False)}
        s.text("Gain over scratch: test accuracy of each arm minus that of `scratch` trained on the "
               "same images with the same seed and budget, in points, mean ± std over seeds.")
        s.table(["arm", *(f"{f:g}" for f in fractions)],
                [(label, *(row.get(f, "") for f in fractions)) for label, row in cells.items()])
        for preset, part in gains[gains.arm == "cnn_finetune"].groupby("preset", sort=False):
            part = part.sort_values("fraction")
            ends = part.iloc[[0, -1]] if len(part) > 1 else part
            s.text(f"Fine-tuned transfer (`cnn_finetune`{', ' + preset + ' preset' if several_presets else ''}) "
                   "against scratch: " + "; ".join(
                       f"{gain_points(r)} points with {100 * r.fraction:g}% "
                       f"of the block-2 training images ({r.gain_seeds:.0f} seed{'' if r.gain_seeds == 1 else 's'})"
                       for r in ends.itertuples()) + ".")
    return s


def _pooled_section(trunk: str, transfer: pd.DataFrame, suffix: str, trunk_runs: pd.DataFrame) -> Section:
    """Each arm's gain over scratch pooled over the class-block draws of one trunk: pairs
    made within a draw and seed, then mean ± std over all of them; and, draw by draw at the
    smallest share, the trunk's block-1 accuracy beside the gains (``trunk_runs``: the
    trunk's block-1 runs), so a reader sees how the gain follows the blocks drawn."""
    draws = sorted(transfer["block_seed"].unique())
    s = Section(f"Images: transfer pooled over {len(draws)} class-block draws · trunk `{trunk}`")
    gains = gains_over_scratch(transfer, keys=("preset", "trunk"))
    if not len(gains):
        return s
    fractions = sorted(gains.fraction.unique())
    several_presets = gains["preset"].nunique() > 1
    gains["label"] = gains["arm"] + (" · " + gains["preset"] if several_presets else "")
    last = gains[gains.fraction == fractions[0]].sort_values("gain_mean", ascending=False)["label"]
    cells = {label: {r.fraction: f"{gain_points(r)} ({r.gain_seeds:.0f})"
                     for r in gains[gains.label == label].itertuples()} for label in last}
    s.text("Gain over scratch in points, mean ± std over every (draw, seed) pair, pairs in brackets; "
           "sorted by the gain with the least block-2 data.")
    s.table(["arm", *(f"{f:g}" for f in fractions)],
            [(label, *(row.get(f, "") for f in fractions)) for label, row in cells.items()])
    points = gains.assign(gain_mean=100 * gains.gain_mean, gain_std=100 * gains.gain_std)
    s.figure("images_transfer_gain" + suffix, figures.lines_with_bands(
        points, "fraction", "gain_mean", "gain_std", "label", "Gain over scratch by block-2 data",
        "share of block-2 training images (log scale)",
        "points over scratch (mean ± std over draws and seeds)"),
        "line chart of each arm's gain over scratch against the share of block-2 data")
    s.text(f"Draw by draw with {100 * fractions[0]:g}% of block 2: the trunk's block-1 test accuracy, scratch's "
           "block-2 test accuracy and each arm's gain over scratch in points (mean ± std over seeds). "
           "How much the block-1 trunk is worth depends on which classes were drawn into each block; "
           "where `lp_ft` ran, its first phase (a linear head fitted on the frozen trunk's features of "
           "block 2, validation accuracy) shows how well block-1 features separate block-2 classes "
           "before any fine-tuning.")
    s.table(*_gains_by_draw(transfer, trunk_runs, fractions[0], list(dict.fromkeys(gains.loc[last.index, "arm"]))))
    return s


def _gains_by_draw(transfer: pd.DataFrame, trunk_runs: pd.DataFrame, fraction: float,
                   arms: list[str]) -> tuple[list[str], list[tuple]]:
    """One row per class-block draw (and preset, where there are several) at ``fraction``: the
    blocks, the trunk's block-1 test accuracy, where ``lp_ft`` ran its probe's validation
    accuracy (:func:`_probe_accuracy`), scratch's block-2 test accuracy and each arm's gain
    over scratch (mean ± std over seeds), the arms in the order given."""
    at = transfer[transfer.fraction == fraction]
    gains = gains_over_scratch(at).set_index(["block_seed", "preset", "arm"])
    several_presets = at["preset"].nunique() > 1
    lp_ft = at[at.arm == "lp_ft"]
    probes = (lp_ft.assign(probe=[_probe_accuracy(r) for r in lp_ft["run"]] if "run" in lp_ft else np.nan)
              .dropna(subset=["probe"]).groupby(["block_seed", "preset"])["probe"])
    probed = probes.ngroups > 0  # the column only where some lp_ft run recorded its probe
    rows = []
    for (draw, preset), part in at.groupby(["block_seed", "preset"], sort=True):
        block1 = trunk_runs[(trunk_runs.block_seed == draw) & (trunk_runs.preset == preset)]
        scratch = part[part.arm == "scratch"]
        blocks = part["blocks"].iloc[0].split(" | ")
        cells = [gain_points(gains.loc[(draw, preset, arm)]) if (draw, preset, arm) in gains.index else ""
                 for arm in arms]
        probe = probes.get_group((draw, preset)) if (draw, preset) in probes.groups else None
        rows.append((draw, *([preset] if several_presets else []), blocks[0], blocks[-1],
                     mean_std(block1.accuracy.mean(), _std(block1.accuracy)) if len(block1) else "",
                     *([mean_std(probe.mean(), _std(probe)) if probe is not None else ""] if probed else []),
                     mean_std(scratch.accuracy.mean(), _std(scratch.accuracy)) if len(scratch) else "", *cells))
    return (["draw", *(["preset"] if several_presets else []), "block 1", "block 2", "trunk on block 1",
             *([f"frozen trunk's probe at {fraction:g} (val.)"] if probed else []),
             f"scratch at {fraction:g}", *(f"{arm} at {fraction:g}" for arm in arms)], rows)


def _probe_accuracy(run) -> float:
    """The validation accuracy of ``lp_ft``'s linear probe (its ``probe`` phase: a head fitted
    on the frozen block-1 trunk's features of block 2), or NaN. How well block-1 features
    separate block-2 classes without any training of the trunk: a measure of how related the
    two blocks are, for this trunk."""
    history = getattr(run, "history", None)
    if history is None or "phase" not in history or "val_accuracy" not in history:
        return float("nan")
    probe = history.loc[history["phase"] == "probe", "val_accuracy"].dropna()
    return float(probe.iloc[-1]) if len(probe) else float("nan")
