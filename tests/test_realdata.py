"""Real-data checks on the files in $STUDYBENCH_DATA (default <repo root>/../shared/data).

Skipped when the data is absent, a failure where STUDYBENCH_REQUIRE_DATA=1 (see
conftest.py). Fast by design: two reads, one cleaning, one artist split and one
small end-to-end study on tcc_ceds_music.csv.
"""

from __future__ import annotations

import json

import pytest

from studybench.config import CleaningConfig, LyricsConfig, SplitConfig
from studybench.data.cleaning import clean_frame, stopwords_for
from studybench.data.lyrics import FIELDS, read_csv, read_lyrics
from studybench.data.splits import make_split
from studybench.studies.lyrics import load_clean, run_lyrics

pytestmark = pytest.mark.realdata

TCC_GENRES = {"pop": 5755, "country": 4366, "blues": 3920, "jazz": 3220, "rock": 3198, "reggae": 2069,
              "hip hop": 746}


@pytest.fixture(scope="module")
def tcc(tcc_path):
    return load_clean(tcc_path, LyricsConfig())


def test_tcc_ceds_reads_with_its_schema(tcc_path):
    raw = read_csv(tcc_path)
    assert list(raw.columns) == ["Artist", "Song", "Year", "Genre", "Lyrics"]
    assert len(raw) == 23274
    lyrics = read_lyrics(tcc_path)
    assert lyrics.schema == "tcc_ceds"
    assert list(lyrics.frame.columns) == ["row", *FIELDS]
    assert len(lyrics.frame) == 23274
    assert lyrics.frame["label"].value_counts().to_dict() == TCC_GENRES
    assert lyrics.frame["artist"].nunique() == 4365
    assert lyrics.has_artist


def test_mlgc_sample_reads_with_multiline_lyrics(mlgc_path):
    raw = read_csv(mlgc_path)
    assert list(raw.columns) == ["textid", "Language", "Genre", "Lyrics", "source_file"]
    lyrics = read_lyrics(mlgc_path)
    assert lyrics.schema == "mlgc_sample"
    frame = lyrics.frame
    assert len(frame) == 1164
    assert frame["language"].value_counts().to_dict() == {"en": 965, "es": 100, "pt": 99}
    assert set(frame["label"]) == {"rock", "pop", "metal", "indie"}
    assert not lyrics.has_artist
    # the quoted multi-line lyrics survived the CSV reader as whole songs
    assert frame["text"].str.contains("\n").sum() > 1000
    assert frame["row"].tolist() == list(range(1, 1165))


def test_mlgc_cleaning_removes_spanish_stop_words_from_spanish_songs(mlgc_path):
    raw = read_lyrics(mlgc_path).frame
    cleaned, report = clean_frame(raw, CleaningConfig(dedupe=False))
    assert report.languages == {"en": 965, "es": 100, "pt": 99}
    assert report.stopword_fallback == {}
    spanish = stopwords_for("es")
    by_row = cleaned.set_index("row")
    raw_es = raw[raw["language"] == "es"]
    # a Spanish song that really has "que" and "el" before cleaning
    candidates = raw_es[raw_es["text"].str.contains(r"(?i)\bque\b") & raw_es["text"].str.contains(r"(?i)\bel\b")]
    assert len(candidates) > 0
    row = candidates.iloc[0]["row"]
    tokens = by_row.loc[row, "text"].split()
    assert tokens, "the song should keep its content words"
    assert "que" not in tokens and "el" not in tokens
    assert not spanish & set(tokens)
    for text in cleaned.loc[cleaned["language"] == "es", "text"]:
        assert not spanish & set(text.split())
    for text in cleaned["text"]:
        assert "\n" not in text and text == text.casefold()


def test_artist_split_on_tcc_has_no_artist_overlap(tcc):
    split = make_split(tcc.frame, SplitConfig(kind="artist"), seed=0)
    summary = split.summary()
    assert summary["artists_shared_train_test"] == 0
    assert summary["artists_shared_train_val"] == 0
    train, val, test = (set(p["artist"]) for p in (split.train, split.val, split.test))
    assert train.isdisjoint(test) and train.isdisjoint(val) and val.isdisjoint(test)
    assert sum(summary["sizes"].values()) == len(tcc.frame)
    assert 0.15 < summary["sizes"]["test"] / len(tcc.frame) < 0.25
    assert set(split.train["label"]) == set(TCC_GENRES)


def test_end_to_end_artist_split_on_tcc(tcc_path, tmp_path):
    out = tmp_path / "out"
    table = run_lyrics(tcc_path, models="majority,tfidf_logreg", features="lyrics", split="artist",
                       seeds="0", preset="seed", out=out)
    f1 = table.set_index("model")["macro_f1_mean"]
    assert f1["tfidf_logreg"] > f1["majority"] + 0.15
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        split = json.loads((run / "split.json").read_text())
        assert split["kind"] == "artist"
        assert split["artists_shared_train_test"] == 0
        assert split["test_songs_by_known_artists"] == 0


# --------------------------------------------------------------------------- CIFAR-10


@pytest.fixture(scope="module")
def cifar10(cifar10_dir):
    from studybench.data.images import load_images

    return load_images(cifar10_dir)


def test_cifar10_reads_as_the_official_layout(cifar10):
    assert cifar10.name == "cifar10"
    assert tuple(cifar10.train.images.shape) == (50000, 3, 32, 32)
    assert tuple(cifar10.test.images.shape) == (10000, 3, 32, 32)
    assert cifar10.train.classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                     "horse", "ship", "truck")
    assert cifar10.train.labels[:10].tolist() == list(range(10))  # position i*10+c: image i of class c
    means = cifar10.train.images[:5000].float().mean(dim=(0, 2, 3)) / 255
    # R, G, B planes in that order (the README: 0.4913 / 0.4821 / 0.4465 over all images)
    assert means[0] > means[1] > means[2] and abs(float(means[2]) - 0.4465) < 0.01


def test_cifar10_blocks_of_five_classes(cifar10, tmp_path):
    from studybench.studies.images import run_images

    block1, transfer = run_images(
        cifar10.source.parent, models="cnn_basic", seeds="0", out=tmp_path,
        overrides={"data.train_fraction": 0.05, "transfer.fractions": "0.05", "transfer.arms": "scratch",
                   "train.epochs": 3, "train.batch_size": 64, "model.widths": "8,16,16"})
    assert block1["n_train"].tolist() == [1000]  # 5 % of 20,000 (25,000 block images less 20 % validation)
    assert transfer["n_train"].tolist() == [1000]
    assert 0.3 < block1["accuracy_mean"].iloc[0] <= 1  # well above chance (0.2) after three short epochs
