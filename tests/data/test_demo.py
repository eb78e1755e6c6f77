"""The shipped demo corpus is exactly what the generator writes."""

from __future__ import annotations

import gzip

from studybench.data.demo import demo_bytes, demo_lyrics_path, generate
from studybench.data.lyrics import read_lyrics


def test_shipped_demo_file_equals_the_generator_output():
    path = demo_lyrics_path()
    assert path.is_file()
    assert demo_bytes() == path.read_bytes()


def test_generator_is_deterministic_and_seeded():
    assert generate(3, n_artists=4).equals(generate(3, n_artists=4))
    assert not generate(3, n_artists=4).equals(generate(4, n_artists=4))


def test_demo_corpus_reads_as_kaggle_train_with_raw_multiline_lyrics():
    lyrics = read_lyrics(demo_lyrics_path())
    assert lyrics.schema == "kaggle_train"
    frame = lyrics.frame
    assert len(frame) == 1558
    assert frame["text"].str.contains("\n").all()
    assert set(frame["label"]) == {"rock", "pop", "hip hop", "country", "jazz"}
    # 90 generated artists; a few invented names collide, which only merges their groups
    assert 80 <= frame["artist"].nunique() <= 90
    assert gzip.decompress(demo_lyrics_path().read_bytes()).startswith(b"Artist,Song,Genre,Language,Lyrics\n")
