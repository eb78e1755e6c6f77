"""Batch prediction with a bundle: read inputs, score them in batches, keep the top k.

Lyrics inputs: ``-`` (stdin, one song), a CSV (one song per row; the lyrics column and
an optional artist column found by name or given), or any other file (one song per
file). Image inputs: image files, or folders searched for images. Every result row
names its input (file, ``file:row`` or ``stdin``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from studybench.bundles import Bundle
from studybench.errors import StudybenchError

TEXT_COLUMNS = ("lyrics", "lyric", "text")
ARTIST_COLUMNS = ("artist", "artist_name")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}


def _column(frame: pd.DataFrame, given: str | None, known: tuple[str, ...], path: Path, what: str) -> str | None:
    if given:
        if given not in frame.columns:
            raise StudybenchError(f"{path}: no column {given!r} (columns: {', '.join(map(str, frame.columns))})")
        return given
    lower = {str(c).lower(): c for c in frame.columns}
    for name in known:
        if name in lower:
            return lower[name]
    if what == "lyrics":
        raise StudybenchError(f"{path}: no lyrics column (columns: {', '.join(map(str, frame.columns))}); "
                              f"name it with --text-column")
    return None


def read_lyrics_inputs(inputs: list[str], text_column: str | None = None,
                       artist_column: str | None = None, artist: str | None = None) -> pd.DataFrame:
    """``input, text, artist`` rows from stdin, CSV files and text files."""
    from studybench.data.lyrics import read_csv

    rows = []
    for item in inputs or ["-"]:
        if item == "-":
            raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise StudybenchError(f"stdin: not UTF-8 text (byte {exc.start})") from None
            rows.append(("stdin", text, artist or ""))
            continue
        path = Path(item)
        if not path.is_file():
            raise StudybenchError(f"{path}: no such file")
        if path.name.lower().endswith((".csv", ".csv.gz")):
            frame = read_csv(path)
            text_col = _column(frame, text_column, TEXT_COLUMNS, path, "lyrics")
            artist_col = _column(frame, artist_column, ARTIST_COLUMNS, path, "artist")
            for i, record in enumerate(frame.to_dict("records"), start=1):
                rows.append((f"{path.name}:{i}", str(record[text_col] or ""),
                             str(record[artist_col] or "") if artist_col else (artist or "")))
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise StudybenchError(f"{path}: not UTF-8 text") from None
        rows.append((path.name, text, artist or ""))
    frame = pd.DataFrame(rows, columns=["input", "text", "artist"])
    empty = frame[frame["text"].str.strip() == ""]
    if len(empty):
        raise StudybenchError(f"{empty['input'].iloc[0]}: empty lyrics")
    return frame


def image_paths(inputs: list[str]) -> list[Path]:
    """Image files named, and images found under folders named (sorted)."""
    paths = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise StudybenchError(f"{path}: no image files in this folder")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise StudybenchError(f"{path}: no such file or folder")
    if not paths:
        raise StudybenchError("no images given")
    return paths


def load_image(source, size: int, name: str = "image") -> np.ndarray:
    """An RGB image (path, bytes or file object) as uint8 ``[3, size, size]``."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        with Image.open(handle) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise StudybenchError(f"{name}: not a readable image") from None


def check_prediction_options(k: int, batch_size: int = 1) -> None:
    """The same limits for the command line and the Python API (the service's request model
    has its own, tighter bounds)."""
    if not isinstance(k, int) or k < 1:
        raise StudybenchError(f"--top-k {k}: expected a whole number ≥ 1")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise StudybenchError(f"--batch-size {batch_size}: expected a whole number ≥ 1")


def top_k(scores: np.ndarray, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` best classes per row, best first."""
    k = max(1, min(k, len(classes)))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(classes[j], float(scores[i, j])) for j in row] for i, row in enumerate(order)]


def predict(bundle: Bundle, inputs: list[str], k: int = 3, batch_size: int = 256,
            text_column: str | None = None, artist_column: str | None = None, artist: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> tuple[list[str], list, str]:
    """``(input names, top-k per input, score kind)`` for lyrics or image inputs."""
    check_prediction_options(k, batch_size)
    if bundle.study == "lyrics":
        frame = read_lyrics_inputs(inputs, text_column, artist_column, artist)
        names, batches = frame["input"].tolist(), _batches(len(frame), batch_size)

        def score(part):
            rows = frame.iloc[part]
            return bundle.predict_lyrics(rows["text"].tolist(), rows["artist"].tolist())
    else:
        import torch

        paths = image_paths(inputs)
        names, batches = [str(p) for p in paths], _batches(len(paths), batch_size)

        def score(part):
            images = torch.from_numpy(np.stack([load_image(paths[i], bundle.image_size, str(paths[i])) for i in part]))
            return bundle.predict_images(images)
    results, kind = [], "probability"
    for done, part in enumerate(batches):
        scores, kind = score(part)
        kind = "probability" if kind == "probability" else "score"  # e.g. an SVM's decision function
        results += top_k(scores, bundle.classes, k)
        if progress:
            progress(min((done + 1) * batch_size, len(names)), len(names))
    return names, results, kind


def _batches(n: int, size: int) -> Iterable[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]
