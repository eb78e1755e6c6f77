"""Transfer from block 1 to block 2: the arms of a fair comparison, and the one place
that turns a recipe back into a network.

Every arm trains on the same block-2 split with the same budget:

- ``scratch``: the block-1 CNN's architecture, freshly initialised;
- ``cnn_frozen`` / ``cnn_finetune``: the block-1 CNN's convolutional trunk, fixed or
  trained at ``trunk_lr_scale`` times the learning rate, under a new head;
- ``ae_frozen`` / ``ae_finetune``: the block-1 autoencoder's encoder, the same way,
  under Dense 256 -> Dropout 0.5 -> output;
- ``cnn_ae_concat``: the study's combined model done correctly: the encoder's code
  (not the reconstruction) beside the CNN trunk's features, both fine-tuned.

A pretrained part keeps its own input scaling (block-1 statistics); augmentation
happens once, before every part sees the batch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from studybench.config import from_dict
from studybench.errors import StudybenchError
from studybench.models.image.autoencoder import FlatEncoder
from studybench.models.image.cnn import ConvTrunk, make_head
from studybench.models.image.layers import Frozen, Preprocess, mlp
from studybench.models.image.model import ImageModel

ARMS = ("scratch", "cnn_frozen", "cnn_finetune", "ae_frozen", "ae_finetune", "cnn_ae_concat")
NEEDS = {"scratch": (), "cnn_frozen": ("cnn",), "cnn_finetune": ("cnn",), "ae_frozen": ("ae",),
         "ae_finetune": ("ae",), "cnn_ae_concat": ("cnn", "ae")}


class TransferNet(nn.Module):
    """raw images -> augmentation -> each pretrained part (own scaling) -> concatenated -> head."""

    def __init__(self, augment: Preprocess, parts: list[nn.Module], head: nn.Module, frozen: bool,
                 trunk_lr_scale: float):
        super().__init__()
        self.augment = augment
        self.parts = nn.ModuleList(Frozen(p) if frozen else p for p in parts)
        self.head, self.trunk_lr_scale = head, trunk_lr_scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.augment.maybe_augment(images)
        return self.head(torch.cat([part(x) for part in self.parts], dim=1))

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """The pretrained parts learn more slowly than the new head."""
        parts = [p for p in self.parts.parameters() if p.requires_grad]
        groups = [{"params": list(self.head.parameters()), "lr": lr}]
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
    cnn = _params(recipe["cnn"]) if "cnn" in NEEDS[arm] else None
    if cnn is not None:
        trunk = ConvTrunk(cnn, image_size)
        parts.append(nn.Sequential(_scaler(cnn), trunk))
        widths += trunk.out_features
    if "ae" in NEEDS[arm]:
        from studybench.models.image.autoencoder import Encoder

        ae = _params(recipe["ae"])
        encoder = FlatEncoder(Encoder(ae, image_size))
        parts.append(nn.Sequential(_scaler(ae), encoder))
        widths += encoder.out_features
    if arm in ("cnn_frozen", "cnn_finetune"):
        head = make_head(cnn, parts[0][1], n_classes)
    else:
        head = mlp(widths, (recipe["dense"],), n_classes, "relu", recipe["dropout"])
    augment = Preprocess("raw", recipe["crop_padding"], recipe["flip"])
    return TransferNet(augment, parts, head, arm.endswith("_frozen"), recipe["trunk_lr_scale"])


def _load_part(part: nn.Module, source: ImageModel, which: str) -> None:
    """Copy a block-1 model's scaling statistics and trunk (or encoder) into ``part``."""
    part = part.module if isinstance(part, Frozen) else part
    scaler, body = part[0], part[1]
    scaler.load_state_dict(source.net_.preprocess.state_dict())
    if which == "cnn":
        body.load_state_dict(source.net_.trunk.state_dict())
    else:
        body.encoder.load_state_dict(source.net_.encoder.state_dict())


def transfer_model(arm: str, cnn: ImageModel | None, ae: ImageModel | None, seed: int,
                   trunk_lr_scale: float = 0.1, dense: int = 256, dropout: float = 0.5, epochs: int = 0):
    """``(model, prepare)``: an unfitted block-2 model for ``arm`` and the function that
    loads the block-1 weights into its network before training. Every arm trains with
    the block-1 CNN's recipe for ``epochs`` epochs; 0 keeps the CNN's own epochs, at most
    its ``transfer_epochs`` when that is set."""
    if arm not in ARMS:
        raise StudybenchError(f"unknown transfer arm '{arm}' (known: {', '.join(ARMS)})")
    if cnn is None or cnn.task != "classification" or "model" not in cnn.recipe:
        raise StudybenchError("transfer needs a block-1 CNN classifier (--set transfer.cnn=NAME)")
    if "ae" in NEEDS[arm] and (ae is None or ae.task != "reconstruction"):
        raise StudybenchError(f"arm {arm} needs a block-1 autoencoder (conv_autoencoder)")
    cnn_params = _params(cnn.recipe)
    own = cnn_params.train.epochs
    budget = epochs or (min(own, cnn_params.transfer_epochs) if cnn_params.transfer_epochs else own)
    train = replace(cnn_params.train, epochs=budget)
    if arm == "scratch":
        return ImageModel(cnn.recipe, make_net, train, seed), None
    recipe = {"arm": arm, "cnn": cnn.recipe, "crop_padding": cnn_params.crop_padding,
              "flip": cnn_params.flip, "trunk_lr_scale": trunk_lr_scale, "dense": dense, "dropout": dropout}
    if "ae" in NEEDS[arm]:
        recipe["ae"] = ae.recipe

    def prepare(net: TransferNet) -> None:
        sources = [("cnn", cnn)] if "cnn" in NEEDS[arm] else []
        sources += [("ae", ae)] if "ae" in NEEDS[arm] else []
        for part, (which, source) in zip(net.parts, sources):
            _load_part(part, source, which)

    return ImageModel(recipe, make_net, train, seed), prepare
