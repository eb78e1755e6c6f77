"""Readers: every supported schema into the canonical frame, detection, and read errors."""

from __future__ import annotations

import gzip
import random

import pandas as pd
import pytest
from conftest import write_rows

from studybench.config import Columns, DataConfig
from studybench.data.lyrics import (
    FIELDS,
    SCHEMAS,
    detect_schema,
    normalize_label,
    read_csv,
    read_lyrics,
)
from studybench.errors import StudybenchError

TRICKY_LYRIC = 'She said "Stop, please",\nthen: "don\'t go, love"\n\nLast line, "quoted"'

# schema name -> (header, one data row, expected canonical fields of that row)
CASES = {
    "kaggle_train": (
        ["Artist", "Song", "Genre", "Language", "Lyrics"],
        ["The Band", "Hello", "Hip-Hop", "ES", TRICKY_LYRIC],
        {"text": TRICKY_LYRIC, "label": "hip hop", "artist": "The Band", "language": "es", "song": "Hello"},
    ),
    "kaggle_test": (
        ["Song", "Song year", "Artist", "Genre", "Lyrics", "Track_id"],
        ["Hello", "2001", "The Band", "Rock", TRICKY_LYRIC, "track-7"],
        {"text": TRICKY_LYRIC, "label": "rock", "artist": "The Band", "language": "", "song": "track-7"},
    ),
    "tcc_ceds": (
        ["Artist", "Song", "Year", "Genre", "Lyrics"],
        ["ella fitzgerald", "but not for me", "1950", "blues", TRICKY_LYRIC],
        {"text": TRICKY_LYRIC, "label": "blues", "artist": "ella fitzgerald", "language": "",
         "song": "but not for me"},
    ),
    "tcc_ceds_mendeley": (
        ["", "artist_name", "track_name", "release_date", "genre", "lyrics", "len", "dating", "topic"],
        ["0", "mukesh", "mohabbat bhi", "1950", "pop", TRICKY_LYRIC, "95", "0.0005", "sadness"],
        {"text": TRICKY_LYRIC, "label": "pop", "artist": "mukesh", "language": "", "song": "mohabbat bhi"},
    ),
    "mlgc_sample": (
        ["textid", "Language", "Genre", "Lyrics", "source_file"],
        ["4018", "pt", "Metal", TRICKY_LYRIC, "validate_filtered.tsv"],
        {"text": TRICKY_LYRIC, "label": "metal", "artist": "", "language": "pt", "song": "4018"},
    ),
}


@pytest.mark.parametrize("schema", list(CASES))
def test_reader_detects_schema_and_maps_fields(tmp_path, schema):
    header, row, expected = CASES[schema]
    second = list(row)
    path = write_rows(tmp_path / f"{schema}.csv", header, [row, second])
    lyrics = read_lyrics(path)
    assert lyrics.schema == schema
    assert list(lyrics.frame.columns) == ["row", *FIELDS]
    assert lyrics.frame["row"].tolist() == [1, 2]
    first = lyrics.frame.iloc[0]
    for field, value in expected.items():
        assert first[field] == value, field
    assert lyrics.has_artist == (expected["artist"] != "")


def test_every_schema_has_a_case():
    assert set(CASES) == set(SCHEMAS)


def test_multiline_lyrics_with_commas_and_quotes_survive(tmp_path):
    lyrics = ["one,\ntwo, \"three\"", 'a "quoted, comma"\n\n\nend', "plain"]
    rows = [[f"A{i}", f"S{i}", "Pop", "en", text] for i, text in enumerate(lyrics)]
    path = write_rows(tmp_path / "multi.csv", ["Artist", "Song", "Genre", "Language", "Lyrics"], rows)
    frame = read_lyrics(path).frame
    assert len(frame) == 3
    assert frame["text"].tolist() == lyrics
    assert frame["artist"].tolist() == ["A0", "A1", "A2"]


def test_custom_columns_mapping(tmp_path):
    path = write_rows(tmp_path / "custom.csv", ["body", "tag", "who", "lang"],
                      [["hello world", "HIP_HOP", " Someone ", "EN"], ["bye", "Rock", "", "de"]])
    config = DataConfig(columns=Columns(text="body", label="tag", artist="who", language="lang"))
    lyrics = read_lyrics(path, config)
    assert lyrics.schema == "custom"
    frame = lyrics.frame
    assert frame["text"].tolist() == ["hello world", "bye"]
    assert frame["label"].tolist() == ["hip hop", "rock"]
    assert frame["artist"].tolist() == ["Someone", ""]  # stripped
    assert frame["language"].tolist() == ["en", "de"]  # case-folded
    assert frame["song"].tolist() == ["", ""]


def test_custom_mapping_with_only_text_and_label(tmp_path):
    path = write_rows(tmp_path / "custom.csv", ["body", "tag"], [["hello", "Jazz"]])
    lyrics = read_lyrics(path, DataConfig(columns=Columns(text="body", label="tag")))
    assert lyrics.frame.iloc[0][["text", "label", "artist", "language"]].tolist() == ["hello", "jazz", "", ""]
    assert not lyrics.has_artist


def test_mapping_overrides_a_detected_schema(tmp_path):
    header = ["Artist", "Song", "Genre", "Language", "Lyrics", "Clean"]
    path = write_rows(tmp_path / "k.csv", header, [["A", "S", "Pop", "en", "raw text", "clean text"]])
    lyrics = read_lyrics(path, DataConfig(columns=Columns(text="Clean")))
    assert lyrics.schema == "kaggle_train+mapping"
    assert lyrics.frame.iloc[0]["text"] == "clean text"
    assert lyrics.frame.iloc[0]["artist"] == "A"


def test_mapping_to_a_missing_column_names_it(tmp_path):
    path = write_rows(tmp_path / "custom.csv", ["body", "tag"], [["hello", "Jazz"]])
    with pytest.raises(StudybenchError, match="no lyrics column 'lyric_text'"):
        read_lyrics(path, DataConfig(columns=Columns(text="lyric_text", label="tag")))


def test_custom_mapping_without_label_is_an_error(tmp_path):
    path = write_rows(tmp_path / "custom.csv", ["body", "tag"], [["hello", "Jazz"]])
    with pytest.raises(StudybenchError, match="no genre column"):
        read_lyrics(path, DataConfig(columns=Columns(text="body")))


def test_header_matching_is_case_insensitive(tmp_path):
    path = write_rows(tmp_path / "lower.csv", ["artist", "song", "year", "genre", "lyrics"],
                      [["a", "s", "1999", "Country", "words here"]])
    lyrics = read_lyrics(path)
    assert lyrics.schema == "tcc_ceds"
    assert lyrics.frame.iloc[0]["label"] == "country"


@pytest.mark.parametrize("header, expected", [
    (["Artist", "Song", "Genre", "Language", "Lyrics"], "kaggle_train"),
    (["Song", "Song year", "Artist", "Genre", "Lyrics", "Track_id"], "kaggle_test"),
    (["Artist", "Song", "Year", "Genre", "Lyrics"], "tcc_ceds"),
    (["artist_name", "track_name", "release_date", "genre", "lyrics", "topic"], "tcc_ceds_mendeley"),
    (["textid", "Language", "Genre", "Lyrics", "source_file"], "mlgc_sample"),
    (["Language", "Genre", "Lyrics"], None),
])
def test_detect_schema(header, expected):
    found = detect_schema(header)
    assert (found.name if found else None) == expected


AMBIGUOUS = ["Artist", "Song", "Year", "Genre", "Language", "Lyrics"]


def test_ambiguous_header_is_an_error_naming_data_schema(tmp_path):
    path = write_rows(tmp_path / "both.csv", AMBIGUOUS, [["A", "S", "2000", "Rock", "en", "la la"]])
    with pytest.raises(StudybenchError) as info:
        read_lyrics(path)
    message = str(info.value)
    assert "data.schema" in message
    assert "kaggle_train" in message and "tcc_ceds" in message
    assert "both.csv" in message


@pytest.mark.parametrize("schema, language", [("tcc_ceds", ""), ("kaggle_train", "en")])
def test_named_schema_resolves_ambiguity(tmp_path, schema, language):
    path = write_rows(tmp_path / "both.csv", AMBIGUOUS, [["A", "S", "2000", "Rock", "EN", "la la"]])
    lyrics = read_lyrics(path, DataConfig(schema=schema))
    assert lyrics.schema == schema
    assert lyrics.frame.iloc[0][["text", "label", "artist", "language"]].tolist() == ["la la", "rock", "A", language]


def test_unknown_named_schema_is_an_error(tmp_path):
    path = write_rows(tmp_path / "t.csv", ["Artist", "Song", "Year", "Genre", "Lyrics"], [["A", "S", "1", "x", "y"]])
    with pytest.raises(StudybenchError, match="data.schema=nope: unknown schema"):
        read_lyrics(path, DataConfig(schema="nope"))


def test_no_lyrics_column_is_an_error_listing_columns(tmp_path):
    path = write_rows(tmp_path / "nolyrics.csv", ["Artist", "Song", "Genre"], [["A", "S", "Rock"]])
    with pytest.raises(StudybenchError, match=r"no lyrics column found \(columns: Artist, Song, Genre\)"):
        read_lyrics(path)


def test_gzipped_csv_reads(tmp_path):
    plain = write_rows(tmp_path / "plain.csv", ["Artist", "Song", "Genre", "Language", "Lyrics"],
                       [["A", "S1", "Pop", "en", "first,\nline"], ["B", "S2", "Rock", "en", "second"]])
    packed = tmp_path / "packed.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    got = read_lyrics(packed)
    assert got.schema == "kaggle_train"
    pd.testing.assert_frame_equal(got.frame, read_lyrics(plain).frame)
    assert got.frame["text"].tolist() == ["first,\nline", "second"]


@pytest.mark.parametrize("raw", ["Hip-Hop", "hip hop", "HIP_HOP", "  Hip -- Hop ", "hip\thop", "Ｈｉｐ－Ｈｏｐ"])
def test_genre_normalisation(raw):
    assert normalize_label(raw) == "hip hop"


def test_genre_normalisation_keeps_distinct_genres_distinct():
    assert normalize_label("R&B") == "r&b"
    assert normalize_label("Rock") != normalize_label("Pop")


def test_reader_normalises_labels_of_every_row(tmp_path):
    path = write_rows(tmp_path / "g.csv", ["Artist", "Song", "Genre", "Language", "Lyrics"],
                      [["A", "1", "Hip-Hop", "en", "x"], ["B", "2", "hip hop", "en", "y"],
                       ["C", "3", "HIP_HOP", "en", "z"]])
    assert read_lyrics(path).frame["label"].tolist() == ["hip hop"] * 3


# --------------------------------------------------------------------------- read_csv errors


def test_missing_file(tmp_path):
    with pytest.raises(StudybenchError, match="nothere.csv: file not found"):
        read_csv(tmp_path / "nothere.csv")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(StudybenchError, match="is a folder"):
        read_csv(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(StudybenchError, match="empty.csv: empty file"):
        read_csv(path)


def test_header_without_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("Artist,Song,Genre,Language,Lyrics\n")
    with pytest.raises(StudybenchError, match="header but no data rows"):
        read_csv(path)


def test_binary_file(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(random.Random(0).randbytes(3000) + b"\x00\x00" + b"\xff\xfe\x00\x81" * 100)
    with pytest.raises(StudybenchError, match="binary.csv"):
        read_csv(path)


def test_malformed_row_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Artist,Song,Genre,Language,Lyrics\nA,S,Pop,en,fine\nB,T,Rock,en,too,many\n")
    with pytest.raises(StudybenchError, match="bad.csv: malformed CSV: line 3 has 6 fields, the header has 5"):
        read_csv(path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(gzip.compress(b"Artist,Song,Genre,Language,Lyrics\nA,S,Pop,en,x\n" * 50)[:40])
    with pytest.raises(StudybenchError, match="broken.csv.gz"):
        read_csv(path)


def test_utf8_bom_and_windows_line_endings(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffArtist,Song,Genre,Language,Lyrics\r\n"
                     "A,S,Pop,en,\"line one\r\nline two\"\r\nB,T,Rock,en,x\r\n".encode("utf-8"))
    lyrics = read_lyrics(path)
    assert lyrics.schema == "kaggle_train"  # the BOM does not hide the first column's name
    assert lyrics.frame["artist"].tolist() == ["A", "B"]
    assert lyrics.frame["text"].tolist() == ["line one\r\nline two", "x"]


def test_non_utf8_text_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("Artist,Song,Genre,Language,Lyrics\nA,S,Pop,es,coraz\u00f3n\n".encode("latin-1"))
    with pytest.raises(StudybenchError, match="latin.csv: not a UTF-8 text CSV file"):
        read_lyrics(path)
