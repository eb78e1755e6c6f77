"""Transfer from block 1 to block 2: the arms of a fair comparison, and the one place
that turns a recipe back into a network.

Every arm trains on the same block-2 split with the same budget:

- ``scratch``: the block-1 CNN's architecture, freshly initialised;
- ``cnn_frozen`` / ``cnn_finetune``: the block-1 CNN's convolutional trunk, fixed or
  trained at ``trunk_lr_scale`` times the learning rate, under a new head;
- ``cnn_finetune_full``: the trunk trained at the full learning rate, like the head
  (the schedule's warm-up protects it from the new head's first gradients);
- ``lp_ft``: linear probe, then fine-tune (Kumar et al., 2022): the new head fitted to
  convergence (L-BFGS) on the fixed trunk's features of the training images, counted as
  the budget's first epoch (it costs one forward pass), then every part at
  ``trunk_lr_scale`` times the learning rate for the other epochs (the study passes
  ``transfer.lp_ft_lr_scale``, 0.03), so the features are not distorted by a random
  head's gradients;
- ``ae_frozen`` / ``ae_finetune``: the block-1 autoencoder's encoder, the same way,
  under Dense 256 -> Dropout 0.5 -> output;
- ``cnn_ae_concat``: the study's combined model done correctly: the encoder's code
  (not the reconstruction) beside the CNN trunk's features, both fine-tuned.

A pretrained part keeps its own input scaling (block-1 statistics); augmentation
happens once, before every part sees the batch. Every arm is scored with the CNN's
test-time views (its ``tta``), as ``scratch`` is.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from studybench.config import from_dict
from studybench.errors import StudybenchError
from studybench.models.image.autoencoder import FlatEncoder
from studybench.models.image.layers import Frozen, Preprocess, mlp, test_time_logits, tta_level
from studybench.models.image.model import ImageModel

ARMS = ("scratch", "cnn_frozen", "cnn_finetune", "cnn_finetune_full", "lp_ft", "ae_frozen", "ae_finetune",
        "cnn_ae_concat")
NEEDS = {"scratch": (), "cnn_frozen": ("cnn",), "cnn_finetune": ("cnn",), "cnn_finetune_full": ("cnn",),
         "lp_ft": ("cnn",), "ae_frozen": ("ae",), "ae_finetune": ("ae",), "cnn_ae_concat": ("cnn", "ae")}
CNN_HEAD = ("cnn_frozen", "cnn_finetune", "cnn_finetune_full", "lp_ft")  # the block-1 CNN's own head shape


class TransferNet(nn.Module):
    """raw images -> augmentation -> each pretrained part (own scaling) -> concatenated -> head.

    ``probe_epochs`` > 0 (LP-FT): the model is trained in two phases, and ``probing`` says
    which: while probing, the parts are fixed (no gradients, BatchNorm statistics kept) and
    only the head learns (:meth:`ImageModel._probe`); afterwards everything learns at
    ``trunk_lr_scale`` times the rate."""

    def __init__(self, augment: Preprocess, parts: list[nn.Module], head: nn.Module, frozen: bool,
                 trunk_lr_scale: float, tta: int = 0, probe_epochs: int = 0):
        super().__init__()
        self.augment = augment
        self.parts = nn.ModuleList(Frozen(p) if frozen else p for p in parts)
        self.head, self.trunk_lr_scale, self.tta, self.tta_active = head, trunk_lr_scale, tta, False
        self.probe_epochs, self.probing = probe_epochs, False
        # what fine-tuning trains: not the parts' own fixed weights (whitened_cnn's whitening)
        self._tunable = [p.requires_grad for p in self.parts.parameters()]

    def set_probing(self, probing: bool) -> None:
        """LP-FT's phase: the linear probe (parts fixed) or the fine-tuning after it."""
        self.probing = probing
        for parameter, tunable in zip(self.parts.parameters(), self._tunable):
            parameter.requires_grad_(tunable and not probing)
        self.train(self.training)

    def train(self, mode: bool = True) -> "TransferNet":
        super().train(mode)
        if self.probing:
            self.parts.eval()  # a probe does not move the trunk's BatchNorm statistics either
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The parts' concatenated features of (un-augmented) images: what the head sees."""
        return torch.cat([part(x) for part in self.parts], dim=1)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training or not (self.tta and self.tta_active):
            return self._logits(self.augment.maybe_augment(images))
        return test_time_logits(self._logits, images, self.tta)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """The pretrained parts learn more slowly than the new head (LP-FT's fine-tuning:
        the head, already trained by the probe, as slowly as the parts)."""
        parts = [p for p in self.parts.parameters() if p.requires_grad]
        head_lr = lr * self.trunk_lr_scale if self.probe_epochs and not self.probing else lr
        groups = [{"params": list(self.head.parameters()), "lr": head_lr}]
        return groups + ([{"params": parts, "lr": lr * self.trunk_lr_scale}] if parts else [])


def _scaler(params) -> Preprocess:
    """Scaling only (augmentation happens once, in front)."""
    return Preprocess(params.scale, 0, False, params.channels_last)


def _params(recipe: dict):
    from studybench import registry

    return from_dict(registry.get(recipe["model"]).params, recipe["params"])


def make_net(recipe: dict, n_classes: int, image_size: int) -> nn.Module:
    """Rebuild the network a recipe describes (weights drawn from torch's current seed)."""
    from studybench import registry

    if "model" in recipe:
        return registry.get(recipe["model"]).build.factory(_params(recipe), n_classes, image_size)
    arm = recipe["arm"]
    parts, widths = [], 0
    family = registry.get(recipe["cnn"]["model"]).build
    cnn = _params(recipe["cnn"])
    if "cnn" in NEEDS[arm]:
        trunk = family.trunk(cnn, image_size)
        parts.append(nn.Sequential(_scaler(cnn), trunk))
        widths += trunk.out_features
    if "ae" in NEEDS[arm]:
        from studybench.models.image.autoencoder import Encoder

        ae = _params(recipe["ae"])
        encoder = FlatEncoder(Encoder(ae, image_size))
        parts.append(nn.Sequential(_scaler(ae), encoder))
        widths += encoder.out_features
    if arm in CNN_HEAD:
        head = family.head(cnn, parts[0][1], n_classes)
    else:
        head = mlp(widths, (recipe["dense"],), n_classes, "relu", recipe["dropout"])
    augment = Preprocess("raw", recipe["crop_padding"], recipe["flip"])
    return TransferNet(augment, parts, head, arm.endswith("_frozen"), recipe["trunk_lr_scale"],
                       recipe.get("tta", 0), recipe.get("probe_epochs", 0))


def _load_part(part: nn.Module, source: ImageModel, which: str) -> None:
    """Copy a block-1 model's scaling statistics and trunk (or encoder) into ``part``."""
    part = part.module if isinstance(part, Frozen) else part
    scaler, body = part[0], part[1]
    scaler.load_state_dict(source.net_.preprocess.state_dict())
    if which == "cnn":
        body.load_state_dict(source.net_.trunk.state_dict())
    else:
        body.encoder.load_state_dict(source.net_.encoder.state_dict())


def budget_epochs(cnn_params, epochs: int = 0) -> int:
    """Every arm's epochs before any step floor: ``epochs``, or (0) the block-1 CNN's own, at
    most its ``transfer_epochs`` when that is set."""
    own = cnn_params.train.epochs
    return epochs or (min(own, cnn_params.transfer_epochs) if cnn_params.transfer_epochs else own)


def transfer_epochs(epochs: int, min_steps: int, n_train: int, batch_size: int) -> int:
    """``epochs``, or more where they would give fewer than ``min_steps`` optimiser steps on
    ``n_train`` images (0 or no images: ``epochs``). At 10% of a 5-class CIFAR block (2,000
    images, batch 512) 10 epochs are 40 steps, and every arm was still improving at the end."""
    if min_steps <= 0 or n_train <= 0:
        return epochs
    return max(epochs, math.ceil(min_steps / math.ceil(n_train / batch_size)))


def transfer_model(arm: str, cnn: ImageModel | None, ae: ImageModel | None, seed: int,
                   trunk_lr_scale: float = 0.1, dense: int = 256, dropout: float = 0.5, epochs: int = 0,
                   min_steps: int = 0, n_train: int = 0):
    """``(model, prepare)``: an unfitted block-2 model for ``arm`` and the function that
    loads the block-1 weights into its network before training. Every arm trains with
    the block-1 CNN's recipe for ``epochs`` epochs; 0 keeps the CNN's own epochs, at most
    its ``transfer_epochs`` when that is set. ``lp_ft``'s probe counts as the first.
    ``min_steps``: more epochs where ``n_train`` images at the recipe's batch size would
    give fewer optimiser steps than that (every arm alike, so budgets stay equal)."""
    from studybench import registry

    if arm not in ARMS:
        raise StudybenchError(f"unknown transfer arm '{arm}' (known: {', '.join(ARMS)})")
    family = registry.get(cnn.recipe["model"]).build if cnn is not None and "model" in cnn.recipe else None
    if family is None or cnn.task != "classification" or family.trunk is None:
        raise StudybenchError("transfer needs a block-1 CNN classifier (--set transfer.cnn=NAME)")
    if "ae" in NEEDS[arm] and (ae is None or ae.task != "reconstruction"):
        raise StudybenchError(f"arm {arm} needs a block-1 autoencoder (conv_autoencoder)")
    cnn_params = _params(cnn.recipe)
    budget = transfer_epochs(budget_epochs(cnn_params, epochs), min_steps, n_train, cnn_params.train.batch_size)
    train = replace(cnn_params.train, epochs=budget)
    if arm == "scratch":
        return ImageModel(cnn.recipe, make_net, train, seed, initialize=family.initialize), None
    if arm == "lp_ft" and budget < 2:
        raise StudybenchError(f"arm lp_ft needs two or more epochs (a probe, then fine-tuning), not {budget}")
    recipe = {"arm": arm, "cnn": cnn.recipe, "crop_padding": cnn_params.crop_padding,
              "flip": cnn_params.flip, "trunk_lr_scale": 1.0 if arm == "cnn_finetune_full" else trunk_lr_scale,
              "dense": dense, "dropout": dropout, "tta": tta_level(cnn_params)}
    if arm == "lp_ft":
        recipe["probe_epochs"] = 1
    if "ae" in NEEDS[arm]:
        recipe["ae"] = ae.recipe

    def prepare(net: TransferNet) -> None:
        sources = [("cnn", cnn)] if "cnn" in NEEDS[arm] else []
        sources += [("ae", ae)] if "ae" in NEEDS[arm] else []
        for part, (which, source) in zip(net.parts, sources):
            _load_part(part, source, which)

    return ImageModel(recipe, make_net, train, seed), prepare
