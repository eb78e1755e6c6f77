"""Image classifiers of the study: ``cnn_basic``, ``cnn_tanh``, ``cnn_sigmoid_out`` and ``cnn_skip``.

One network shape serves all four: :class:`Preprocess` -> :class:`ConvTrunk`
(convolution blocks, the part that transfers) -> a head (Dense layers and the
output). The seed presets are the study's networks: three blocks of one valid
3x3 convolution (64, 128, 256) with ReLU, BatchNorm and 2x2 max-pooling,
Flatten, Dense 512 and 256 with Dropout 0.5, raw 0-255 pixels, Adam at batch 32.
The tuned presets keep the family and fix what holds it back: two same-padded
convolutions per block, global max-pooling instead of a 1,024-wide Flatten,
standardised pixels, crop-and-flip augmentation, label smoothing and a one-cycle
schedule at batch 256.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from studybench.errors import StudybenchError
from studybench.models.image.layers import Preprocess, activation, mlp, test_time_logits, tta_level
from studybench.training.engine import TrainConfig

# The study's image training: Adam, up to 40 epochs, early stopping patience 5,
# ReduceLROnPlateau factor 0.2 / patience 3 / min 1e-6, batch 32.
STUDY_TRAIN = TrainConfig(epochs=40, batch_size=32, lr=1e-3, patience=5, lr_factor=0.2,
                          lr_patience=3, min_lr=1e-6)


@dataclass(frozen=True)
class ImageParams:
    """What every image model shares: input scaling, augmentation, training."""

    scale: str = "raw"  # raw 0-255 (the study) | unit (/255) | standard (per-channel mean/std)
    crop_padding: int = 0  # random translation by up to this many pixels (0: off, the study)
    flip: bool = False  # random horizontal flips (off in the study)
    channels_last: bool = True  # NHWC memory layout: oneDNN's faster convolutions on CPU, in bf16 and in
    # fp32 too (seed presets, fp32: 1.08-1.30x at 2 threads, benchmarks/RESULTS.md); the same arithmetic
    train: TrainConfig = field(default_factory=lambda: STUDY_TRAIN)


@dataclass(frozen=True)
class CnnParams(ImageParams):
    """Convolution blocks, then Dense layers."""

    widths: tuple[int, ...] = (64, 128, 256)  # filters per block (the study's)
    convs: int = 1  # 3x3 convolutions per block
    padding: str = "valid"  # valid (the study: 32 -> 30 -> 15 -> 13 -> 6 -> 4 -> 2) | same
    activation: str = "relu"  # relu | tanh (cnn_tanh) | gelu
    residual: bool = False  # a shortcut around each block's convolutions (ResNet style)
    pooling: str = "flatten"  # flatten the last block (the study) | max over positions
    dense: tuple[int, ...] = (512, 256)  # Dense layers of the head (the study's)
    dropout: float = 0.5  # after each Dense layer (the study's)
    output: str = "softmax"  # softmax | sigmoid (the study's sigmoid output under the categorical loss)
    skip: bool = False  # the study's cnn_skip: block 2 and 3 features concatenated into the head
    tta_flip: bool = False  # at evaluation, average the logits of the image and its mirror image
    transfer_epochs: int = 0  # at most this many epochs for every block-2 arm from this CNN (0: no cap)


class ConvBlock(nn.Module):
    """``convs`` x [Conv 3x3 -> activation -> BatchNorm] (+ shortcut) -> MaxPool 2."""

    def __init__(self, c_in: int, c_out: int, p: CnnParams):
        super().__init__()
        pad = {"valid": 0, "same": 1}.get(p.padding)
        if pad is None:
            raise StudybenchError(f"--set model.padding={p.padding}: expected valid or same")
        if p.residual and pad == 0:
            raise StudybenchError("--set model.residual=true needs model.padding=same")
        layers: list[nn.Module] = []
        for i in range(p.convs):
            layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=pad, bias=False),
                       activation(p.activation), nn.BatchNorm2d(c_out)]
        self.convs = nn.Sequential(*layers)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()) \
            if p.residual else None
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs(x)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.pool(y)


class ConvTrunk(nn.Module):
    """Scaled images ``[B, 3, H, W]`` -> features ``[B, out_features]``.

    With ``skip`` the features are the last block's, then the block before it, both
    flattened (``last_features`` says where the first part ends)."""

    def __init__(self, p: CnnParams, image_size: int = 32):
        super().__init__()
        if p.pooling not in ("flatten", "max"):
            raise StudybenchError(f"--set model.pooling={p.pooling}: expected flatten or max")
        widths = (3, *p.widths)
        self.blocks = nn.ModuleList(ConvBlock(widths[i], widths[i + 1], p) for i in range(len(p.widths)))
        self.pooling, self.skip = p.pooling, p.skip
        with torch.no_grad():  # sizes come from the data's shape, not from arithmetic by hand
            shapes = [f.shape for f in self._blocks(torch.zeros(1, 3, image_size, image_size))]
        if any(min(s[2:]) < 1 for s in shapes):
            raise StudybenchError(f"{image_size}-pixel images are too small for {len(p.widths)} blocks")
        self.last_features = self._pool_size(shapes[-1])
        self.out_features = self.last_features + (self._pool_size(shapes[-2]) if p.skip else 0)

    def _pool_size(self, shape: torch.Size) -> int:
        return shape[1] if self.pooling == "max" else shape[1] * shape[2] * shape[3]

    def _blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3)) if self.pooling == "max" else x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = self._blocks(x)
        features = self._pool(outputs[-1])
        if self.skip:
            features = torch.cat([features, self._pool(outputs[-2])], dim=1)
        return features


class SkipHead(nn.Module):
    """The study's skip head: Dense 512 on the last block, concatenated with both
    blocks' features, then the remaining Dense layers and the output."""

    def __init__(self, trunk: ConvTrunk, n_classes: int, p: CnnParams):
        super().__init__()
        if not p.dense:
            raise StudybenchError("cnn_skip needs at least one Dense layer (--set model.dense)")
        self.last = trunk.last_features
        self.first = nn.Sequential(nn.Linear(self.last, p.dense[0]), activation(p.activation))
        self.rest = nn.Sequential(nn.Dropout(p.dropout),
                                  mlp(p.dense[0] + trunk.out_features, p.dense[1:], n_classes,
                                      p.activation, p.dropout))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.rest(torch.cat([self.first(features[:, : self.last]), features], dim=1))


class SigmoidOutput(nn.Module):
    """Logits whose softmax equals sigmoid outputs normalised to sum 1: what Keras's
    categorical cross-entropy does with a sigmoid output layer (the study's variant)."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.logsigmoid(self.head(features))


def make_head(p: CnnParams, trunk: ConvTrunk, n_classes: int) -> nn.Module:
    head = SkipHead(trunk, n_classes, p) if p.skip else mlp(trunk.out_features, p.dense, n_classes,
                                                            p.activation, p.dropout)
    if p.output not in ("softmax", "sigmoid"):
        raise StudybenchError(f"--set model.output={p.output}: expected softmax or sigmoid")
    return SigmoidOutput(head) if p.output == "sigmoid" else head


class ImageClassifier(nn.Module):
    """raw uint8 images -> logits: preprocess, trunk, head; when scoring test images
    (:class:`TestTimeViews`), averaged over the views of ``tta`` (:func:`test_time_logits`:
    1 adds the mirrored image)."""

    def __init__(self, preprocess: Preprocess, trunk: nn.Module, head: nn.Module, tta: int = 0):
        super().__init__()
        self.preprocess, self.trunk, self.head, self.tta = preprocess, trunk, head, tta
        self.tta_active = False

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(self.preprocess(images)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training or not (self.tta and self.tta_active):
            return self._logits(images)
        return test_time_logits(self._logits, images, self.tta)


def preprocess_for(p: ImageParams) -> Preprocess:
    return Preprocess(p.scale, p.crop_padding, p.flip, p.channels_last)


def make_cnn(p: CnnParams, n_classes: int, image_size: int = 32) -> ImageClassifier:
    """The classifier network for ``p`` (weights drawn from torch's current seed)."""
    trunk = ConvTrunk(p, image_size)
    return ImageClassifier(preprocess_for(p), trunk, make_head(p, trunk, n_classes), tta_level(p))


# --------------------------------------------------------------------------- registry

from studybench.models.image.model import image_builder  # noqa: E402
from studybench.registry import ModelSpec, register  # noqa: E402

# Tuned for every CNN, sized for the whole image study to fit 75 minutes on 2 CPU cores:
# widths 32/64/128 with two same-padded convolutions per block (1,210 images/s with bf16 +
# channels-last, against 343 for 64/128/256), global max-pooling into a linear head,
# standardised pixels, 2-pixel crops and flips, label smoothing 0.1, AdamW with a one-cycle
# schedule over 16 epochs (early stopping would cut the annealing short), and test-time
# flips. Precision "auto": bf16 autocast (with channels-last) trains 2.7x faster than fp32
# on a CPU with native bf16 at no measured accuracy cost, and 7-12x slower where bf16 is
# emulated (AVX2 only), so it is used only where native; --set train.precision=32 forces
# the fp32 reference.
# CIFAR-10 block 1 (bird, cat, deer, frog, horse), seed 0: 0.837 test accuracy after 12
# epochs without test-time flips, 0.856 with 16 epochs and flips. The transfer arms train
# 10 epochs each (same budget for every arm): at 16 the study took about 90 minutes.
_TUNED = {"scale": "standard", "crop_padding": 2, "flip": True, "padding": "same", "convs": 2,
          "widths": (32, 64, 128), "pooling": "max", "dense": (), "dropout": 0.0, "tta_flip": True,
          "channels_last": True, "train.precision": "auto",
          "train.epochs": 16, "train.patience": 16, "transfer_epochs": 10, "train.batch_size": 256, "train.lr": 3e-3,
          "train.weight_decay": 5e-4, "train.schedule": "onecycle", "train.label_smoothing": 0.1}

_FEATURES = ("images",)
for _name, _summary, _seed, _tuned in [
    ("cnn_basic", "3 conv blocks (64, 128, 256) + Dense 512, 256; tuned: 2 convs per block (32, 64, 128), max-pooled",
     {}, {}),
    ("cnn_tanh", "cnn_basic with tanh in every hidden layer", {"activation": "tanh"}, {"activation": "tanh"}),
    ("cnn_sigmoid_out", "cnn_basic with a sigmoid output layer under the categorical loss",
     {"output": "sigmoid"}, {"output": "sigmoid"}),
    ("cnn_skip", "cnn_basic with block 2 and 3 features fed to the head; tuned: residual blocks",
     {"skip": True}, {"residual": True}),
]:
    register(ModelSpec(name=_name, study="images", family="cnn", summary=_summary, params=CnnParams,
                       build=image_builder(_name, make_cnn, trunk=ConvTrunk, head=make_head), features=_FEATURES,
                       presets={"seed": _seed, "tuned": {**_TUNED, **_tuned}}))
