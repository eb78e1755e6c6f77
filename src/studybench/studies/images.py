"""The image study: class blocks, block-1 models, and transfer to block 2.

:func:`run_images` trains every block-1 model for every seed on block 1 (tested on
the official test images of block 1's classes), then every transfer arm at every
training fraction on block 2, and returns two tables (mean +- std over seeds).
Each run is a folder of its own; a rerun skips finished runs.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from studybench import registry
from studybench.config import ImagesConfig, apply_overrides, json_ready, split_overrides, to_dict
from studybench.data.images import (
    ImageData,
    ImageSet,
    class_blocks,
    keep_fraction,
    load_images,
    select_classes,
    stratified_split,
)
from studybench.errors import StudybenchError
from studybench.evaluation.metrics import classification_metrics
from studybench.models.image.model import ImageModel
from studybench.models.image.transfer import ARMS, NEEDS, transfer_model
from studybench.records import (
    RunWriter,
    config_hash,
    environment,
    read_json,
    record_plan,
    write_csv,
    write_json,
)
from studybench.studies.image_results import collect_image_results, summarize_images
from studybench.studies.common import (
    check_model_overrides,
    checkpoint_path,
    parse_list,
    parse_seeds,
    seed_everything,
)

AUTOENCODER = "conv_autoencoder"


@dataclass(frozen=True)
class Block:
    """One class block: its class ids in the dataset, and its images relabelled 0..k-1."""

    index: int
    classes: list[int]
    train: ImageSet  # every training image of the block (validation is split off per seed)
    test: ImageSet


def make_blocks(data: ImageData, config: ImagesConfig) -> list[Block]:
    """The dataset's classes split into ``data.blocks`` blocks, each with its test images."""
    c = config.data
    ids = class_blocks(len(data.train.classes), c.blocks, c.block_seed)
    blocks = []
    for i, classes in enumerate(ids):
        train = select_classes(data.train, classes)
        if data.test is not None:
            test = select_classes(data.test, classes)
        else:  # an image folder without test/: a fixed, stratified share of the block
            rest, held = stratified_split(train.labels, c.test_size, c.block_seed)
            train, test = train.subset(rest), train.subset(held)
        blocks.append(Block(i + 1, classes, train, test))
    return blocks


def _digest(data: ImageData) -> str:
    """Content hash of the images and labels (a run id changes when the data does)."""
    h = hashlib.sha256()
    for part in filter(None, (data.train, data.test)):
        h.update(part.images.numpy().tobytes())
        h.update(part.labels.numpy().tobytes())
        h.update("\n".join(part.classes).encode())
    return h.hexdigest()


def _split(block: Block, config: ImagesConfig, seed: int, fraction: float) -> tuple[ImageSet, ImageSet]:
    """Train and validation images of a block for a seed; ``fraction`` of the training part."""
    rest, val = stratified_split(block.train.labels, config.data.val_size, seed)
    train = keep_fraction(block.train.subset(rest), fraction, seed)
    return train, block.train.subset(val)


def run_images(
    data: str | Path | ImageData | None = None,
    dataset: str = "auto",
    models: str | Sequence[str] | None = None,
    seeds: str | Sequence[int] = (0,),
    preset: str = "tuned",
    overrides: dict[str, Any] | None = None,
    out: str | Path = "runs/images",
    cache: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    tracker=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Block-1 models and block-2 transfer arms for every seed; returns
    ``(block1_table, transfer_table)``. ``data`` is a folder, images already loaded
    (:class:`ImageData`), or None to download CIFAR into ``cache``."""
    run_over, model_over = split_overrides(dict(overrides or {}))
    if dataset != "auto":
        run_over["data.dataset"] = dataset
    config: ImagesConfig = apply_overrides(ImagesConfig(), run_over)
    t = config.transfer
    names = parse_list(models, "models") if models else registry.names("images")
    specs = [registry.get(n) for n in names]
    for spec in specs:
        if spec.study != "images":
            raise StudybenchError(f"model {spec.name!r} belongs to the {spec.study} study, not images")
    bad = [a for a in t.arms if a not in ARMS]
    if bad:
        raise StudybenchError(f"--set transfer.arms: unknown arm {bad[0]!r} (known: {', '.join(ARMS)})")
    if t.epochs < 0:
        raise StudybenchError(f"--set transfer.epochs={t.epochs}: expected 0 (the CNN's budget) or more")
    for f in t.fractions:
        if not 0 < f <= 1:
            raise StudybenchError(f"--set transfer.fractions: {f:g} is not in (0, 1]")
    if t.arms and registry.get(t.cnn).family != "cnn":
        raise StudybenchError(f"--set transfer.cnn={t.cnn}: not a CNN classifier")
    # The block-1 models the transfer arms need are trained too (unless given as run folders).
    needed = set()
    if t.arms and not t.source:
        needed.add(t.cnn)
    if any("ae" in NEEDS[a] for a in t.arms) and not t.ae_source:
        needed.add(AUTOENCODER)
    specs += [registry.get(n) for n in sorted(needed - {s.name for s in specs})]
    check_model_overrides(specs, model_over)
    seed_list = parse_seeds(seeds)
    if preset not in registry.PRESETS:
        raise StudybenchError(f"--preset {preset}: unknown preset (known: {', '.join(registry.PRESETS)})")
    params = {s.name: s.resolve(preset, {k: v for k, v in model_over.items() if s.knows(k)}) for s in specs}

    loaded = data if isinstance(data, ImageData) else load_images(data, config.data.dataset, cache,
                                                                  config.data.image_size)
    blocks = make_blocks(loaded, config)
    if t.arms and len(blocks) < 2:
        raise StudybenchError("transfer needs two blocks (--set data.blocks=2) or no arms (transfer.arms=[])")
    digest = _digest(loaded)
    if log:
        log(f"{loaded.source}: {loaded.name}, {len(loaded.train):,} training and "
            f"{len(loaded.test) if loaded.test is not None else 0:,} test images, "
            f"{len(loaded.train.classes)} classes -> {len(blocks)} blocks of "
            f"{', '.join(str(len(b.classes)) for b in blocks)} classes")

    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    base = {"study": "images", "preset": preset, "data": digest, "config": to_dict(config.data)}
    block_info = {"dataset": loaded.name, "source": str(loaded.source), "block_seed": config.data.block_seed,
                  "blocks": [[loaded.train.classes[c] for c in b.classes] for b in blocks]}
    jobs: list[dict] = []
    for seed in seed_list:
        for spec in specs:
            jobs.append({**base, "stage": "block1", "model": spec.name, "seed": seed,
                         "params": to_dict(params[spec.name]), "fraction": config.data.train_fraction})
        for fraction in t.fractions:
            for arm in t.arms:
                jobs.append({**base, "stage": "transfer", "arm": arm, "model": f"transfer:{arm}",
                             "seed": seed, "fraction": fraction, "cnn": t.cnn,
                             "trunk_lr_scale": t.trunk_lr_scale, "epochs": t.epochs})
    run_ids, block1 = [], {}
    for i, job in enumerate(jobs):
        if job["stage"] == "transfer":  # the sources are part of what the run depends on
            job["sources"] = _sources(job, config, block1)
            name = f"{job['arm']}.{preset}.b2.f{job['fraction']:g}.s{job['seed']}"
        else:
            name = f"{job['model']}.{preset}.b1.s{job['seed']}"
        run_id = f"{name}-{config_hash(job)}"
        run_ids.append(run_id)
        job["run_id"] = run_id
        if job["stage"] == "block1":
            block1[(job["model"], job["seed"])] = run_id
    record_plan(out, run_ids)
    for i, job in enumerate(jobs):
        run_id = job["run_id"]
        if progress:
            progress(run_id, i, len(jobs))
        run_dir = out / "runs" / run_id
        if run_dir.is_dir():
            if tracker:
                tracker.log_run(run_dir)
            continue
        report = None
        if progress:
            def report(row, run_id=run_id, i=i):
                metric = "val_accuracy" if "val_accuracy" in row else "val_psnr"
                progress(f"{run_id} · epoch {row['epoch']}/{row['max_epochs']} · "
                         f"{metric.replace('_', ' ')} {row.get(metric, float('nan')):.3f}", i, len(jobs))
        _execute(run_dir, job, blocks, config, params, block_info, report)
        if tracker:
            tracker.log_run(run_dir)
        write_csv(out / "results.csv", collect_image_results(out))
    if progress:
        progress("", len(jobs), len(jobs))
    everything = collect_image_results(out)
    write_csv(out / "results.csv", everything)
    mine = everything.set_index("run_id").loc[run_ids].reset_index()
    return summarize_images(mine)


def _sources(job: dict, config: ImagesConfig, block1: dict[tuple[str, int], str]) -> dict[str, str]:
    """The block-1 CNN and autoencoder a transfer run starts from: a run folder the user
    named, or the run id of this study's block-1 run for the same seed."""
    t, seed = config.transfer, job["seed"]
    sources = {"cnn": str(Path(t.source).resolve()) if t.source else block1[(t.cnn, seed)]}
    if "ae" in NEEDS[job["arm"]]:
        sources["ae"] = str(Path(t.ae_source).resolve()) if t.ae_source else block1[(AUTOENCODER, seed)]
    return sources


def _execute(run_dir: Path, job: dict, blocks: list[Block], config: ImagesConfig,
             params: dict[str, Any], block_info: dict, on_epoch) -> None:
    runs = run_dir.parent
    seed = job["seed"]
    seed_everything(seed)
    torch.manual_seed(seed)
    if job["stage"] == "block1":
        block = blocks[0]
        spec = registry.get(job["model"])
        model: ImageModel = spec.build(params[spec.name], "images", seed)
        prepare = None
    else:
        block = blocks[1]
        cnn = _load_source(runs / job["sources"]["cnn"])  # an absolute path stays as it is
        ae = _load_source(runs / job["sources"]["ae"]) if "ae" in job["sources"] else None
        model, prepare = transfer_model(job["arm"], cnn, ae, seed, job["trunk_lr_scale"],
                                        epochs=job["epochs"])
    train, val = _split(block, config, seed, job["fraction"])
    model.on_epoch = on_epoch
    started = time.perf_counter()
    selection = model.fit(train, val, prepare, checkpoint=checkpoint_path(run_dir))
    # a resumed run also counts the training time of its interrupted attempts
    fit_seconds = time.perf_counter() - started + selection.get("seconds_before_resume", 0.0)
    sizes = {"train": len(train), "val": len(val), "test": len(block.test)}
    with RunWriter(run_dir) as tmp:
        artifact = model.save(tmp)
        started = time.perf_counter()
        if model.task == "reconstruction":
            reconstructions, test = model.reconstruct(block.test.images)
            _write_examples(tmp / "reconstructions.png", block.test.images[:8], reconstructions[:8])
            predicted = None
        else:
            scores, _ = model.scores(block.test)
            predicted = scores.argmax(axis=1)
            names = np.asarray(block.test.classes, dtype=object)
            test = classification_metrics(names[block.test.labels.numpy()], names[predicted],
                                          list(block.test.classes))
        predict_seconds = time.perf_counter() - started
        write_json(tmp / "config.json", {
            **job, "block": block.index, "block_classes": list(block.test.classes), "images": block_info,
            "artifact": {"kind": model.kind, "file": artifact}, "classes": list(block.test.classes),
            "task": model.task,
        })
        write_csv(tmp / "history.csv", pd.DataFrame(model.history_))
        if predicted is not None:
            frame = pd.DataFrame({"index": np.arange(len(block.test)), "label": block.test.labels.numpy(),
                                  "predicted": predicted})
            score_cols = pd.DataFrame(scores, columns=[f"score:{c}" for c in block.test.classes])
            write_csv(tmp / "predictions.csv", pd.concat([frame, score_cols], axis=1))
        write_json(tmp / "environment.json", environment())
        write_json(tmp / "metrics.json", {
            "run_id": job["run_id"], "stage": job["stage"], "model": job["model"],
            "arm": job.get("arm"), "fraction": job["fraction"], "preset": job["preset"], "seed": seed,
            "task": model.task, "sizes": sizes, "test": test, "selection": json_ready(selection),
            "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
            "n_params": int(model.n_params_), "n_trainable": int(model.n_trainable_),
        })


def _load_source(folder: Path) -> ImageModel:
    if not (folder / "config.json").is_file():
        raise StudybenchError(f"{folder}: not a finished image run folder (no config.json)")
    config = read_json(folder / "config.json")
    artifact = config.get("artifact", {})
    if artifact.get("kind") != ImageModel.kind:
        raise StudybenchError(f"{folder}: not an image model run")
    return ImageModel.load(folder / artifact["file"])


def _write_examples(path: Path, originals: torch.Tensor, reconstructions: torch.Tensor) -> None:
    """A PNG with the originals in the top row and their reconstructions below."""
    from PIL import Image

    top = originals.permute(0, 2, 3, 1).numpy()
    bottom = (reconstructions.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    grid = np.concatenate([np.concatenate(list(top), axis=1), np.concatenate(list(bottom), axis=1)], axis=0)
    scale = 4  # 32-pixel images are too small to see
    image = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)
