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


def test_demo_images_are_deterministic_and_learnable_patterns():
    import torch

    from studybench.data.demo_images import CLASSES, demo_images

    a, b = demo_images(n_train=6, n_test=2), demo_images(n_train=6, n_test=2)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.images, b.test.images)
    assert a.train.classes == CLASSES and tuple(a.train.images.shape) == (60, 3, 32, 32)
    assert torch.bincount(a.test.labels).tolist() == [2] * 10
    assert not torch.equal(a.train.images, demo_images(n_train=6, n_test=2, seed=1).train.images)
    # horizontal stripes vary down the rows, vertical ones across the columns
    h = a.train.images[a.train.labels == 0].float()
    v = a.train.images[a.train.labels == 1].float()
    assert h.mean(dim=3).std(dim=2).mean() > 2 * h.mean(dim=2).std(dim=2).mean()
    assert v.mean(dim=2).std(dim=2).mean() > 2 * v.mean(dim=3).std(dim=2).mean()


def test_demo_image_settings_run_the_whole_image_study(tmp_path):
    from studybench.cli import DEMO_IMAGE_SETTINGS
    from studybench.data.demo_images import demo_images
    from studybench.studies.images import run_images

    settings = {**DEMO_IMAGE_SETTINGS, "train.epochs": 1}
    block1, transfer = run_images(demo_images(n_train=12, n_test=4), seeds="0", overrides=settings,
                                  out=tmp_path)
    assert len(block1) == 6 and "whitened_cnn" in set(block1["model"])  # the study's five and whitened_cnn
    assert len(transfer) == 6 * 2
    assert transfer["accuracy_mean"].notna().all()
