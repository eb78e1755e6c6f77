"""The built-in demo images: SYNTHETIC 32x32 pictures of ten pattern classes, drawn
from a fixed seed in a fraction of a second (nothing is shipped or downloaded).

They exist so that ``studybench demo`` and the tests can run the whole image study
anywhere; no number measured on them says anything about real photographs. Each
class is a pattern (stripes, checks, rings, a cross, ...) in a random colour, at a
random phase, over a random background with noise, so a network has to learn shapes,
not colours, and patterns learned on one block of classes help on the other.
"""

from __future__ import annotations

import numpy as np
import torch

from studybench.data.images import ImageData, ImageSet

CLASSES = ("h_stripes", "v_stripes", "diagonal", "checks", "ring", "square", "cross", "dots",
           "gradient", "blob")
SIZE = 32


def _mask(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A [SIZE, SIZE] float mask in [0, 1] of one class's pattern."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    period = rng.uniform(5, 9)
    phase = rng.uniform(0, period)
    cy, cx = rng.uniform(10, 22, size=2)
    if kind == "h_stripes":
        return ((y + phase) % period < period / 2).astype(np.float32)
    if kind == "v_stripes":
        return ((x + phase) % period < period / 2).astype(np.float32)
    if kind == "diagonal":
        return ((x + y + phase) % period < period / 2).astype(np.float32)
    if kind == "checks":
        return (((x + phase) // (period / 2) + (y + phase) // (period / 2)) % 2).astype(np.float32)
    r = np.hypot(y - cy, x - cx)
    if kind == "ring":
        radius = rng.uniform(6, 11)
        return (np.abs(r - radius) < 2).astype(np.float32)
    if kind == "square":
        half = rng.uniform(5, 9)
        return ((np.abs(y - cy) < half) & (np.abs(x - cx) < half)).astype(np.float32)
    if kind == "cross":
        return ((np.abs(y - cy) < 2) | (np.abs(x - cx) < 2)).astype(np.float32)
    if kind == "dots":
        return (((x + phase) % period - period / 2) ** 2 + ((y + phase) % period - period / 2) ** 2 < 3).astype(np.float32)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        g = (np.cos(angle) * (x - 16) + np.sin(angle) * (y - 16)) / 32 + 0.5
        return np.clip(g, 0, 1)
    return np.exp(-(r ** 2) / (2 * rng.uniform(3, 6) ** 2))  # blob


def _draw(kind: str, rng: np.random.Generator) -> np.ndarray:
    mask = _mask(kind, rng)[None]
    fg, bg = rng.uniform(0, 255, size=(2, 3, 1, 1))
    image = bg + (fg - bg) * mask + rng.normal(0, 25, size=(3, SIZE, SIZE))
    return np.clip(image, 0, 255).astype(np.uint8)


def _images(n_per_class: int, rng: np.random.Generator) -> ImageSet:
    labels = np.repeat(np.arange(len(CLASSES)), n_per_class)
    images = np.stack([_draw(CLASSES[c], rng) for c in labels])
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), CLASSES)


def demo_images(n_train: int = 300, n_test: int = 60, seed: int = 0) -> ImageData:
    """``n_train`` training and ``n_test`` test images per class (the same for the same seed)."""
    from pathlib import Path

    rng = np.random.default_rng(seed)
    return ImageData("demo", Path("builtin:demo-images"), _images(n_train, rng), _images(n_test, rng))
