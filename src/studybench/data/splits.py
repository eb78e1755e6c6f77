"""Seeded train / validation / test splits, stratified by genre as far as possible.

- ``random``: song level, as the study did (artists leak across the split);
- ``artist``: grouped, so no artist is in two of train, validation and test;
- ``file``: test is a separate labelled file; validation is carved from the
  training file, grouped by artist where artists are known.
Songs without an artist form a group each, so they can never leak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from studybench.config import SplitConfig
from studybench.errors import StudybenchError


@dataclass(frozen=True)
class LyricsSplit:
    """The three parts of one seeded split, in the canonical frame."""

    kind: str
    seed: int
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def summary(self) -> dict:
        """Sizes, class counts and artist overlap: the facts a reader needs to trust a number."""
        parts = {"train": self.train, "val": self.val, "test": self.test}
        artists = {k: set(v["artist"][v["artist"] != ""]) for k, v in parts.items()}
        return {
            "kind": self.kind,
            "seed": self.seed,
            "sizes": {k: len(v) for k, v in parts.items()},
            "class_counts": {
                k: {str(c): int(n) for c, n in v["label"].value_counts().sort_index().items()}
                for k, v in parts.items()
            },
            "artists": {k: len(v) for k, v in artists.items()},
            "artists_shared_train_test": len(artists["train"] & artists["test"]),
            "artists_shared_train_val": len(artists["train"] & artists["val"]),
            "test_songs_by_known_artists": int(self.test["artist"].isin(artists["train"]).sum()),
        }


def _groups(frame: pd.DataFrame) -> np.ndarray:
    """Artist names as groups; a song without an artist is its own group."""
    artist = frame["artist"].to_numpy(dtype=object)
    missing = artist == ""
    artist = artist.copy()
    artist[missing] = [f"\0song{r}" for r in frame["row"].to_numpy()[missing]]
    return artist


def _can_stratify(labels: pd.Series, parts: int) -> bool:
    return labels.value_counts().min() >= parts


def _random_cut(frame: pd.DataFrame, size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    stratify = frame["label"] if _can_stratify(frame["label"], 2) else None
    keep, held = train_test_split(frame, test_size=size, random_state=seed, stratify=stratify)
    return keep, held


def _group_cut(frame: pd.DataFrame, size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out about ``size`` of the songs, whole artists at a time, genre-stratified."""
    groups = _groups(frame)
    n_groups = len(set(groups))
    n_splits = int(min(max(2, round(1 / size)), n_groups))
    if n_splits < 2:
        raise StudybenchError("the artist split needs at least two artists")
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    keep_idx, held_idx = next(folds.split(frame, frame["label"], groups))
    return frame.iloc[keep_idx], frame.iloc[held_idx]


def make_split(
    frame: pd.DataFrame,
    config: SplitConfig,
    seed: int,
    test_frame: pd.DataFrame | None = None,
    data_name: str = "--data",
    test_name: str = "",
) -> LyricsSplit:
    """Split the cleaned canonical ``frame`` (and ``test_frame`` for ``file``) for ``seed``."""
    kind = config.kind
    if not 0 < config.test_size < 1 or not 0 < config.val_size < 1:
        raise StudybenchError(f"--set split.test_size={config.test_size} and split.val_size={config.val_size}: "
                              "each must lie between 0 and 1")
    if kind != "file" and config.test_size + config.val_size >= 1:
        raise StudybenchError(
            f"--set split.test_size={config.test_size} + split.val_size={config.val_size} "
            "leaves no training songs; their sum must be below 1"
        )
    try:
        return _make_split(frame, config, seed, test_frame, data_name, test_name)
    except ValueError as exc:  # scikit-learn's refusal on too few songs per part
        reason = str(exc).splitlines()[0]
        raise StudybenchError(f"{data_name}: cannot make the {kind} split with split.test_size={config.test_size} "
                              f"and split.val_size={config.val_size} ({reason}); too few songs for these "
                              "sizes") from None


def _make_split(frame: pd.DataFrame, config: SplitConfig, seed: int,
                test_frame: pd.DataFrame | None, data_name: str, test_name: str) -> LyricsSplit:
    kind = config.kind
    has_artist = bool((frame["artist"] != "").any())
    if kind == "random":
        rest, test = _random_cut(frame, config.test_size, seed)
        train, val = _random_cut(rest, config.val_size / (1 - config.test_size), seed)
    elif kind == "artist":
        if not has_artist:
            raise StudybenchError(f"{data_name}: --split artist needs an artist column; this file has none")
        rest, test = _group_cut(frame, config.test_size, seed)
        train, val = _group_cut(rest, config.val_size / (1 - config.test_size), seed)
    elif kind == "file":
        if test_frame is None:
            raise StudybenchError("--split file needs --test-data FILE")
        test = test_frame
        cut = _group_cut if has_artist else _random_cut
        train, val = cut(frame, config.val_size, seed)
    else:
        raise StudybenchError(f"--split {kind}: unknown split kind (known: random, artist, file)")
    for name, part in (("training", train), ("validation", val), ("test", test)):
        if len(part) == 0:
            raise StudybenchError(f"{data_name}: the {name} part of the {kind} split is empty; too few songs")
    if train["label"].nunique() < 2:
        raise StudybenchError(f"{data_name}: the training part of the {kind} split holds one genre "
                              f"({train['label'].iloc[0]!r}); a classifier needs at least two")
    known = set(train["label"])
    if kind == "file":
        check_known_labels(test, known, f"--test-data {test_name}")
    else:  # a genre with too few songs (or artists) to reach training would only ever be scored wrong
        check_known_labels(test, known, f"{data_name}: the test part of the {kind} split",
                           hint="too few songs or artists of it reach training; drop it or add songs")
    return LyricsSplit(
        kind=kind,
        seed=seed,
        train=train.reset_index(drop=True),
        val=val.reset_index(drop=True),
        test=test.reset_index(drop=True),
    )


def check_known_labels(frame: pd.DataFrame, known: set[str], name: str, hint: str = "") -> None:
    """A genre never seen in training cannot be predicted: name it instead of scoring zero."""
    unknown = sorted(set(frame["label"]) - known)
    if unknown:
        rows = frame.loc[frame["label"] == unknown[0], "row"]
        raise StudybenchError(
            f"{name}: genre {unknown[0]!r} (row {int(rows.iloc[0])}) is unknown to training"
            + (f"; also {', '.join(map(repr, unknown[1:]))}" if len(unknown) > 1 else "")
            + f" (known: {', '.join(sorted(known))})" + (f"; {hint}" if hint else "")
        )
