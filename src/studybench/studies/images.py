"""The image study: class blocks, block-1 models, and transfer to block 2.

:func:`plan_images` turns a request into jobs: every block-1 model for every seed on
block 1 (tested on the official test images of block 1's classes), then every transfer
arm at every training fraction on block 2, each depending on the block-1 runs it starts
from. :func:`execute_job` is one run in a worker; :func:`run_images` drives the plan and
returns two tables (mean +- std over seeds). A rerun skips finished runs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
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
from studybench.models.image.transfer import ARMS, NEEDS, budget_epochs, transfer_epochs, transfer_model
from studybench.pipeline.driver import Progress, run_plan
from studybench.pipeline.executors import Executor
from studybench.pipeline.jobs import DataRef, Inputs, Job, Plan
from studybench.records import config_hash, write_csv, write_json
from studybench.results import summarize_images
from studybench.runfolder import write_metrics
from studybench.studies.common import (
    check_model_overrides,
    note_emulated_bf16,
    parse_list,
    parse_seeds,
    run_params,
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
    return [make_block(data, config, i) for i in range(config.data.blocks)]


def make_block(data: ImageData, config: ImagesConfig, index: int) -> Block:
    """Class block ``index`` (0-based) of the dataset, with its test images."""
    c = config.data
    classes = class_blocks(len(data.train.classes), c.blocks, c.block_seed)[index]
    train = select_classes(data.train, classes)
    if data.test is not None:
        test = select_classes(data.test, classes)
    else:  # an image folder without test/: a fixed, stratified share of the block
        rest, held = stratified_split(train.labels, c.test_size, c.block_seed)
        train, test = train.subset(rest), train.subset(held)
    return Block(index + 1, classes, train, test)


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


RUNNER = "studybench.studies.images:execute_job"


def plan_images(
    data: str | Path | ImageData | None = None,
    dataset: str = "auto",
    models: str | Sequence[str] | None = None,
    seeds: str | Sequence[int] = (0,),
    preset: str = "tuned",
    overrides: dict[str, Any] | None = None,
    cache: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    draws: str | Sequence[int] | None = None,
) -> Plan:
    """Block-1 models and block-2 transfer arms for every seed, as jobs; nothing is written.
    ``draws``: class-block draws (values of ``data.block_seed``, which classes go into each
    block) to plan into the one grid, each a study of its own; None plans ``data.block_seed``.

    The images are read here, once (their digest is part of every run id); each class
    block is a payload the driver prepares once, before the first run starts, and a transfer
    arm names the block-1 runs it starts from, which the driver sends it when they finish."""
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
    for given in filter(None, (t.source, t.ae_source)):
        _check_source(Path(given))
    check_model_overrides(specs, model_over)
    seed_list = parse_seeds(seeds)
    if preset not in registry.PRESETS:
        raise StudybenchError(f"--preset {preset}: unknown preset (known: {', '.join(registry.PRESETS)})")
    params = {s.name: s.resolve(preset, {k: v for k, v in model_over.items() if s.knows(k)}) for s in specs}
    note_emulated_bf16(params, log)

    if draws is not None and "data.block_seed" in run_over:
        raise StudybenchError("--draws and data.block_seed (--set or --config) both choose the class-block "
                              "draw: give one")
    draw_list = parse_seeds(draws, "draws") if draws is not None else [config.data.block_seed]

    loaded = data if isinstance(data, ImageData) else load_images(data, config.data.dataset, cache,
                                                                  config.data.image_size)
    if log:
        sizes = [len(b) for b in class_blocks(len(loaded.train.classes), config.data.blocks, draw_list[0])]
        log(f"{loaded.source}: {loaded.name}, {len(loaded.train):,} training and "
            f"{len(loaded.test) if loaded.test is not None else 0:,} test images, "
            f"{len(loaded.train.classes)} classes -> {len(sizes)} blocks of "
            f"{', '.join(map(str, sizes))} classes")
    digest = _digest(loaded)
    data_ref = DataRef(str(loaded.source), digest)
    jobs: list[Job] = []
    payloads: dict[str, Callable] = {}
    for draw in draw_list:  # each class-block draw is a study of its own, planned into one grid
        drawn = dataclasses.replace(config, data=dataclasses.replace(config.data, block_seed=draw))
        draw_jobs, blocks = _plan_draw(loaded, drawn, digest, data_ref, specs, params, seed_list, preset,
                                       log, several=len(draw_list) > 1)
        jobs += draw_jobs
        payloads.update(blocks)
    return Plan("images", jobs, payloads)


def _plan_draw(loaded: ImageData, config: ImagesConfig, digest: str, data_ref: DataRef, specs: list,
               params: dict[str, Any], seed_list: list[int], preset: str,
               log: Callable[[str], None] | None, several: bool) -> tuple[list[Job], dict[str, Callable]]:
    """The jobs of one class-block draw (``config.data.block_seed``) and the payloads of its two
    blocks. A run's id depends on the draw through ``config.data``, so the same draw planned
    alone or beside others gives the same run ids."""
    t = config.transfer
    ids = class_blocks(len(loaded.train.classes), config.data.blocks, config.data.block_seed)
    if t.arms and len(ids) < 2:
        raise StudybenchError("transfer needs two blocks (--set data.blocks=2) or no arms (transfer.arms=[])")
    if log and several:
        log(f"class-block draw {config.data.block_seed}: "
            + " | ".join(", ".join(loaded.train.classes[c] for c in b) for b in ids))

    base = {"study": "images", "preset": preset, "data": digest, "config": to_dict(config.data)}
    block_info = {"dataset": loaded.name, "source": str(loaded.source), "block_seed": config.data.block_seed,
                  "blocks": [[loaded.train.classes[c] for c in b] for b in ids]}
    key = f"image-blocks:{digest}:{config_hash(to_dict(config.data))}"
    payloads = {f"{key}:b{i + 1}": functools.partial(make_block, loaded, config, i) for i in range(2)}
    jobs: list[Job] = []
    if t.arms:  # the transfer arms' epochs (as in transfer_model), for their cost
        cnn = params[t.cnn] if t.cnn in params else registry.get(t.cnn).resolve(preset)
        # block-1 options the pretrained arms do not carry over (their augmentation and
        # optimiser groups are the transfer network's): scratch would get them, they would not
        unshared = [f"model.{k}" for k, off in (("cutout", 0), ("bias_lr_scale", 1.0)) if getattr(cnn, k, off) != off]
        if unshared and set(t.arms) - {"scratch"}:
            raise StudybenchError(
                f"transfer.cnn={t.cnn} with {' and '.join(unshared)}: scratch would train with it and the "
                "pretrained arms without, so they would not share one recipe; leave it out for transfer, "
                "or train block 1 alone (transfer.arms=[])")
        budget = budget_epochs(cnn, t.epochs)
        # block 2's training images at share 1 (for the step floor's epochs in the cost)
        block2_train = round(len(loaded.train) * len(ids[1]) / len(loaded.train.classes) * (1 - config.data.val_size))
    for seed in seed_list:
        block1 = {}
        for spec in specs:
            run_preset = spec.preset_for(preset)  # a family the study never had runs tuned
            record = {**base, "preset": run_preset, "stage": "block1", "model": spec.name, "seed": seed,
                      "params": run_params(params[spec.name]), "fraction": config.data.train_fraction}
            run_id = f"{spec.name}.{run_preset}.b1.s{seed}-{config_hash(record)}"
            record["run_id"] = run_id
            block1[spec.name] = run_id
            jobs.append(Job(run_id, "images", RUNNER, spec.name, None, run_preset, seed, record, data_ref,
                            inputs=(f"{key}:b1",), settings=config, context={"images": block_info},
                            cost=params[spec.name].train.epochs * config.data.train_fraction,
                            params=params[spec.name]))
        for fraction in t.fractions:
            for arm in t.arms:
                record = {**base, "stage": "transfer", "arm": arm, "model": f"transfer:{arm}", "seed": seed,
                          "fraction": fraction, "cnn": t.cnn, "trunk_lr_scale": t.trunk_lr_scale,
                          "epochs": t.epochs, **({"min_steps": t.min_steps} if t.min_steps else {})}
                if arm == "lp_ft":  # its fine-tuning rate (in the record of lp_ft runs only)
                    record["trunk_lr_scale"] = t.lp_ft_lr_scale
                # the sources are part of what the run depends on
                record["sources"] = _sources(arm, config, block1)
                run_id = f"{arm}.{preset}.b2.f{fraction:g}.s{seed}-{config_hash(record)}"
                record["run_id"] = run_id
                jobs.append(Job(run_id, "images", RUNNER, record["model"], arm, preset, seed, record, data_ref,
                                inputs=(f"{key}:b2",), sources=dict(record["sources"]), settings=config,
                                context={"images": block_info},
                                cost=transfer_epochs(budget, t.min_steps, round(block2_train * fraction),
                                                     cnn.train.batch_size) * fraction))
    return jobs, payloads


def run_images(
    data: str | Path | ImageData | None = None,
    dataset: str = "auto",
    models: str | Sequence[str] | None = None,
    seeds: str | Sequence[int] = (0,),
    preset: str = "tuned",
    overrides: dict[str, Any] | None = None,
    out: str | Path = "runs/images",
    cache: str | Path | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
    tracker=None,
    workers: int | str = 1,
    threads: int | None = None,
    ray: str | None = None,
    executor: Executor | None = None,
    draws: str | Sequence[int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Block-1 models and block-2 transfer arms for every seed (and class-block draw, with
    ``draws``, as in :func:`plan_images`); returns
    ``(block1_table, transfer_table)``. ``data`` is a folder, images already loaded
    (:class:`ImageData`), or None to download CIFAR into ``cache``. ``workers``,
    ``threads``, ``ray`` and ``executor`` as in :func:`studybench.studies.lyrics.run_lyrics`."""
    from studybench.records import check_out_folder

    check_out_folder(out)
    plan = plan_images(data, dataset, models, seeds, preset, overrides, cache, log, draws)
    return run_plan(plan, out, summarize_images, executor=executor, workers=workers, threads=threads,
                    ray=ray, progress=progress, tracker=tracker, log=log)


def _sources(arm: str, config: ImagesConfig, block1: dict[str, str]) -> dict[str, str]:
    """The block-1 CNN and autoencoder a transfer run starts from: a run folder the user
    named, or the run id of this study's block-1 run for the same seed."""
    t = config.transfer
    sources = {"cnn": str(Path(t.source).resolve()) if t.source else block1[t.cnn]}
    if "ae" in NEEDS[arm]:
        sources["ae"] = str(Path(t.ae_source).resolve()) if t.ae_source else block1[AUTOENCODER]
    return sources


def execute_job(job: Job, inputs: Inputs, folder: Path, on_epoch: Callable[[dict], None] | None = None) -> None:
    """One image run, in a worker: a block-1 model, or a transfer arm built from the files of
    its source runs; the run's files are written into ``folder``."""
    block: Block = inputs.payloads[job.inputs[0]]
    config: ImagesConfig = job.settings
    record, seed = job.record, job.seed
    seed_everything(seed)
    torch.manual_seed(seed)
    train, val = _split(block, config, seed, record["fraction"])  # seeded itself: draws no global RNG
    if record["stage"] == "block1":
        model: ImageModel = registry.get(job.model).build(job.params, "images", seed)
        prepare = None
    else:
        cnn = _load_source(inputs.sources["cnn"], record["sources"]["cnn"])
        ae = _load_source(inputs.sources["ae"], record["sources"]["ae"]) if "ae" in inputs.sources else None
        model, prepare = transfer_model(record["arm"], cnn, ae, seed, record["trunk_lr_scale"],
                                        epochs=record["epochs"], min_steps=record.get("min_steps", 0),
                                        n_train=len(train))
    model.on_epoch = on_epoch
    started = time.perf_counter()
    selection = model.fit(train, val, prepare, checkpoint=inputs.checkpoint)
    # a resumed run also counts the training time of its interrupted attempts
    fit_seconds = time.perf_counter() - started + selection.get("seconds_before_resume", 0.0)
    sizes = {"train": len(train), "val": len(val), "test": len(block.test)}
    artifact = model.save(folder)
    started = time.perf_counter()
    if model.task == "reconstruction":
        reconstructions, test = model.reconstruct(block.test.images)
        _write_examples(folder / "reconstructions.png", block.test.images[:8], reconstructions[:8])
        predicted = None
    else:
        scores, _ = model.scores(block.test)
        predicted = scores.argmax(axis=1)
        names = np.asarray(block.test.classes, dtype=object)
        test = classification_metrics(names[block.test.labels.numpy()], names[predicted],
                                      list(block.test.classes))
    predict_seconds = time.perf_counter() - started
    write_json(folder / "config.json", {
        **record, "block": block.index, "block_classes": list(block.test.classes),
        "images": job.context["images"], "artifact": {"kind": model.kind, "file": artifact},
        "classes": list(block.test.classes), "task": model.task,
    })
    write_csv(folder / "history.csv", pd.DataFrame(model.history_))
    if predicted is not None:
        frame = pd.DataFrame({"index": np.arange(len(block.test)), "label": block.test.labels.numpy(),
                              "predicted": predicted})
        score_cols = pd.DataFrame(scores, columns=[f"score:{c}" for c in block.test.classes])
        write_csv(folder / "predictions.csv", pd.concat([frame, score_cols], axis=1))
    write_metrics(
        folder, run_id=job.run_id, study="images", model=job.model, preset=job.preset, seed=seed,
        stage=record["stage"], arm=record.get("arm"), fraction=record["fraction"], task=model.task,
        sizes=sizes, test=test, score_kind=None if predicted is None else "probability",
        selection=json_ready(selection), fit_seconds=fit_seconds, predict_seconds=predict_seconds,
        n_params=int(model.n_params_), n_trainable=int(model.n_trainable_))


def _check_source(folder: Path) -> None:
    """A block-1 run folder named by the user must be a finished image run (checked before
    anything runs)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StudybenchError(f"{folder}: not a finished image run folder (no readable config.json)") from None
    if not isinstance(config, dict) or (config.get("artifact") or {}).get("kind") != ImageModel.kind:
        raise StudybenchError(f"{folder}: not an image model run")


def _load_source(files: dict[str, bytes], name: str) -> ImageModel:
    """A block-1 image model from its run's files (sent by the driver: no shared disk)."""
    import tempfile

    config = json.loads(files["config.json"])
    artifact = config.get("artifact", {})
    if artifact.get("kind") != ImageModel.kind:
        raise StudybenchError(f"{name}: not an image model run")
    with tempfile.TemporaryDirectory(prefix="studybench-source-") as tmp:
        for file_name, content in files.items():
            (Path(tmp) / file_name).write_bytes(content)
        return ImageModel.load(Path(tmp) / artifact["file"])


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
