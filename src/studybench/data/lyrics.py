"""Reading lyrics CSV files of every supported schema into one canonical frame.

The canonical frame has the columns ``row`` (1-based data row in the file),
``text``, ``label`` (normalised genre), ``artist``, ``language`` and ``song``;
missing optional columns are empty strings. Schemas are detected from the
header where that is unambiguous; ``--set data.schema=NAME`` or
``--set data.columns.text=…`` settle the rest.
"""

from __future__ import annotations

import dataclasses
import lzma
import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studybench.config import Columns, DataConfig
from studybench.errors import StudybenchError

FIELDS = ("text", "label", "artist", "language", "song")


@dataclass(frozen=True)
class Schema:
    """A known file layout: the header it needs and which column is which field."""

    name: str
    description: str
    required: tuple[str, ...]  # header names (case-insensitive) that identify the schema
    columns: Columns  # canonical field -> column name


SCHEMAS: dict[str, Schema] = {
    s.name: s
    for s in (
        Schema(
            "kaggle_train",
            "Kaggle 'Multi-Lingual Lyrics for Genre Classification' train.csv",
            ("Artist", "Song", "Genre", "Language", "Lyrics"),
            Columns(text="Lyrics", label="Genre", artist="Artist", language="Language", song="Song"),
        ),
        Schema(
            "kaggle_test",
            "Kaggle 'Multi-Lingual Lyrics for Genre Classification' test.csv (English)",
            ("Song", "Song year", "Artist", "Genre", "Lyrics", "Track_id"),
            Columns(text="Lyrics", label="Genre", artist="Artist", song="Track_id"),
        ),
        Schema(
            "tcc_ceds",
            "tcc_ceds_music.csv as in ../shared/data (Artist, Song, Year, Genre, Lyrics)",
            ("Artist", "Song", "Year", "Genre", "Lyrics"),
            Columns(text="Lyrics", label="Genre", artist="Artist", song="Song"),
        ),
        Schema(
            "tcc_ceds_mendeley",
            "tcc_ceds_music.csv as published on Mendeley (artist_name, track_name, genre, lyrics, …)",
            ("artist_name", "track_name", "release_date", "genre", "lyrics"),
            Columns(text="lyrics", label="genre", artist="artist_name", song="track_name"),
        ),
        Schema(
            "mlgc_sample",
            "rows drawn from the Kaggle train.csv without artists (textid, Language, Genre, Lyrics)",
            ("textid", "Language", "Genre", "Lyrics"),
            Columns(text="Lyrics", label="Genre", language="Language", song="textid"),
        ),
    )
}


@dataclass(frozen=True)
class LyricsFile:
    """A lyrics file read into the canonical frame, with where it came from."""

    path: str
    schema: str
    frame: pd.DataFrame

    @property
    def has_artist(self) -> bool:
        return bool((self.frame["artist"] != "").any())


def normalize_label(value: str) -> str:
    """One spelling per genre across files: ``Hip-Hop``, ``hip hop``, ``HIP_HOP`` -> ``hip hop``."""
    value = unicodedata.normalize("NFKC", str(value)).strip().casefold()
    return re.sub(r"[\s_\-]+", " ", value)


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally compressed) as strings, turning parser failures into one-line errors."""
    path = Path(path)
    if not path.exists():
        raise StudybenchError(f"{path}: file not found")
    if path.is_dir():
        raise StudybenchError(f"{path}: is a folder, expected a CSV file")
    if path.stat().st_size == 0:
        raise StudybenchError(f"{path}: empty file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="error")
    except pd.errors.EmptyDataError:
        raise StudybenchError(f"{path}: empty file (no header)") from None
    except pd.errors.ParserError as exc:
        raise StudybenchError(f"{path}: malformed CSV: {_parser_reason(exc)}") from None
    except UnicodeDecodeError:
        raise StudybenchError(f"{path}: not a UTF-8 text CSV file") from None
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:  # e.g. a damaged .gz/.xz
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudybenchError(f"{path}: cannot be read as CSV ({reason})") from None
    if frame.empty:
        raise StudybenchError(f"{path}: has a header but no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _parser_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1]
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if match:
        want, line, saw = match.groups()
        return f"line {line} has {saw} fields, the header has {want}"
    return text


def detect_schema(header: list[str], path: str | Path = "<file>") -> Schema | None:
    """The most specific schema whose columns are all in ``header``; None if none fits."""
    have = {h.casefold() for h in header}
    fits = [s for s in SCHEMAS.values() if {c.casefold() for c in s.required} <= have]
    if not fits:
        return None
    best = max(len(s.required) for s in fits)
    top = [s for s in fits if len(s.required) == best]
    if len(top) > 1:
        names = ", ".join(s.name for s in top)
        raise StudybenchError(
            f"{path}: header fits several schemas ({names}); choose one with --set data.schema=NAME"
        )
    return top[0]


def resolve_columns(header: list[str], config: DataConfig, path: str | Path) -> tuple[str, Columns, dict]:
    """Which column holds which field: the named or detected schema, then explicit mappings;
    also the fields whose column was found by name rather than given (see :func:`_check_twins`)."""
    explicit = {k: v for k, v in dataclasses.asdict(config.columns).items() if v}
    if config.schema == "auto":
        schema = detect_schema(header, path)
        if schema is None and "text" not in explicit:
            have = {h.casefold() for h in header}
            if have & {"lyrics", "lyric", "text"} and not have & {"genre", "label", "tag"}:
                raise StudybenchError(f"{path}: no genre column (columns: {', '.join(header)}); "
                                      "map one with --set data.columns.label=NAME")
            raise StudybenchError(
                f"{path}: no lyrics column found (columns: {', '.join(header)}); "
                "map one with --set data.columns.text=NAME and data.columns.label=NAME"
            )
    elif config.schema in SCHEMAS:
        schema = SCHEMAS[config.schema]
    else:
        raise StudybenchError(
            f"--set data.schema={config.schema}: unknown schema (known: auto, {', '.join(SCHEMAS)})"
        )
    mapping = dataclasses.asdict(schema.columns) if schema else {f: "" for f in FIELDS}
    mapping.update(explicit)
    by_fold = {h.casefold(): h for h in header}
    resolved = {}
    for fld, column in mapping.items():
        if not column:
            resolved[fld] = ""
            continue
        if column.casefold() not in by_fold:
            what = "lyrics" if fld == "text" else "genre" if fld == "label" else fld
            raise StudybenchError(
                f"{path}: no {what} column {column!r} (columns: {', '.join(header)})"
            )
        resolved[fld] = by_fold[column.casefold()]
    if not resolved["label"]:
        raise StudybenchError(f"{path}: no genre column; map one with --set data.columns.label=NAME")
    chosen = {fld: column for fld, column in resolved.items() if column and fld not in explicit}
    name = schema.name if schema and not explicit else (f"{schema.name}+mapping" if schema else "custom")
    return name, Columns(**resolved), chosen


def _check_twins(raw: pd.DataFrame, column: str, fld: str, path: str | Path) -> None:
    """A column found by name may have a twin (``Genre`` and ``genre``, or a repeated header,
    which pandas reads as ``Genre.1``); twins that disagree are an error, never a silent pick."""
    twin_name = re.compile(rf"{re.escape(column.casefold())}(\.\d+)?")
    for other in raw.columns:
        if other != column and twin_name.fullmatch(str(other).casefold()):
            differ = (raw[other].str.strip() != raw[column].str.strip()).to_numpy().nonzero()[0]
            if len(differ):
                what = "lyrics" if fld == "text" else "genre" if fld == "label" else fld
                shown = other if not re.fullmatch(r".*\.\d+", str(other)) else f"a second {column!r}"
                raise StudybenchError(
                    f"{path}: columns {column!r} and {shown} could both be the {what} column and disagree "
                    f"(row {differ[0] + 1}: {raw[column].iloc[differ[0]]!r} vs {raw[other].iloc[differ[0]]!r}); "
                    f"keep one or choose with --set data.columns.{fld}=NAME")


def read_lyrics(path: str | Path, config: DataConfig | None = None) -> LyricsFile:
    """Read ``path`` in any supported schema into the canonical frame."""
    config = config or DataConfig()
    raw = read_csv(path)
    schema, columns, found = resolve_columns(list(raw.columns), config, path)
    for fld, column in found.items():
        _check_twins(raw, column, fld, path)
    frame = pd.DataFrame({"row": range(1, len(raw) + 1)})
    for fld in FIELDS:
        column = getattr(columns, fld)
        frame[fld] = raw[column].astype(str).to_numpy() if column else ""
    frame["label"] = frame["label"].map(normalize_label)
    frame["artist"] = frame["artist"].str.strip()
    frame["language"] = frame["language"].str.strip().str.casefold()
    return LyricsFile(path=str(path), schema=schema, frame=frame)
