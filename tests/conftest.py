"""Shared fixtures and helpers for the studybench tests.

Unit tests build their inputs here, tiny and inside ``tmp_path``. Tests marked
``realdata`` read the real files from ``$STUDYBENCH_DATA`` (default
``<repo root>/../shared/data``) through the ``data_dir`` fixture: absent data is
a skip locally and a failure where ``STUDYBENCH_REQUIRE_DATA=1`` (CI).
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

# Ray, when a test starts a cluster: keep "127.0.0.1" on loopback (on Linux Ray otherwise swaps
# it for the machine's network address, which its own processes here cannot reach). Ray reads
# this once, when it is imported, so it is set before any test module imports it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# Caches the tool keeps between commands (downloads, Ray checkpoints, the preparation shared by
# workers) go to a folder of this test session, never the user's ~/.cache; subprocesses and Ray
# workers inherit it.
_TEST_CACHE = os.environ["STUDYBENCH_CACHE"] = tempfile.mkdtemp(prefix="studybench-tests-cache-")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_TEST_CACHE, ignore_errors=True)

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"

# Words that lean towards each genre in the synthetic corpora below: distinct per genre,
# each used by several songs so that min_df=2 (the tuned TF-IDF preset) keeps them.
GENRE_WORDS = {
    "rock": "guitar thunder highway engine storm steel".split(),
    "pop": "dance party glitter summer kiss radio".split(),
    "jazz": "saxophone velvet lounge trumpet swing piano".split(),
}
SHARED_WORDS = "love night heart time world light".split()


def neural_lyrics_models() -> list[str]:
    """Every registered neural lyrics model (the ones built from a trunk factory)."""
    from studybench import registry

    return [n for n in registry.names("lyrics") if hasattr(registry.get(n).build, "make_trunk")]


def write_glove(path: Path, words, dim: int = 8) -> Path:
    """A tiny GloVe text file; each word's vector is distinct and deterministic."""
    lines = [" ".join([w] + [f"{(i + 1) * 0.01 + k * 0.001:.4f}" for k in range(dim)])
             for i, w in enumerate(words)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """Write a CSV with the csv module (quotes multi-line fields, commas and quotes properly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def lyric(genre: str, i: int, n_words: int = 12) -> str:
    """A short, deterministic, multi-line lyric leaning towards ``genre``."""
    words = GENRE_WORDS[genre]
    picked = [words[(i + k) % len(words)] if k % 2 == 0 else SHARED_WORDS[(i * 3 + k) % len(SHARED_WORDS)]
              for k in range(n_words)]
    picked.append(f"uniq{genre}{i}")  # keeps every song's cleaned text distinct (no dedupe)
    half = len(picked) // 2
    return " ".join(picked[:half]).capitalize() + ",\n" + " ".join(picked[half:]) + "!"


def canonical_frame(per_class: int = 8, genres=("rock", "pop", "jazz"), artists_per_genre: int = 4,
                    artist_prefix: str = "Artist") -> pd.DataFrame:
    """A tiny canonical frame (row, text, label, artist, language, song) of cleaned-looking text."""
    rows = []
    for g, genre in enumerate(genres):
        for i in range(per_class):
            text = lyric(genre, i).replace(",", "").replace("!", "").replace("\n", " ").lower()
            rows.append({"row": len(rows) + 1, "text": text, "label": genre,
                         "artist": f"{artist_prefix} {genre} {i % artists_per_genre}",
                         "language": "en", "song": f"{genre}-{i}"})
    return pd.DataFrame(rows)


def kaggle_train_rows(per_class: int = 8, genres=("rock", "pop", "jazz"), artists_per_genre: int = 4,
                      artist_prefix: str = "Artist") -> list[list[str]]:
    """Rows in the Kaggle train.csv schema (Artist, Song, Genre, Language, Lyrics)."""
    rows = []
    for genre in genres:
        for i in range(per_class):
            rows.append([f"{artist_prefix} {genre} {i % artists_per_genre}", f"{genre} song {i}",
                         genre.title(), "en", lyric(genre, i)])
    return rows


KAGGLE_TRAIN_HEADER = ["Artist", "Song", "Genre", "Language", "Lyrics"]


@pytest.fixture
def tiny_train_csv(tmp_path: Path) -> Path:
    """A labelled Kaggle-train-schema CSV of 24 songs by 12 artists in 3 genres."""
    return write_rows(tmp_path / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows())


# --------------------------------------------------------------------------- real data


def _real_data_root() -> Path:
    return Path(os.environ.get("STUDYBENCH_DATA") or DEFAULT_DATA)


def _missing(what: str) -> None:
    message = f"real data not found at {what}; set STUDYBENCH_DATA"
    if os.environ.get("STUDYBENCH_REQUIRE_DATA") == "1":
        pytest.fail(message + " (STUDYBENCH_REQUIRE_DATA=1 makes absent data a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder ($STUDYBENCH_DATA, default <repo root>/../shared/data)."""
    root = _real_data_root()
    if not root.is_dir():
        _missing(str(root))
    return root


def _real_file(data_dir: Path, relative: str) -> Path:
    path = data_dir / relative
    if not path.is_file():
        _missing(str(path))
    return path


@pytest.fixture(scope="session")
def tcc_path(data_dir: Path) -> Path:
    return _real_file(data_dir, "lyrics/tcc_ceds_music.csv")


@pytest.fixture(scope="session")
def mlgc_path(data_dir: Path) -> Path:
    return _real_file(data_dir, "lyrics/mlgc_cosc426_sample.csv")


@pytest.fixture(scope="session")
def cifar10_dir(data_dir: Path) -> Path:
    path = data_dir / "cifar10-jpeg-q75"
    if not (path / "cifar-10-batches-py" / "batches.meta").is_file():
        _missing(str(path))
    return path


# --------------------------------------------------------------------------- tiny CIFAR files


def cifar_batch(n_per_class: int, n_classes: int, seed: int = 0):
    """``(data uint8 [N, 3072], labels list)``: each class has its own colour cast, so a small
    network can learn them; pixels are noisy so they are not trivially equal."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    data = rng.integers(0, 80, (len(labels), 3, 32, 32)).astype(np.uint8)
    for c in range(n_classes):
        data[labels == c, c % 3] += np.uint8(60 + 15 * (c // 3))
    return data.reshape(len(labels), -1), labels.tolist()


def write_cifar(root: Path, kind: str = "cifar10", n_train: int = 10, n_test: int = 4,
                n_classes: int = 10, protocol: int = 2) -> Path:
    """A small archive folder in the official layout (``cifar-10-batches-py`` or
    ``cifar-100-python``) under ``root``, with ``n_train``/``n_test`` images per class.
    Keys are bytes, as in the official Python 2 pickles."""
    import pickle

    if kind == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(1, 6):  # the training images spread over five batches, as in the original
            data, labels = cifar_batch(n_train, n_classes, seed=i)
            keep = slice(i - 1, None, 5)
            (folder / f"data_batch_{i}").write_bytes(pickle.dumps(
                {b"batch_label": b"training batch", b"labels": labels[keep], b"data": data[keep]},
                protocol=protocol))
        data, labels = cifar_batch(n_test, n_classes, seed=9)
        (folder / "test_batch").write_bytes(pickle.dumps({b"labels": labels, b"data": data}, protocol=protocol))
        (folder / "batches.meta").write_bytes(pickle.dumps(
            {b"label_names": [f"class{c}".encode() for c in range(n_classes)]}, protocol=protocol))
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        for name, n, seed in (("train", n_train, 1), ("test", n_test, 9)):
            data, labels = cifar_batch(n, n_classes, seed)
            (folder / name).write_bytes(pickle.dumps(
                {b"fine_labels": labels, b"coarse_labels": [c // 5 for c in labels], b"data": data},
                protocol=protocol))
        (folder / "meta").write_bytes(pickle.dumps(
            {b"fine_label_names": [f"fine{c}".encode() for c in range(n_classes)],
             b"coarse_label_names": [f"coarse{c}".encode() for c in range(n_classes // 5)]}, protocol=protocol))
    return folder
