"""Building blocks shared by the image models.

:class:`Preprocess` turns the uint8 batch into the network's input on the device:
random crop with padding and horizontal flip while training (whole-batch tensor
ops, no per-image Python), then scaling. Because it is part of the network, a
saved model takes raw pixels and carries its own normalisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studybench.errors import StudybenchError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise StudybenchError(f"--set model.activation={name}: expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class Preprocess(nn.Module):
    """``uint8 [B, 3, H, W]`` -> float input: augmentation (training only), then scaling.

    ``scale``: ``raw`` keeps 0-255 (the study), ``unit`` divides by 255, ``standard``
    subtracts the training mean and divides by the standard deviation per channel."""

    def __init__(self, scale: str = "raw", crop_padding: int = 0, flip: bool = False,
                 channels_last: bool = False, cutout: int = 0):
        super().__init__()
        if scale not in ("raw", "unit", "standard"):
            raise StudybenchError(f"--set model.scale={scale}: expected raw, unit or standard")
        if cutout < 0:
            raise StudybenchError(f"--set model.cutout={cutout}: expected 0 (off) or a square's side in pixels")
        self.scale, self.crop_padding, self.flip, self.cutout = scale, crop_padding, flip, cutout
        self.channels_last = channels_last
        self.register_buffer("mean", torch.zeros(3))  # 0-255 units; set by fit_statistics
        self.register_buffer("std", torch.ones(3))

    def fit_statistics(self, images: torch.Tensor, chunk: int = 4096) -> None:
        """Per-channel mean and std of training images (uint8 ``[N, 3, H, W]``)."""
        total, squares, count = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
        for part in images.split(chunk):
            x = part.double()
            total += x.sum(dim=(0, 2, 3))
            squares += (x * x).sum(dim=(0, 2, 3))
            count += x[:, 0].numel()
        mean = total / max(count, 1)
        self.mean.copy_(mean.float())
        self.std.copy_((squares / max(count, 1) - mean * mean).clamp(min=1e-6).sqrt().float())

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """Random translation by up to ``crop_padding`` pixels (zero padding) and flips."""
        b, _, h, w = images.shape
        if self.crop_padding:
            p = self.crop_padding
            padded = nn.functional.pad(images, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (b,), device=images.device)
            dx = torch.randint(0, 2 * p + 1, (b,), device=images.device)
            rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
            batch = torch.arange(b, device=images.device)[:, None, None, None]
            channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
            images = padded[batch, channel, rows, cols]
        if self.flip:
            flip = torch.rand(b, device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        return images

    def maybe_augment(self, images: torch.Tensor) -> torch.Tensor:
        """Augmented while training (if asked), unchanged otherwise."""
        return self.augment(images) if self.training and (self.crop_padding or self.flip) else images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._values(self.maybe_augment(images))
        if self.training and self.cutout:
            x = cut_out(x, self.cutout)  # before the layout: its mask's would undo channels-last
        return self._layout(x)

    def scaled(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels (uint8 or float 0-255) as the network's float input."""
        return self._layout(self._values(images))

    def _values(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if self.scale == "unit":
            return x / 255.0
        if self.scale == "standard":
            return (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]
        return x

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def cut_out(x: torch.Tensor, size: int) -> torch.Tensor:
    """Cutout (DeVries and Taylor 2017): a random ``size`` x ``size`` square of each scaled
    image set to 0 (the training mean with ``standard`` scaling), wholly inside the image."""
    b, _, h, w = x.shape
    size = min(size, h, w)
    top = torch.randint(0, h - size + 1, (b, 1), device=x.device)
    left = torch.randint(0, w - size + 1, (b, 1), device=x.device)
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + size)  # [B, H]
    in_cols = (cols >= left) & (cols < left + size)  # [B, W]
    return x.masked_fill(in_rows[:, None, :, None] & in_cols[:, None, None, :], 0.0)


class Frozen(nn.Module):
    """A pretrained module kept fixed: no gradients, and BatchNorm statistics never updated
    (it stays in eval mode even while the model around it trains)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self.module.eval()

    def train(self, mode: bool = True) -> "Frozen":
        super().train(mode)
        self.module.eval()
        return self

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def mlp(in_features: int, widths: tuple[int, ...], n_out: int, act: str, dropout: float) -> nn.Sequential:
    """Dense layers ``widths`` with activation and dropout, then a linear output layer."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_features, width), activation(act), nn.Dropout(dropout)]
        in_features = width
    layers.append(nn.Linear(in_features, n_out))
    return nn.Sequential(*layers)


def test_time_logits(logits, images: torch.Tensor, level: int) -> torch.Tensor:
    """Logits averaged over views of uint8 ``images``, by ``level``: 0 the image alone, 1 with
    its mirror image, 2 also both shifted by one pixel up-left and down-right (reflected
    border), the shifted views weighted half as in airbench. ``logits(images)`` scores a view."""
    if level not in (0, 1, 2):
        raise StudybenchError(f"--set model.tta={level}: expected 0, 1 or 2")

    def mirrored(x: torch.Tensor) -> torch.Tensor:
        return logits(x) if level == 0 else (logits(x) + logits(x.flip(3))) / 2

    if level < 2:
        return mirrored(images)
    padded = F.pad(images.float(), (1, 1, 1, 1), mode="reflect")  # pixels stay 0-255 floats
    h, w = images.shape[-2:]
    shifted = (mirrored(padded[..., :h, :w]) + mirrored(padded[..., 2:, 2:])) / 2
    return 0.5 * mirrored(images) + 0.5 * shifted


class TestTimeViews:
    """``with TestTimeViews(net):`` scores with the network's test-time views (its ``tta``
    level). Outside it, evaluation sees the plain image: validation during training picks
    an epoch by the weights alone, at a sixth of the cost of level 2's six views."""

    def __init__(self, net: nn.Module):
        self.net = net

    def __enter__(self) -> nn.Module:
        self.net.tta_active = True
        return self.net

    def __exit__(self, *exc) -> None:
        self.net.tta_active = False


def tta_level(params) -> int:
    """A CNN's test-time augmentation level (``tta``, or 1 for ``tta_flip``)."""
    return int(getattr(params, "tta", 1 if getattr(params, "tta_flip", False) else 0))
