"""Song vectors from the packaged all-MiniLM-L6-v2: the encoder's own embedding for a short
song, the token-weighted mean of chunks for a long one, and a per-song cache."""

from __future__ import annotations

import numpy as np
import pytest

from studybench.data import sentences
from studybench.data.sentences import EncoderSettings, SongEncoder, embed_songs
from studybench.errors import StudybenchError

A = "love night heart time world light love night heart time world light love night"  # 14 word pieces
B = "guitar thunder highway engine storm steel guitar thunder highway engine storm steel dance party"


@pytest.fixture(scope="module")
def encoder() -> SongEncoder:
    return SongEncoder(EncoderSettings(chunk_tokens=16))  # 14 word pieces + [CLS] + [SEP]


@pytest.mark.parametrize("precision, tolerance", [("32", 1e-5), ("bf16", 1e-3)])
def test_a_short_song_is_what_sentence_transformers_gives(precision, tolerance):
    """In fp32 a short song's vector is the encoder's own; with bf16 weights (what ``auto``
    picks on a CPU with native bf16: a cosine of 0.99995 measured on an AVX-512 BF16 Xeon)
    it stays within 0.001 of it."""
    model = sentences.load_encoder(sentences.DEFAULT_ENCODER)
    texts = ["rock guitar thunder highway", "velvet lounge saxophone at midnight"]
    expected = model.encode(texts, normalize_embeddings=True)
    got = SongEncoder(EncoderSettings(precision=precision)).encode(texts)
    assert got.shape == (2, 384) and got.dtype == np.float32
    np.testing.assert_allclose((got * expected).sum(axis=1), 1.0, atol=tolerance)


def test_a_long_song_is_the_mean_of_its_chunks(encoder):
    encoder._load()
    pieces = encoder.tokenizer(A + " " + B, add_special_tokens=False)["input_ids"]
    assert len(pieces) == 28  # two whole chunks of 14
    song = encoder.encode([A + " " + B])[0]
    halves = encoder.encode([A, B])
    np.testing.assert_allclose(song, halves.mean(axis=0), atol=1e-5)
    assert not np.allclose(song, halves[0], atol=1e-2)  # the second chunk counts


def test_max_chunks_cuts_a_song(encoder):
    cut = SongEncoder(EncoderSettings(chunk_tokens=16, max_chunks=1))
    np.testing.assert_allclose(cut.encode([A + " " + B])[0], encoder.encode([A])[0], atol=1e-5)


def test_the_cache_embeds_each_song_once(encoder, monkeypatch, tmp_path):
    monkeypatch.setenv("STUDYBENCH_CACHE", str(tmp_path))
    settings = encoder.settings
    calls = []
    real = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts, progress=None: calls.append(list(texts)) or real(texts))
    first = embed_songs([A, B, A], settings, encoder)
    assert calls == [[A, B]]  # a repeated song is embedded once
    again = embed_songs([B, "swing piano", A], settings, encoder)
    assert calls[1] == ["swing piano"]  # only the new song
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[2], first[0])
    shards = sorted(sentences.cache_folder(settings).glob("*.safetensors"))
    assert len(shards) == 2 and not list(sentences.cache_folder(settings).glob(".*partial"))
    for shard in shards:  # damaged: a miss, embedded again
        shard.write_bytes(b"not a safetensors file")
    embed_songs([A, B], settings, encoder)
    assert sorted(calls[2]) == sorted([A, B])


def test_no_cache_when_turned_off(encoder, monkeypatch, tmp_path):
    monkeypatch.setenv("STUDYBENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("STUDYBENCH_PREP_CACHE", "0")
    embed_songs([A], encoder.settings, encoder)
    assert not (tmp_path / "sentences").exists()


def test_settings_change_the_cache_key():
    assert EncoderSettings().key() != EncoderSettings(chunk_tokens=128).key()
    assert EncoderSettings().key() == EncoderSettings().key()


@pytest.mark.parametrize("settings, message", [
    (EncoderSettings(chunk_tokens=4), "chunk_tokens=4"),
    (EncoderSettings(max_chunks=0), "max_chunks=0"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(StudybenchError, match=message):
        SongEncoder(settings)


def test_a_window_longer_than_the_encoder_reads_is_refused():
    with pytest.raises(StudybenchError, match="chunk_tokens=512.*at most 256"):
        SongEncoder(EncoderSettings(chunk_tokens=512)).encode(["x"])


def test_an_encoder_folder_without_a_model_is_named(tmp_path):
    with pytest.raises(StudybenchError, match="not all-MiniLM-L6-v2 nor a sentence-transformers folder"):
        SongEncoder(EncoderSettings(encoder=str(tmp_path))).encode(["x"])


def test_progress_counts_chunks_up_to_the_total(encoder):
    heard = []
    encoder.encode([A, B, A + " " + B, "swing"], progress=lambda done, total: heard.append((done, total)))
    assert heard and heard[-1] == (5, 5)  # four songs, one of them two chunks
    assert [d for d, _ in heard] == sorted(d for d, _ in heard)
