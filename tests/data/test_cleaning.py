"""Cleaning: order of steps, per-language stop words, and what gets dropped and counted.

Facts about the stopwords-iso lists these tests rely on (checked in
``test_stopword_list_facts`` so a list change shows up there first): "the" is an
English stop word but not a Spanish one; "el" and "los" are Spanish but not
English; "que" is in all three lists (en, es, pt); "não" and "muito" are
Portuguese only; "guitar", "road", "amor", "noche", "saudade" are in none.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import write_rows

from studybench.config import CleaningConfig
from studybench.data.cleaning import clean_frame, clean_text, stopwords_for
from studybench.data.lyrics import read_lyrics

DEFAULT = CleaningConfig()
NO_STOP = CleaningConfig(stopwords=False)


def test_stopword_list_facts():
    en, es, pt = (stopwords_for(lang) for lang in ("en", "es", "pt"))
    assert "the" in en and "the" not in es
    assert "el" in es and "los" in es and "el" not in en and "los" not in en
    assert "que" in en and "que" in es and "que" in pt
    assert "não" in pt and "muito" in pt and "não" not in es
    for word in ("guitar", "road", "amor", "noche", "saudade"):
        assert word not in en | es | pt
    assert stopwords_for("xx") is None
    assert stopwords_for("") is None


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {"artist": "", "language": "en", "song": ""}
    return pd.DataFrame([{"row": i + 1, **base, **r} for i, r in enumerate(rows)])


def test_lowercasing_happens_before_stop_words():
    assert clean_text("The Guitar ROAD", "en", DEFAULT) == "guitar road"


def test_capitalised_stop_words_go_even_without_lowercasing():
    assert clean_text("The Guitar", "en", CleaningConfig(lowercase=False)) == "Guitar"


def test_line_breaks_and_punctuation_are_normalised():
    text = "Guitar,\nROAD!!\r\n\n  highway...\t(thunder) -- \"storm\"; fire?"
    assert clean_text(text, "en", NO_STOP) == "guitar road highway thunder storm fire"


def test_in_word_apostrophes_are_kept():
    assert clean_text("Don't stop rock'n'roll 'cause", "en", NO_STOP) == "don't stop rock'n'roll cause"
    # the typographic apostrophe becomes ASCII, so it matches stop words like "don't"
    assert clean_text("Don’t", "en", NO_STOP) == "don't"
    assert clean_text("Don’t guitar", "en", DEFAULT) == "guitar"


def test_without_punctuation_stripping_tokens_are_whitespace_split():
    assert clean_text("Hello, world!\nBye", "en", CleaningConfig(strip_punctuation=False, stopwords=False)) \
        == "hello, world! bye"


def test_spanish_row_uses_the_spanish_list():
    text = "Que el amor de los Noche the guitar"
    assert clean_text(text, "es", DEFAULT) == "amor noche the guitar"  # "the" is not Spanish


def test_english_row_keeps_spanish_only_stop_words():
    assert clean_text("Que el amor de los noche the guitar", "en", DEFAULT) == "el amor los noche guitar"


def test_portuguese_row_uses_the_portuguese_list():
    assert clean_text("Não muito saudade el", "pt", DEFAULT) == "saudade el"


@pytest.mark.parametrize("language", ["xx", "", "klingon"])
def test_unknown_language_falls_back_to_english(language):
    assert clean_text("The road el amor", language, DEFAULT) == "road el amor"


def test_default_language_setting_is_the_fallback():
    config = CleaningConfig(default_language="es")
    assert clean_text("The road el amor", "xx", config) == "the road amor"


def test_clean_frame_fills_missing_language_and_counts_fallbacks():
    frame = _frame([
        {"text": "The guitar", "label": "rock", "language": ""},
        {"text": "El amor", "label": "pop", "language": "es"},
        {"text": "The road el", "label": "rock", "language": "xx"},
    ])
    out, report = clean_frame(frame, DEFAULT)
    assert out["text"].tolist() == ["guitar", "amor", "road el"]
    assert out["language"].tolist() == ["en", "es", "xx"]
    assert report.languages == {"en": 1, "es": 1, "xx": 1}
    assert report.stopword_fallback == {"xx": 1}


def test_empty_and_missing_lyrics_are_dropped_and_counted(tmp_path):
    rows = [
        ["A", "1", "Rock", "en", "Guitar road"],
        ["B", "2", "Rock", "en", ""],  # missing
        ["C", "3", "Pop", "en", "   \n\n  "],  # whitespace only
        ["D", "4", "Pop", "en", "The, and... of!"],  # only stop words and punctuation
        ["E", "5", "Pop", "en", "Dance tonight"],
    ]
    path = write_rows(tmp_path / "empties.csv", ["Artist", "Song", "Genre", "Language", "Lyrics"], rows)
    out, report = clean_frame(read_lyrics(path).frame, DEFAULT)
    assert out["row"].tolist() == [1, 5]
    assert report.rows_in == 5
    assert report.dropped_empty == 3
    assert report.dropped_missing_label == 0
    assert report.rows_out == 2
    assert out.index.tolist() == [0, 1]


def test_min_tokens_drops_short_songs():
    frame = _frame([{"text": "guitar", "label": "rock"}, {"text": "guitar road highway", "label": "rock"}])
    out, report = clean_frame(frame, CleaningConfig(min_tokens=3))
    assert out["text"].tolist() == ["guitar road highway"]
    assert report.dropped_empty == 1


def test_dedupe_drops_identical_cleaned_lyrics_and_reports_the_count():
    frame = _frame([
        {"text": "Guitar, road!", "label": "rock", "artist": "A"},
        {"text": "guitar ROAD", "label": "rock", "artist": "B"},  # same once cleaned
        {"text": "The guitar\nroad", "label": "pop", "artist": "C"},  # same once "the" is gone
        {"text": "amor noche", "label": "pop", "artist": "D"},
    ])
    out, report = clean_frame(frame, DEFAULT)
    assert out["artist"].tolist() == ["A", "D"]  # the first copy is kept
    assert report.dropped_duplicates == 2
    assert report.rows_out == 2


def test_dedupe_false_keeps_duplicates():
    frame = _frame([{"text": "Guitar, road!", "label": "rock"}, {"text": "guitar ROAD", "label": "rock"}])
    out, report = clean_frame(frame, CleaningConfig(dedupe=False))
    assert out["text"].tolist() == ["guitar road", "guitar road"]
    assert report.dropped_duplicates == 0
    assert report.rows_out == 2


def test_rows_with_empty_genre_are_dropped_and_counted(tmp_path):
    rows = [["A", "1", "", "en", "guitar road"], ["B", "2", "Rock", "en", "highway thunder"],
            ["C", "3", "  ", "en", "amor noche"]]
    path = write_rows(tmp_path / "nogenre.csv", ["Artist", "Song", "Genre", "Language", "Lyrics"], rows)
    out, report = clean_frame(read_lyrics(path).frame, DEFAULT)
    assert out["row"].tolist() == [2]
    assert report.dropped_missing_label == 2
    assert report.rows_out == 1


def test_clean_frame_does_not_modify_its_input():
    frame = _frame([{"text": "The Guitar", "label": "rock"}])
    clean_frame(frame, DEFAULT)
    assert frame["text"].tolist() == ["The Guitar"]
