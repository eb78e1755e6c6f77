"""A lyrics study and an image study sharing one ``--out``: whichever runs first and last,
``results.csv`` keeps both studies' rows (it is rebuilt from every run folder, never from the
last command's runs), and the report covers both."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows

from studybench.data.demo_images import demo_images
from studybench.reporting.report import build_report
from studybench.studies.images import run_images
from studybench.studies.lyrics import run_lyrics

IMAGE_SETTINGS = {"model.widths": "4,8,8", "train.epochs": 1, "train.batch_size": 32,
                  "transfer.fractions": "1.0", "transfer.arms": "scratch"}


@pytest.mark.parametrize("order", [("lyrics", "images"), ("images", "lyrics")])
def test_both_studies_keep_their_rows_in_one_out(tmp_path, order):
    data = write_rows(tmp_path / "songs.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows())
    images = demo_images(n_train=16, n_test=8)
    out = tmp_path / "out"
    steps = {
        "lyrics": lambda: run_lyrics(data, models="majority,tfidf_logreg", features="lyrics", seeds="0",
                                     split="random", out=out),
        "images": lambda: run_images(images, models="cnn_basic", seeds="0", preset="seed",
                                     overrides=IMAGE_SETTINGS, out=out),
    }
    for study in order:
        steps[study]()
        rows = pd.read_csv(out / "results.csv")
        assert study in set(rows["study"])
    rows = pd.read_csv(out / "results.csv")
    by_study = rows.groupby("study")["run_id"].apply(set).to_dict()
    assert len(by_study["lyrics"]) == 2
    assert len(by_study["images"]) == 2  # cnn_basic on block 1, scratch on block 2
    assert set(rows["run_id"]) == {p.name for p in (out / "runs").iterdir()}
    page = build_report(out)
    text = (out / "report.md").read_text()
    assert page.is_file() and "tfidf_logreg" in text and "cnn_basic" in text
