"""Splits: random, artist and file; seeded reproducibility; no artist leakage."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import canonical_frame

from studybench.config import SplitConfig
from studybench.data.splits import check_known_labels, make_split
from studybench.errors import StudybenchError

RANDOM = SplitConfig(kind="random")
ARTIST = SplitConfig(kind="artist")
FILE = SplitConfig(kind="file")


@pytest.fixture
def frame() -> pd.DataFrame:
    # 3 genres x 20 songs, 5 artists per genre (4 songs each): 15 artists
    return canonical_frame(per_class=20, artists_per_genre=5)


def _rows(part: pd.DataFrame) -> list[int]:
    return sorted(part["row"].tolist())


def _all_rows(split) -> list[int]:
    return sorted(_rows(split.train) + _rows(split.val) + _rows(split.test))


@pytest.mark.parametrize("config", [RANDOM, ARTIST], ids=["random", "artist"])
def test_split_partitions_every_song_exactly_once(frame, config):
    split = make_split(frame, config, seed=0)
    assert _all_rows(split) == sorted(frame["row"].tolist())
    assert set(_rows(split.train)).isdisjoint(_rows(split.test))
    assert set(_rows(split.train)).isdisjoint(_rows(split.val))
    assert set(_rows(split.val)).isdisjoint(_rows(split.test))
    summary = split.summary()
    assert summary["kind"] == config.kind and summary["seed"] == 0
    assert summary["sizes"] == {"train": len(split.train), "val": len(split.val), "test": len(split.test)}
    assert list(split.train.index) == list(range(len(split.train)))  # reset index


def test_random_split_sizes(frame):
    split = make_split(frame, RANDOM, seed=0)
    assert len(split.test) == 12  # 20% of 60
    assert len(split.val) == 6  # 10% of 60
    assert len(split.train) == 42


@pytest.mark.parametrize("config", [RANDOM, ARTIST], ids=["random", "artist"])
def test_same_seed_same_split_and_different_seed_different(frame, config):
    first = make_split(frame, config, seed=3)
    again = make_split(frame, config, seed=3)
    assert _rows(first.test) == _rows(again.test)
    assert _rows(first.val) == _rows(again.val)
    pd.testing.assert_frame_equal(first.test, again.test)
    others = [_rows(make_split(frame, config, seed=s).test) for s in (4, 5, 6)]
    assert any(rows != _rows(first.test) for rows in others)


def test_random_split_leaks_artists_but_artist_split_does_not(frame):
    leaky = make_split(frame, RANDOM, seed=0).summary()
    assert leaky["artists_shared_train_test"] > 0
    split = make_split(frame, ARTIST, seed=0)
    summary = split.summary()
    assert summary["artists_shared_train_test"] == 0
    assert summary["artists_shared_train_val"] == 0
    assert summary["test_songs_by_known_artists"] == 0
    train, val, test = (set(p["artist"]) for p in (split.train, split.val, split.test))
    assert train.isdisjoint(test) and train.isdisjoint(val) and val.isdisjoint(test)
    assert summary["artists"] == {"train": len(train), "val": len(val), "test": len(test)}
    assert len(train) + len(val) + len(test) == 15


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_artist_split_no_overlap_for_several_seeds(frame, seed):
    split = make_split(frame, ARTIST, seed=seed)
    assert set(split.train["artist"]).isdisjoint(split.test["artist"])
    assert set(split.train["artist"]).isdisjoint(split.val["artist"])
    assert set(split.val["artist"]).isdisjoint(split.test["artist"])


@pytest.mark.parametrize("config", [RANDOM, ARTIST], ids=["random", "artist"])
def test_stratification_keeps_every_class_in_train(frame, config):
    for seed in range(3):
        split = make_split(frame, config, seed=seed)
        assert set(split.train["label"]) == {"rock", "pop", "jazz"}
        counts = split.summary()["class_counts"]
        assert sum(counts["train"].values()) == len(split.train)
        assert set(counts["train"]) == {"jazz", "pop", "rock"}


def test_random_split_is_stratified(frame):
    split = make_split(frame, RANDOM, seed=0)
    assert split.summary()["class_counts"]["test"] == {"jazz": 4, "pop": 4, "rock": 4}


def test_rare_class_too_small_to_stratify_still_splits():
    frame = canonical_frame(per_class=10)
    frame = pd.concat([frame, canonical_frame(per_class=1, genres=("rock",), artist_prefix="Solo")
                       .assign(label="polka", row=999)], ignore_index=True)
    split = make_split(frame, RANDOM, seed=0)
    assert len(split.train) + len(split.val) + len(split.test) == 31


def test_songs_without_artist_do_not_break_the_artist_split(frame):
    frame = frame.copy()
    frame.loc[frame.index % 3 == 0, "artist"] = ""  # a third of the songs have no artist
    split = make_split(frame, ARTIST, seed=0)
    assert _all_rows(split) == sorted(frame["row"].tolist())
    summary = split.summary()
    assert summary["artists_shared_train_test"] == 0
    assert summary["artists_shared_train_val"] == 0
    known = [set(p["artist"]) - {""} for p in (split.train, split.val, split.test)]
    assert known[0].isdisjoint(known[2]) and known[0].isdisjoint(known[1])
    # songs without an artist are spread, not all sent to one part
    unknown = [int((p["artist"] == "").sum()) for p in (split.train, split.test)]
    assert all(n > 0 for n in unknown)


def test_artist_split_on_a_file_without_artists_is_an_error(frame):
    with pytest.raises(StudybenchError, match="mlgc.csv: --split artist needs an artist column"):
        make_split(frame.assign(artist=""), ARTIST, seed=0, data_name="mlgc.csv")


def test_artist_split_needs_two_artists():
    frame = canonical_frame(per_class=4, artists_per_genre=1).assign(artist="Only One")
    with pytest.raises(StudybenchError, match="at least two artists"):
        make_split(frame, ARTIST, seed=0)


def test_file_split_uses_the_test_file(frame):
    test = canonical_frame(per_class=3, artist_prefix="Unseen").assign(row=lambda f: f["row"] + 1000)
    split = make_split(frame, FILE, seed=0, test_frame=test)
    assert _rows(split.test) == _rows(test)
    assert sorted(_rows(split.train) + _rows(split.val)) == sorted(frame["row"].tolist())
    # validation is carved by artist where artists are known
    assert set(split.train["artist"]).isdisjoint(split.val["artist"])


def test_file_split_with_a_genre_unknown_to_training_names_it(frame):
    test = canonical_frame(per_class=2, artist_prefix="Unseen")
    test.loc[3, "label"] = "polka"
    with pytest.raises(StudybenchError) as info:
        make_split(frame, FILE, seed=0, test_frame=test)
    message = str(info.value)
    assert "'polka'" in message
    assert f"row {int(test.loc[3, 'row'])}" in message
    assert "--test-data" in message


def test_file_split_without_a_test_frame_is_an_error(frame):
    with pytest.raises(StudybenchError, match="--test-data"):
        make_split(frame, FILE, seed=0)


def test_check_known_labels_lists_every_unknown_genre():
    test = canonical_frame(per_class=1).assign(label=["rock", "polka", "ska"])
    with pytest.raises(StudybenchError, match=r"genre 'polka' \(row 2\).*also 'ska'"):
        check_known_labels(test, {"rock"}, "new.csv")
    check_known_labels(test.iloc[:1], {"rock"}, "new.csv")  # a known genre passes


@pytest.mark.parametrize("overrides", [{"test_size": 0.0}, {"test_size": 1.0}, {"val_size": 1.5}])
def test_sizes_outside_zero_one_are_errors(frame, overrides):
    with pytest.raises(StudybenchError, match="between 0 and 1"):
        make_split(frame, SplitConfig(**overrides), seed=0)


def test_unknown_split_kind(frame):
    with pytest.raises(StudybenchError, match="--split year: unknown split kind"):
        make_split(frame, SplitConfig(kind="year"), seed=0)


def test_sizes_that_leave_no_training_songs_are_an_input_error(frame):
    with pytest.raises(StudybenchError, match="test_size"):
        make_split(frame, SplitConfig(kind="random", test_size=0.6, val_size=0.5), seed=0)


def test_too_few_songs_is_an_input_error():
    tiny = canonical_frame(per_class=1, genres=("rock", "pop"))
    with pytest.raises(StudybenchError, match="too few songs"):
        make_split(tiny, RANDOM, seed=0)
