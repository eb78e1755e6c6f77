"""Fit, predict, save and load for image networks, with the same small interface as
the lyrics models.

An :class:`ImageModel` is described by a *recipe*, plain JSON that rebuilds its
network: a registered model's name and parameters, or a transfer arm with its
sources' recipes. Weights are stored as safetensors beside ``model.json``; no
pickle is involved in saving or loading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from studybench.config import to_dict
from studybench.errors import StudybenchError
from studybench.records import read_model_json, write_json
from studybench.training.engine import TrainConfig, fit_classifier, fit_reconstruction, predict_proba

FORMAT_VERSION = 1
NetFactory = Callable[[dict, int, int], nn.Module]  # (recipe, n_classes, image_size) -> network


def _tensors(images, with_labels: bool = True) -> dict[str, torch.Tensor]:
    tensors = {"images": images.images}
    if with_labels:
        tensors["y"] = images.labels
    return tensors


class ImageModel:
    """A classifier or an autoencoder (``task``) built from a recipe by ``make_net``."""

    kind = "torch-image"

    def __init__(self, recipe: dict, make_net: NetFactory, train: TrainConfig, seed: int = 0,
                 task: str = "classification", initialize: Callable[[nn.Module, torch.Tensor], None] | None = None):
        self.recipe, self.make_net, self.train_config = recipe, make_net, train
        self.seed, self.task = seed, task
        # initialize(net, training images): what a fresh network sets from its data before
        # training (the whitening layer of whitened_cnn); not called when ``prepare`` loads weights
        self.initialize = initialize
        self.on_epoch: Callable[[dict], None] | None = None

    def _build(self, n_classes: int, image_size: int) -> nn.Module:
        torch.manual_seed(self.seed)
        return self.make_net(self.recipe, n_classes, image_size)

    def fit(self, train, val, prepare: Callable[[nn.Module], None] | None = None,
            checkpoint: Path | None = None) -> dict[str, Any]:
        """Train on ``train`` (an ImageSet), select on ``val``. ``prepare(net)`` may load
        pretrained parts before training (the transfer arms); ``checkpoint`` is a file to
        save each epoch to and resume from."""
        self.classes_ = list(train.classes)
        self.image_size_ = int(train.images.shape[-1])
        self.net_ = self._build(len(self.classes_), self.image_size_)
        if prepare is not None:
            prepare(self.net_)
        preprocess = getattr(self.net_, "preprocess", None)
        if preprocess is not None and preprocess.scale == "standard":
            preprocess.fit_statistics(train.images)  # training images only
        if prepare is None and self.initialize is not None:
            self.initialize(self.net_, train.images)  # e.g. whitening filters, on the scaled images
        self.n_params_ = sum(p.numel() for p in self.net_.parameters())
        self.n_trainable_ = sum(p.numel() for p in self.net_.parameters() if p.requires_grad)
        if self.task == "reconstruction":
            result = fit_reconstruction(self.net_, _tensors(train, False), _tensors(val, False),
                                        self.train_config, self.seed, on_epoch=self.on_epoch,
                                        checkpoint=checkpoint)
        elif getattr(self.net_, "probe_epochs", 0):
            result = self._fit_probe_then_tune(train, val, checkpoint)
        else:
            result = fit_classifier(self.net_, _tensors(train), _tensors(val), len(self.classes_),
                                    self.train_config, self.seed, on_epoch=self.on_epoch,
                                    checkpoint=checkpoint)
        self.history_ = result.pop("history")
        return {**result, "n_params": self.n_params_, "n_trainable": self.n_trainable_}

    def _fit_probe_then_tune(self, train, val, checkpoint: Path | None) -> dict[str, Any]:
        """LP-FT as one run of ``train.epochs`` epochs: the linear probe (:meth:`_probe`) is the
        first (it costs one forward pass over the training images; a resumed run repeats it,
        it is deterministic), then everything is fine-tuned for the rest; one history."""
        net, config, total = self.net_, self.train_config, self.train_config.epochs
        history = [{"epoch": 1, **self._probe(train, val), "phase": "probe"}]
        if self.on_epoch:
            self.on_epoch({**history[0], "max_epochs": total})

        def on_epoch(row: dict) -> None:
            if self.on_epoch:
                self.on_epoch({**row, "epoch": row["epoch"] + 1, "max_epochs": total})

        net.set_probing(False)
        rest = total - 1
        result = fit_classifier(net, _tensors(train), _tensors(val), len(self.classes_),
                                replace(config, epochs=rest, patience=min(config.patience, rest)),
                                self.seed, on_epoch=on_epoch, checkpoint=checkpoint)
        history += [{**row, "epoch": row["epoch"] + 1, "phase": "tune"} for row in result.pop("history")]
        result.update(history=history, best_epoch=result["best_epoch"] + 1, epochs_run=len(history),
                      probe_epochs=1)
        return result

    def _probe(self, train, val, max_iter: int = 300) -> dict[str, float]:
        """The linear probe: the head fitted to convergence by L-BFGS (the training loss, with its
        label smoothing, plus the recipe's weight decay as an L2 penalty) on the fixed parts' features of the plain
        training images, as Kumar et al. fit a logistic regression. Returns the epoch's metrics."""
        import torch.nn.functional as F

        from studybench.training.tasks import macro_f1

        net, config = self.net_, self.train_config
        net.set_probing(True)
        net.eval()
        with torch.no_grad():
            features = {name: torch.cat([net.features(part) for part in images.images.split(512)])
                        for name, images in (("train", train), ("val", val))}
        labels = {"train": train.labels, "val": val.labels}
        params = [p for p in net.head.parameters() if p.requires_grad]
        optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, history_size=20,
                                      line_search_fn="strong_wolfe")

        def loss() -> torch.Tensor:
            optimizer.zero_grad()
            # the training loss's label smoothing bounds the probe's logits: fitted on plain
            # cross-entropy to separable features its weights grow without bound, and fine-tuning
            # from them diverged (draw 0: validation accuracy 0.67 -> 0.20 in three epochs)
            value = F.cross_entropy(net.head(features["train"]), labels["train"],
                                    label_smoothing=config.label_smoothing)
            value = value + 0.5 * config.weight_decay * sum((p * p).sum() for p in params)
            value.backward()
            return value

        optimizer.step(loss)  # deterministic: no random draw
        row = {}
        with torch.no_grad():
            for name in ("train", "val"):
                logits = net.head(features[name])
                predicted = logits.argmax(1).numpy()
                row[f"{name}_loss"] = float(F.cross_entropy(logits, labels[name]))
                row[f"{name}_accuracy"] = float(np.mean(predicted == labels[name].numpy()))
                row[f"{name}_macro_f1"] = macro_f1(predicted, labels[name].numpy(), len(self.classes_))
        return {**row, "lr": 1.0}

    def scores(self, images) -> tuple[np.ndarray, str]:
        """Class probabilities ``[N, classes]`` for an ImageSet."""
        if self.task != "classification":
            raise StudybenchError("an autoencoder reconstructs images; it has no class scores")
        from studybench.models.image.layers import TestTimeViews

        with TestTimeViews(self.net_):  # the test-time views, if the network has them
            return predict_proba(self.net_, _tensors(images, False), batch_size=512), "probability"

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, dict]:
        """Reconstructions (float [0, 1]) of uint8 ``images`` and their MSE and PSNR (dB)."""
        self.net_.eval()
        outputs, total = [], 0.0
        for part in images.split(batch_size):
            output, target = self.net_(part)
            total += float(((output.float() - target) ** 2).sum())
            outputs.append(output.float())
        mse = total / max(images.numel(), 1)
        return torch.cat(outputs), {"mse": mse, "psnr": float(-10 * np.log10(max(mse, 1e-12)))}

    # --- storage -------------------------------------------------------------------
    def save(self, folder: str | Path) -> str:
        from studybench.models.artifacts import save_weights

        folder = Path(folder)
        save_weights(self.net_, folder)
        meta = {"format_version": FORMAT_VERSION, "kind": self.kind, "task": self.task,
                "recipe": self.recipe, "seed": self.seed, "classes": self.classes_,
                "image_size": self.image_size_}
        write_json(folder / "model.json", meta)
        return "model.json"

    @classmethod
    def load(cls, path: str | Path) -> "ImageModel":
        from studybench.models.artifacts import load_weights

        path = Path(path)
        meta = read_model_json(path, FORMAT_VERSION, "image model", kind=cls.kind)
        model = cls(meta["recipe"], make_net, TrainConfig(), meta["seed"], meta["task"])
        model.classes_, model.image_size_ = meta["classes"], meta["image_size"]
        model.net_ = model._build(len(model.classes_), model.image_size_)
        load_weights(model.net_, path.with_name("model.safetensors"))
        model.net_.eval()
        return model


def make_net(recipe: dict, n_classes: int, image_size: int) -> nn.Module:
    """The network a recipe describes (see :func:`studybench.models.image.transfer.make_net`)."""
    from studybench.models.image import transfer

    return transfer.make_net(recipe, n_classes, image_size)


def image_builder(name: str, factory, task: str = "classification", trunk=None, head=None,
                  initialize=None):
    """The registry's ``build(params, features, seed)`` for an image family;
    ``factory(params, n_classes, image_size)`` makes its network. A classifier that can be
    the trunk of a transfer arm also names ``trunk(params, image_size)`` (a module with
    ``out_features``) and ``head(params, trunk, n_classes)``, the two parts ``factory``
    builds, in that order; ``initialize(net, images)`` sets data-dependent weights."""

    def build(params, features: str, seed: int) -> ImageModel:
        return ImageModel({"model": name, "params": to_dict(params)}, make_net, params.train, seed, task,
                          initialize)

    build.factory, build.trunk, build.head, build.initialize = factory, trunk, head, initialize
    return build
