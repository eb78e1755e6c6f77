"""Image data: the official CIFAR-10 / CIFAR-100 python pickles, folders of images
per class, and the class blocks of the transfer study.

A dataset is held as one uint8 tensor ``[N, 3, H, W]`` plus int64 labels; pixels
are normalised and augmented later, a batch at a time, inside the network (see
:mod:`studybench.models.image.layers`). CIFAR pickles are read with an unpickler
that only rebuilds NumPy arrays: a pickle that names any other global (the way a
malicious pickle runs code) is refused before anything is executed.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from studybench.errors import StudybenchError


@dataclass(frozen=True)
class CifarLayout:
    """Where the official "python version" archive keeps things."""

    name: str
    folder: str  # the folder the archive unpacks to
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str
    url: str
    md5: str  # the archive's published checksum


LAYOUTS = {
    "cifar10": CifarLayout("cifar10", "cifar-10-batches-py",
                           tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                           "batches.meta", "labels", "label_names",
                           "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                           "c58f30108f718f92721af3b95e74349a"),
    "cifar100": CifarLayout("cifar100", "cifar-100-python", ("train",), ("test",), "meta",
                            "fine_labels", "fine_label_names",
                            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                            "eb9058c3a382ffc7106e4002c42a8d85"),
}
DATASETS = ("auto", *LAYOUTS, "folder")


@dataclass(frozen=True)
class ImageSet:
    """Images as one uint8 tensor ``[N, 3, H, W]``, labels ``[N]`` indexing ``classes``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray | torch.Tensor) -> "ImageSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], self.classes)


@dataclass(frozen=True)
class ImageData:
    """A dataset's training and test images; ``test`` is None when the source has none."""

    name: str  # cifar10 | cifar100 | folder
    source: Path
    train: ImageSet
    test: ImageSet | None


# --------------------------------------------------------------------------- pickles


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # NumPy 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allowed list (it could run code)."""


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and NumPy arrays; any other global is refused."""

    # _codecs.encode: how Python 3 writes bytes at protocol 2 (text in, bytes out; it runs nothing).
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise RefusedGlobal(f"refused to load {module}.{name} (only NumPy arrays are allowed)")
        if name == "_reconstruct":
            return _reconstruct()
        if module == "_codecs":
            import _codecs

            return _codecs.encode
        return getattr(np, name)


def read_pickle(path: Path) -> dict[str, object]:
    """A CIFAR pickle as a dict with text keys, read with :class:`ArrayUnpickler`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StudybenchError(f"{path}: file not found") from None
    except OSError as exc:
        raise StudybenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except RefusedGlobal as exc:
        raise StudybenchError(f"{path}: not a CIFAR pickle ({exc})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, MemoryError) as exc:
        raise StudybenchError(f"{path}: truncated or corrupt pickle ({exc})") from None
    if not isinstance(data, dict):
        raise StudybenchError(f"{path}: not a CIFAR pickle (holds a {type(data).__name__}, not a dict)")
    return {k.decode("latin-1") if isinstance(k, bytes) else str(k): v for k, v in data.items()}


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _read_batches(folder: Path, names: tuple[str, ...], layout: CifarLayout,
                  n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for name in names:
        path = folder / name
        batch = read_pickle(path)
        data, y = batch.get("data"), batch.get(layout.label_key)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise StudybenchError(f"{path}: 'data' is not a uint8 array of N x 3072 pixels")
        if y is None or len(y) != len(data):
            raise StudybenchError(f"{path}: '{layout.label_key}' missing or not one label per image")
        y = np.asarray(y, dtype=np.int64)
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise StudybenchError(f"{path}: a label is outside 0..{n_classes - 1}")
        images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))  # R, G, B planes
        labels.append(torch.from_numpy(y))
    return torch.cat(images), torch.cat(labels)


def read_cifar(folder: str | Path, dataset: str) -> ImageData:
    """Read an unpacked official CIFAR python archive (the folder holding the batches)."""
    layout, folder = LAYOUTS[dataset], Path(folder)
    meta = read_pickle(folder / layout.meta)
    names = meta.get(layout.names_key)
    if not isinstance(names, list) or not names:
        raise StudybenchError(f"{folder / layout.meta}: no '{layout.names_key}' list of class names")
    classes = tuple(_text(n) for n in names)
    train = ImageSet(*_read_batches(folder, layout.train, layout, len(classes)), classes)
    test = ImageSet(*_read_batches(folder, layout.test, layout, len(classes)), classes)
    return ImageData(dataset, folder, train, test)


# --------------------------------------------------------------------------- image folders

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}


def _read_class_folders(root: Path, size: int) -> ImageSet:
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise StudybenchError(f"{root}: no class folders (expected {root}/<class>/<image files>)")
    if len(class_dirs) < 2:
        raise StudybenchError(f"{root}: one class folder ({class_dirs[0].name}); a classifier needs at least "
                              "two classes (and the study two per class block)")
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(f for f in class_dir.iterdir() if f.is_file() and not f.name.startswith("."))
        if not files:
            raise StudybenchError(f"{class_dir}: class folder without images")
        for path in files:
            try:
                with Image.open(path) as image:
                    image = image.convert("RGB")
                    if image.size != (size, size):
                        image = image.resize((size, size), Image.Resampling.BILINEAR)
                    images.append(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                raise StudybenchError(f"{path}: not a readable image") from None
            labels.append(label)
    return ImageSet(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long),
                    tuple(d.name for d in class_dirs))


def read_image_folder(root: str | Path, size: int = 32) -> ImageData:
    """``root/<class>/*.png`` (all training data) or ``root/train/<class>/…`` and
    ``root/test/<class>/…``. Images are converted to RGB and resized to ``size`` pixels."""
    root = Path(root)
    if (root / "train").is_dir():
        train = _read_class_folders(root / "train", size)
        test = _read_class_folders(root / "test", size) if (root / "test").is_dir() else None
        if test is not None and test.classes != train.classes:
            raise StudybenchError(f"{root / 'test'}: class folders differ from {root / 'train'}")
        return ImageData("folder", root, train, test)
    return ImageData("folder", root, _read_class_folders(root, size), None)


# --------------------------------------------------------------------------- finding the data


def detect(root: Path) -> tuple[str, Path]:
    """``(dataset, folder)`` for a folder that is or holds a CIFAR archive, else a class folder."""
    for name, layout in LAYOUTS.items():
        if (root / layout.meta).is_file():
            return name, root
        if (root / layout.folder / layout.meta).is_file():
            return name, root / layout.folder
    return "folder", root


def load_images(data: str | Path | None, dataset: str = "auto", cache: str | Path | None = None,
                size: int = 32, progress=None) -> ImageData:
    """Read ``data`` (a CIFAR folder or an image folder); without ``data``, the named
    CIFAR dataset from the cache, downloaded from its official URL when missing."""
    if dataset not in DATASETS:
        raise StudybenchError(f"unknown dataset '{dataset}' (known: {', '.join(DATASETS)})")
    if data is None:
        if dataset not in LAYOUTS:
            raise StudybenchError("--data is needed for an image folder; CIFAR-10 and CIFAR-100 "
                                  "are downloaded when --data is left out (--dataset cifar10|cifar100)")
        from studybench.data.download import fetch_cifar

        return read_cifar(fetch_cifar(LAYOUTS[dataset], cache, progress=progress), dataset)
    root = Path(data)
    if not root.is_dir():
        raise StudybenchError(f"{root}: no such folder")
    found, folder = detect(root)
    if dataset == "auto":
        dataset = found
    if dataset in LAYOUTS:
        if found != dataset:
            layout = LAYOUTS[dataset]
            raise StudybenchError(f"{root}: no {layout.folder}/{layout.meta} here; point --data at the "
                                  f"unpacked archive, or leave --data out to download {dataset}")
        return read_cifar(folder, dataset)
    return read_image_folder(root, size)


# --------------------------------------------------------------------------- class blocks


def class_blocks(n_classes: int, n_blocks: int, seed: int) -> list[list[int]]:
    """Split class ids into ``n_blocks`` disjoint blocks with a seeded permutation."""
    if not 1 <= n_blocks <= n_classes // 2:
        raise StudybenchError(f"--set data.blocks={n_blocks}: {n_classes} classes make at most "
                              f"{max(n_classes // 2, 1)} blocks of two or more classes (a classifier needs two)")
    permutation = np.random.default_rng(seed).permutation(n_classes)
    return [sorted(int(c) for c in block) for block in np.array_split(permutation, n_blocks)]


def select_classes(images: ImageSet, classes: list[int]) -> ImageSet:
    """The images of ``classes``, relabelled 0..k-1 in the order given."""
    remap = torch.full((len(images.classes),), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    keep = torch.nonzero(remap[images.labels] >= 0).squeeze(1)
    return ImageSet(images.images[keep], remap[images.labels[keep]],
                    tuple(images.classes[c] for c in classes))


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, held)`` where ``held`` is a seeded, class-stratified ``fraction``."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    y = labels.numpy()
    try:
        rest, held = train_test_split(index, test_size=fraction, random_state=seed, stratify=y)
    except ValueError as exc:
        raise StudybenchError(f"cannot hold out {fraction:g} of {len(y)} images per class ({exc})") from None
    return np.sort(rest), np.sort(held)


def keep_fraction(images: ImageSet, fraction: float, seed: int) -> ImageSet:
    """A seeded, class-stratified ``fraction`` of ``images`` (all of them at 1.0)."""
    if not 0 < fraction <= 1:
        raise StudybenchError(f"--set data.train_fraction={fraction:g}: expected a value in (0, 1]")
    if fraction == 1:
        return images
    _, kept = stratified_split(images.labels, fraction, seed)
    return images.subset(kept)
