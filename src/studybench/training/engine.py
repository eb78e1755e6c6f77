"""One training engine for every network: a Lightning module (classification or
reconstruction) around any plain ``nn.Module``. It knows nothing about lyrics or images.

Batches are dicts of tensors sliced from in-memory tensors (no per-sample
DataLoader: 15-25 % faster on CPU); the key ``y`` holds the labels and every
other key is passed to the network as a keyword argument. Adam, early stopping
on validation loss, ReduceLROnPlateau, the best epoch's weights restored at the
end, optional class weights and bf16 autocast, per-epoch metrics.
"""

from __future__ import annotations

import logging
import math
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from studybench.errors import StudybenchError


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained; every neural model carries one (``--set train.…``)."""

    epochs: int = 20  # the study's maximum; early stopping usually ends sooner
    batch_size: int = 1000  # the study's batch for its recurrent and CNN models
    lr: float = 1e-3  # Adam's default, as in the study
    weight_decay: float = 0.0  # L2 on all weights (AdamW-style decoupled; coupled for sgd)
    optimizer: str = "adam"  # adam (the study's; AdamW with weight_decay) | sgd (Nesterov momentum)
    momentum: float = 0.9  # sgd only: Nesterov momentum
    ema: float = 0.0  # decay per step of an exponential moving average of the weights, which is
    # what validation scores and what is kept (0: off; 0.99-0.999 smooths the last noisy steps)
    patience: int = 5  # epochs without a better validation loss before stopping (the study's)
    monitor: str = "val_loss"  # what early stopping and the kept epoch follow: val_loss (the
    # study's, lowest) | val_macro_f1 or val_accuracy (highest; classification) | val_psnr |
    # last: no early stopping, the final epoch kept (a schedule annealed to its end; a small
    # validation set's noise then picks no earlier epoch)
    schedule: str = "plateau"  # plateau (ReduceLROnPlateau) | onecycle (warm-up then anneal, per step)
    lr_factor: float = 0.5  # ReduceLROnPlateau multiplies the learning rate by this …
    lr_patience: int = 2  # … after this many epochs without improvement
    min_lr: float = 0.0  # … and never below this (the image study's 1e-6)
    label_smoothing: float = 0.0  # share of the target spread over all classes (0.1-0.2 for images)
    class_weights: str = "none"  # none | balanced (inverse class frequency, for macro-F1)
    precision: str = "32"  # 32 (reference) | bf16 (autocast; faster where native, check accuracy) |
    # auto: bf16 where this machine runs it natively (native_bf16), else 32
    grad_clip: float = 0.0  # max gradient norm; 0 disables (recurrent nets like 1.0)
    progress: bool = False  # Lightning's per-epoch bar (off: it fights the study's run bar)
    prune_below: tuple[float, ...] = ()  # `studybench tune` sets it: stop after epoch e when the
    # best monitor value so far is below prune_below[e-1] (the median of earlier trials there;
    # Optuna's MedianPruner, decided in the run, so it works on any executor)


class TensorBatches(IterableDataset):
    """Batches sliced from a dict of equal-length tensors, reshuffled each epoch from a seed.

    With ``trim`` the batch is cut to its longest sequence (``lengths`` key), and songs
    are bucketed by length within windows of 20 batches so little padding is computed;
    unshuffled (validation, prediction) they come shortest first, so every batch is cut
    close to its own songs' length (``order`` holds the rows of the last pass, in the order
    they came)."""

    def __init__(self, tensors: dict[str, torch.Tensor], batch_size: int, shuffle: bool,
                 seed: int = 0, trim: bool = False):
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.seed, self.trim, self.epoch = seed, trim, 0
        self.n = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            if self.trim and "lengths" in self.tensors:
                return torch.argsort(self.tensors["lengths"], stable=True)
            return torch.arange(self.n)
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(self.n, generator=generator)
        if self.trim and "lengths" in self.tensors:
            window = self.batch_size * 20
            chunks = [c[torch.argsort(self.tensors["lengths"][c], stable=True)] for c in order.split(window)]
            batches = list(torch.cat(chunks).split(self.batch_size))
            shuffled = torch.randperm(len(batches), generator=generator)
            return torch.cat([batches[i] for i in shuffled])
        return order

    def __iter__(self):
        order = self.order = self._order()
        self.epoch += 1
        chunks = list(order.split(self.batch_size))
        if self.shuffle and len(chunks) > 1 and len(chunks[-1]) == 1:
            # BatchNorm cannot train on a batch of one song: fold it into the previous batch.
            chunks[-2:] = [torch.cat(chunks[-2:])]
        for index in chunks:
            batch = {k: v[index] for k, v in self.tensors.items()}
            if self.trim and "lengths" in batch:
                batch["ids"] = batch["ids"][:, : int(batch["lengths"].max())]
            yield batch


def loader(tensors: dict[str, torch.Tensor], batch_size: int, shuffle: bool, seed: int = 0,
           trim: bool = False) -> DataLoader:
    """A DataLoader that passes pre-made batches through unchanged."""
    return DataLoader(TensorBatches(tensors, batch_size, shuffle, seed, trim), batch_size=None)


def class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (scikit-learn's "balanced"); absent classes get weight 1."""
    counts = torch.bincount(y, minlength=n_classes).float()
    weights = len(y) / (n_classes * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.ones_like(weights))


def fit_classifier(net: nn.Module, train: dict[str, torch.Tensor], val: dict[str, torch.Tensor],
                   n_classes: int, config: TrainConfig, seed: int, trim: bool = False,
                   on_epoch=None, checkpoint: Path | None = None) -> dict:
    """Train ``net`` on ``train`` (tensors incl. ``y``), select on ``val``; restore the best epoch.

    Returns the per-epoch history and the best epoch; ``on_epoch(row)`` hears each epoch's
    metrics as it ends (for a progress display). Uses a GPU when one is present."""
    from studybench.training.tasks import ClassificationTask

    _prepare(seed)
    weights = class_weights(train["y"], n_classes) if config.class_weights == "balanced" else None
    return fit(ClassificationTask(net, config, n_classes, weights, on_epoch), train, val, seed, trim,
               checkpoint)


def fit_reconstruction(net: nn.Module, train: dict[str, torch.Tensor], val: dict[str, torch.Tensor],
                       config: TrainConfig, seed: int, on_epoch=None, checkpoint: Path | None = None) -> dict:
    """Train an autoencoder-like ``net`` (returns ``(output, target)``) on mean squared error."""
    from studybench.training.tasks import ReconstructionTask

    _prepare(seed)
    return fit(ReconstructionTask(net, config, on_epoch), train, val, seed, checkpoint=checkpoint)


def _prepare(seed: int) -> None:
    import lightning as L

    torch.set_flush_denormal(True)  # recurrent layers run ~7x slower through denormals on CPU
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)  # no "GPU available: False" chatter
    L.seed_everything(seed, workers=True, verbose=False)  # before the task draws anything


def fit(task, train: dict[str, torch.Tensor], val: dict[str, torch.Tensor], seed: int,
        trim: bool = False, checkpoint: Path | None = None) -> dict:
    """Run a task module (``task.net``, ``task.config``, ``task.history``) with early stopping
    on validation loss; the best epoch's weights are put back into ``task.net``.

    With ``checkpoint`` (a file path) the state after every epoch is written there, and a
    run that finds one resumes from it (an interrupted run loses at most one epoch); the
    file is deleted when training ends. ``seconds_before_resume`` in the result is the
    training time the checkpoint's earlier processes spent."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping

    from studybench.training.tasks import EMA, KeepBest, LastEpoch, PruneBelow

    config, net = task.config, task.net
    if config.schedule not in ("plateau", "onecycle"):
        raise StudybenchError(f"--set train.schedule={config.schedule}: expected plateau or onecycle")
    if config.monitor not in (*task.monitors, "last"):
        raise StudybenchError(f"--set train.monitor={config.monitor}: expected {', '.join(task.monitors)} or last")
    if config.optimizer not in ("adam", "sgd"):
        raise StudybenchError(f"--set train.optimizer={config.optimizer}: expected adam or sgd")
    if not 0 <= config.ema < 1:
        raise StudybenchError(f"--set train.ema={config.ema}: expected 0 (off) or a decay in (0, 1)")
    best = KeepBest(config.monitor)
    train_loader = loader(train, config.batch_size, True, seed, trim)
    task.train_batches = train_loader.dataset  # its epoch counter (the shuffle) goes into checkpoints
    callbacks = [best] if best.every else \
        [EarlyStopping(config.monitor, patience=config.patience, mode="min" if best.lower else "max"), best]
    prune = None
    if config.prune_below:
        if best.lower or best.every:
            raise StudybenchError(f"--set train.prune_below: needs a monitor to maximise, not {config.monitor}")
        prune = PruneBelow(best, config.prune_below)
        callbacks.append(prune)
    if config.ema:  # after KeepBest: the averaged weights are still in place when it keeps them
        callbacks.append(EMA(config.ema))
    resume, last = None, None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        last = LastEpoch(checkpoint)
        callbacks.append(last)
        resume = checkpoint if checkpoint.is_file() else None
    precision = resolve_precision(config.precision)
    trainer = L.Trainer(
        max_epochs=config.epochs, accelerator="auto", devices=1,
        precision={"32": "32-true", "bf16": "bf16-mixed"}[precision],
        callbacks=callbacks,
        deterministic=True, logger=False, enable_checkpointing=checkpoint is not None,
        enable_progress_bar=config.progress, enable_model_summary=False,
        gradient_clip_val=config.grad_clip or None, num_sanity_val_steps=0,
    )
    # deterministic=True also turns on torch's fill_uninitialized_memory, which writes NaN into
    # every new tensor as a guard against reading memory no kernel wrote: 15% of a tuned LSTM's
    # step on one CPU thread, no effect on any result (the kernels overwrite what they allocate).
    # The algorithms stay deterministic (benchmarks/RESULTS.md, "Deterministic without the fill").
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*IterableDataset.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        warnings.filterwarnings("ignore", ".*in eval mode at the start of training.*")  # frozen parts
        val_loader = loader(val, config.batch_size, False, seed, trim)
        try:
            trainer.fit(task, train_loader, val_loader, ckpt_path=_readable(resume), weights_only=True)
        finally:
            torch.utils.deterministic.fill_uninitialized_memory = fill
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    if best.state is not None:
        net.load_state_dict(best.state)
    net.cpu().eval()
    kept = task.history[best.epoch - 1] if 0 < best.epoch <= len(task.history) else {}
    return {"history": task.history, "best_epoch": best.epoch, "monitor": config.monitor,
            "best_val_loss": kept.get("val_loss", float("nan")),
            "epochs_run": len(task.history), "precision": precision,
            **({"pruned_at": prune.pruned_at} if prune is not None and prune.pruned_at else {}),
            # training time of earlier, interrupted attempts; add it to this process's time
            "seconds_before_resume": last.seconds_before if last is not None else 0.0}


def native_bf16() -> bool:
    """Whether this machine trains with bf16 autocast natively: a CUDA GPU with bf16, or (no
    GPU) a CPU whose oneDNN has bf16 kernels (AVX-512 BF16 or AMX). Elsewhere torch emulates
    it: on a 2-core AVX2 EPYC the tuned image CNNs ran 7-12x slower in bf16 than in fp32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str) -> str:
    """``32`` or ``bf16``: what ``--set train.precision=…`` trains with on this machine."""
    if precision == "auto":
        return "bf16" if native_bf16() else "32"
    if precision not in ("32", "bf16"):
        raise StudybenchError(f"--set train.precision={precision}: expected 32, bf16 or auto")
    return precision


def _readable(checkpoint: Path | None) -> Path | None:
    """``checkpoint`` if it loads as plain tensors and containers (``weights_only``), else None
    (it is deleted: a damaged checkpoint means training from the start)."""
    if checkpoint is None:
        return None
    try:
        torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        logging.getLogger(__name__).warning("%s: cannot resume (%s); training from the start", checkpoint, exc)
        checkpoint.unlink(missing_ok=True)
        return None
    return checkpoint


@torch.no_grad()
def predict_proba(net: nn.Module, tensors: dict[str, torch.Tensor], batch_size: int | None = None,
                  trim: bool = False) -> np.ndarray:
    """Class probabilities for every row of ``tensors``, in order (float32 on the CPU).

    Trimmed (sequence) batches are scored shortest first, 128 at a time by default: on the
    tuned recurrent and bag models that ran 5-8x faster than 1,024 in file order, with the
    same probabilities (benchmarks/eval_order.py); untrimmed ones 1,024 at a time."""
    batch_size = batch_size or (128 if trim else 1024)
    net.eval()
    out = []
    batches = TensorBatches(tensors, batch_size, shuffle=False, trim=trim)
    for batch in batches:
        batch.pop("y", None)
        out.append(torch.softmax(net(**batch).float(), dim=1))
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    probs = torch.cat(out)
    return probs[torch.argsort(batches.order)].numpy()  # back to the rows' own order
