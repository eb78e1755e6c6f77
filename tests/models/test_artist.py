"""The artist branch (one-hot with artist dropout) and the token-id sequences of the seed tree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studybench.models.text.artist import ArtistEncoder
from studybench.models.text.sequences import TokenSequences

ARTISTS = pd.Series([f"artist {i % 50}" for i in range(1000)])


def _row_sums(matrix) -> np.ndarray:
    return np.asarray(matrix.sum(axis=1)).ravel()


def test_dropout_zeros_about_half_the_rows_in_fit_transform():
    encoded = ArtistEncoder(dropout=0.5, seed=0).fit_transform(ARTISTS)
    sums = _row_sums(encoded)
    zeros = int((sums == 0).sum())
    assert 430 <= zeros <= 570
    assert set(np.unique(sums)) == {0.0, 1.0}  # kept rows stay one-hot
    assert encoded.shape == (1000, 50)


def test_dropout_is_seeded():
    a = ArtistEncoder(dropout=0.5, seed=1).fit_transform(ARTISTS)
    b = ArtistEncoder(dropout=0.5, seed=1).fit_transform(ARTISTS)
    c = ArtistEncoder(dropout=0.5, seed=2).fit_transform(ARTISTS)
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0


def test_transform_zeros_no_known_artist():
    encoder = ArtistEncoder(dropout=0.5, seed=0)
    encoder.fit_transform(ARTISTS)
    sums = _row_sums(encoder.transform(ARTISTS))
    assert (sums == 1).all()


def test_no_dropout_keeps_every_row():
    assert (_row_sums(ArtistEncoder(dropout=0.0).fit_transform(ARTISTS)) == 1).all()


def test_unknown_and_missing_artists_encode_as_zero_rows():
    encoder = ArtistEncoder().fit(pd.Series(["A", "B", "", "C"]))
    encoded = encoder.transform(pd.Series(["B", "Stranger", "", "A"])).toarray()
    assert encoded.shape == (4, 3)  # "" is not a category
    np.testing.assert_array_equal(encoded, [[0, 1, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]])
    assert list(encoder.get_feature_names_out()) == ["artist_A", "artist_B", "artist_C"]


def test_fit_on_no_artists_at_all_encodes_zeros():
    encoder = ArtistEncoder().fit(pd.Series(["", ""]))
    assert _row_sums(encoder.transform(pd.Series(["", "X"]))).tolist() == [0.0, 0.0]


def test_token_sequences_follow_keras_semantics():
    seq = TokenSequences(max_words=3, max_len=4).fit(["b a a", "c b a", "d"])
    # vocabulary: the max_words - 1 most frequent words; id 0 is padding
    assert seq.vocabulary_ == {"a": 1, "b": 2}
    out = seq.transform(["a b c a b a", "b", "zzz"])
    assert out.dtype == np.int32
    # unknown words dropped, pre-truncated (keeps the end) and pre-padded
    np.testing.assert_array_equal(out, [[2, 1, 2, 1], [0, 0, 0, 2], [0, 0, 0, 0]])
    assert len(seq.get_feature_names_out()) == 4
