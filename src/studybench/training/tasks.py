"""Lightning modules, one per task kind; each wraps a plain ``nn.Module``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Checkpoint, WeightAveraging
from torch import nn

from studybench.training.engine import TrainConfig


def macro_f1(pred: np.ndarray, true: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over the classes present in ``true`` (numpy, no extra dependency)."""
    f1 = []
    for c in range(n_classes):
        tp = np.sum((pred == c) & (true == c))
        support, predicted = np.sum(true == c), np.sum(pred == c)
        if support == 0:
            continue
        f1.append(0.0 if tp == 0 else 2 * tp / (support + predicted))
    return float(np.mean(f1)) if f1 else 0.0


def adam(groups, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (AdamW with ``weight_decay``), fused: one kernel for the whole update instead of
    a dozen passes over each tensor. The same update to float rounding; 2.3-2.5x faster
    training for the bag-of-embeddings models at batch 32, whose 1-2M-parameter embedding
    made the unfused Adam 65-76% of a step (benchmarks/RESULTS.md). CPU and CUDA tensors."""
    groups = list(groups)
    tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in tensors)
    if weight_decay:
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=fused)
    return torch.optim.Adam(groups, lr=lr, fused=fused)


def optimizer(groups, config: TrainConfig) -> torch.optim.Optimizer:
    """``train.optimizer``: Adam (:func:`adam`) or SGD with Nesterov momentum (the CIFAR
    speed-run recipes'), with coupled weight decay as those recipes use it."""
    if config.optimizer == "sgd":
        groups = list(groups)
        fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True,
                               weight_decay=config.weight_decay, fused=fused)
    return adam(groups, config.lr, config.weight_decay)


class _Task(L.LightningModule):
    """What every task shares: per-epoch history, the optimiser and the schedule."""

    def __init__(self, net: nn.Module, config: TrainConfig, on_epoch=None):
        super().__init__()
        self.on_epoch = on_epoch  # called with each epoch's metrics row (progress display)
        self.net, self.config = net, config
        self._outputs: dict[str, list] = {"train": [], "val": []}
        self.history: list[dict] = []

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.net(**{k: v for k, v in batch.items() if k != "y"})

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def on_validation_epoch_end(self):
        summary = self._summary("val")
        if self.trainer.sanity_checking:
            return
        for key, value in summary.items():
            self.log(key, value, prog_bar=key == "val_loss")
        self._pending = summary

    def on_train_epoch_end(self):
        row = {"epoch": self.current_epoch + 1, **self._summary("train"),
               **getattr(self, "_pending", {}), "lr": self.optimizers().param_groups[0]["lr"]}
        self.history.append(row)
        if self.on_epoch:
            self.on_epoch({**row, "max_epochs": self.config.epochs})

    # Resuming: what Lightning does not keep by itself goes into the checkpoint too.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["studybench"] = {
            "history": self.history, "torch_rng": torch.get_rng_state(),
            "batches_epoch": getattr(getattr(self, "train_batches", None), "epoch", 0)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("studybench", {})
        self.history = list(state.get("history", []))
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if getattr(self, "train_batches", None) is not None:
            self.train_batches.epoch = int(state.get("batches_epoch", 0))

    def configure_optimizers(self):
        c = self.config
        # A network may ask for its own groups (e.g. a pretrained trunk at a lower rate); a
        # group's "weight_decay_scale" multiplies train.weight_decay for it.
        groups = self.net.param_groups(c.lr) if hasattr(self.net, "param_groups") else \
            [{"params": [p for p in self.net.parameters() if p.requires_grad], "lr": c.lr}]
        for group in groups:
            if "weight_decay_scale" in group:
                group["weight_decay"] = c.weight_decay * group.pop("weight_decay_scale")
        optim = optimizer(groups, c)
        if c.schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optim, max_lr=[g["lr"] for g in groups],
                cycle_momentum=c.optimizer == "adam",  # Adam's beta1 as before; SGD's momentum stays fixed
                # at least 10 steps: OneCycleLR cannot split fewer into its two phases
                total_steps=max(int(self.trainer.estimated_stepping_batches), 10), pct_start=0.25)
            return {"optimizer": optim, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optim, factor=c.lr_factor, patience=c.lr_patience, min_lr=c.min_lr)
        return {"optimizer": optim, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}


class ClassificationTask(_Task):
    """Cross-entropy classification of whatever ``net(**inputs)`` returns as logits."""

    monitors = ("val_loss", "val_macro_f1", "val_accuracy")  # what train.monitor may follow

    def __init__(self, net: nn.Module, config: TrainConfig, n_classes: int,
                 weights: torch.Tensor | None = None, on_epoch=None):
        super().__init__(net, config, on_epoch)
        self.n_classes = n_classes
        self.register_buffer("weights", weights if weights is not None else torch.ones(n_classes))

    def _step(self, batch, stage: str) -> torch.Tensor:
        logits = self(batch)
        smoothing = self.config.label_smoothing if stage == "train" else 0.0  # val loss stays comparable
        loss = F.cross_entropy(logits.float(), batch["y"], weight=self.weights, label_smoothing=smoothing)
        n = len(batch["y"])
        self._outputs[stage].append((loss.detach() * n, logits.argmax(1).detach(), batch["y"], n))
        return loss

    def _summary(self, stage: str) -> dict[str, float]:
        outputs, self._outputs[stage] = self._outputs[stage], []
        if not outputs:
            return {}
        n = sum(o[3] for o in outputs)
        pred = torch.cat([o[1] for o in outputs]).cpu().numpy()
        true = torch.cat([o[2] for o in outputs]).cpu().numpy()
        return {f"{stage}_loss": float(sum(o[0] for o in outputs) / n),
                f"{stage}_accuracy": float(np.mean(pred == true)),
                f"{stage}_macro_f1": macro_f1(pred, true, self.n_classes)}


class ReconstructionTask(_Task):
    """Mean squared error between what ``net(**inputs)`` returns as ``(output, target)``.

    The network says what it reconstructs (an autoencoder: its own input), so this task
    knows nothing about images. Metrics: loss (MSE) and PSNR in dB for targets in [0, 1]."""

    monitors = ("val_loss", "val_psnr")

    def _step(self, batch, stage: str) -> torch.Tensor:
        output, target = self(batch)
        loss = F.mse_loss(output.float(), target.float())
        n = len(target)
        self._outputs[stage].append((loss.detach() * n, n))
        return loss

    def _summary(self, stage: str) -> dict[str, float]:
        outputs, self._outputs[stage] = self._outputs[stage], []
        if not outputs:
            return {}
        mse = float(sum(o[0] for o in outputs) / sum(o[1] for o in outputs))
        return {f"{stage}_loss": mse, f"{stage}_psnr": float(-10 * np.log10(max(mse, 1e-12)))}


class KeepBest(L.Callback):
    """Keeps the weights of the epoch with the best ``monitor`` value (lowest for a loss,
    highest otherwise; ``last``: the last epoch), in memory (and in the resume checkpoint)."""

    def __init__(self, monitor: str = "val_loss"):
        self.monitor, self.lower = monitor, monitor.endswith("_loss")
        self.every = monitor == "last"  # no selection: every epoch replaces the one before
        self.best, self.state, self.epoch = (float("inf") if self.lower else -float("inf")), None, 0

    def state_dict(self) -> dict:
        return {"best": self.best, "epoch": self.epoch, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.epoch, self.state = state["best"], state["epoch"], state["state"]

    def on_validation_end(self, trainer, module):
        # Not on_validation_epoch_end: Lightning calls callbacks' epoch-end hooks before the
        # module's, which logs this epoch's metrics, so there the previous epoch's value would
        # be paired with this epoch's weights. (EarlyStopping reads it here too.)
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val_loss" if self.every else self.monitor)
        if value is None:
            return
        value = float(value)
        if self.every or ((value < self.best) if self.lower else (value > self.best)):
            self.best, self.epoch = value, trainer.current_epoch + 1
            self.state = {k: v.detach().clone() for k, v in module.net.state_dict().items()}


class EMA(WeightAveraging):
    """Lightning's weight averaging as an exponential moving average of the weights (and
    BatchNorm statistics), updated after every step, swapped in for validation as usual but
    swapped back only when validation has *ended*: :class:`KeepBest` (placed before this
    callback) then keeps the averaged weights that were scored, not the raw ones. At the end
    of training the average replaces the weights. The update is torch's ``lerp`` form, which
    leaves a fixed weight (a frozen layer) bit-for-bit unchanged."""

    def __init__(self, decay: float):
        from torch.optim.swa_utils import get_ema_multi_avg_fn

        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        pass  # not yet: the epoch's metrics are logged after this hook (see KeepBest)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._average_model is not None and not trainer.sanity_checking:
            self._swap_models(pl_module)


class PruneBelow(L.Callback):
    """Stops a trial whose best value so far (``best``, a :class:`KeepBest` placed before this
    callback) is below ``thresholds[e - 1]`` after epoch ``e``; ``pruned_at`` is that epoch."""

    def __init__(self, best: KeepBest, thresholds: tuple[float, ...]):
        self.best, self.thresholds, self.pruned_at = best, tuple(thresholds), 0

    def on_validation_end(self, trainer, module):
        epoch = trainer.current_epoch + 1
        if trainer.sanity_checking or epoch > len(self.thresholds):
            return
        if self.best.best < self.thresholds[epoch - 1]:
            trainer.should_stop, self.pruned_at = True, epoch


class LastEpoch(Checkpoint):
    """Writes the full training state to ``path`` after every epoch, atomically (a temporary
    file, then a rename), so a killed run resumes from its last finished epoch.

    A :class:`Checkpoint` subclass: Lightning calls it after the module's own epoch-end hook,
    so the checkpoint holds the epoch's history row."""

    def __init__(self, path: Path):
        self.path = Path(path)
        # Training seconds spent by earlier, interrupted processes (from the checkpoint), so a
        # resumed run reports the time all its kept epochs took, not only the last stretch.
        self.seconds_before, self.started = 0.0, time.perf_counter()

    def state_dict(self) -> dict:
        return {"seconds": self.seconds_before + time.perf_counter() - self.started}

    def load_state_dict(self, state: dict) -> None:
        self.seconds_before = float(state.get("seconds", 0.0))

    def on_train_epoch_end(self, trainer, module) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(tmp)
        os.replace(tmp, self.path)

