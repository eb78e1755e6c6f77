"""The report of a real (tiny) study opened in headless Chromium: it renders without console
errors and every image loads."""

from __future__ import annotations

from browser import browser_page
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows

from studybench.data.demo_images import demo_images
from studybench.reporting.report import build_report
from studybench.studies.images import run_images
from studybench.studies.lyrics import run_lyrics


def test_report_renders_in_chromium(tmp_path):
    data = write_rows(tmp_path / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=12))
    for split in ("artist", "random"):
        run_lyrics(data, models="majority,tfidf_logreg,embedding_bag", split=split, seeds="0,1",
                   overrides={"train.epochs": 2}, out=tmp_path / "study" / "lyrics")
    run_images(demo_images(n_train=10, n_test=4), seeds="0", out=tmp_path / "study" / "images",
               overrides={"model.widths": "4,8,8", "train.epochs": 1, "transfer.fractions": "0.5,1"})
    page_path = build_report(tmp_path / "study")
    with browser_page() as (page, problems):
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        headings = page.locator("h2").all_inner_texts()
    assert problems == []
    assert len(images) >= 12 and all(loaded for _, loaded in images), [alt for alt, ok in images if not ok]
    assert any("transfer" in h for h in headings) and any("artist split" in h for h in headings)
