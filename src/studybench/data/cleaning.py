"""Fit-free cleaning of lyrics: the same function on every file, nothing learned.

Order matters and is the study's defect fixed: line breaks and punctuation are
normalised and the text lower-cased *before* stop words are removed, and the
stop-word list is that of the song's own language (stopwords-iso), English
where the language is unknown.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from studybench.config import CleaningConfig

# A token is a run of letters/digits, possibly with in-word apostrophes ("don't", "rock'n'roll").
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_WHITESPACE = re.compile(r"\s+")


@lru_cache(maxsize=None)
def stopwords_for(language: str) -> frozenset[str] | None:
    """The stopwords-iso list for an ISO 639-1 code, or None where there is none."""
    import stopwordsiso

    if not language or not stopwordsiso.has_lang(language):
        return None
    return frozenset(w.casefold() for w in stopwordsiso.stopwords(language))


def clean_text(text: str, language: str, config: CleaningConfig) -> str:
    """Clean one song's lyrics (see the module doc for the order of steps)."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'")
    if config.lowercase:
        text = text.casefold()
    if config.strip_punctuation:
        tokens = _TOKEN.findall(text)
    else:
        tokens = _WHITESPACE.split(text.strip())
    if config.stopwords:
        stop = stopwords_for(language) or stopwords_for(config.default_language) or frozenset()
        tokens = [t for t in tokens if t.casefold() not in stop]
    return " ".join(t for t in tokens if t)


@dataclass
class CleaningReport:
    """What cleaning did to one file, saved with every run."""

    rows_in: int = 0
    dropped_missing_label: int = 0
    dropped_empty: int = 0
    dropped_duplicates: int = 0
    rows_out: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    stopword_fallback: dict[str, int] = field(default_factory=dict)  # language -> songs that used the default list


def clean_frame(frame: pd.DataFrame, config: CleaningConfig) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean the canonical frame: drop unlabelled and empty songs, clean text, optionally de-duplicate."""
    report = CleaningReport(rows_in=len(frame))
    frame = frame[frame["label"] != ""]
    report.dropped_missing_label = report.rows_in - len(frame)
    languages = frame["language"].where(frame["language"] != "", config.default_language)
    cleaned = [clean_text(t, lang, config) for t, lang in zip(frame["text"], languages)]
    frame = frame.assign(text=cleaned, language=languages)
    counts = frame["language"].value_counts()
    report.languages = {str(k): int(v) for k, v in counts.items()}
    report.stopword_fallback = {
        str(k): int(v) for k, v in counts.items() if config.stopwords and stopwords_for(str(k)) is None
    }
    n_tokens = frame["text"].str.count(" ") + (frame["text"] != "").astype(int)
    keep = n_tokens >= max(config.min_tokens, 1)
    report.dropped_empty = int((~keep).sum())
    frame = frame[keep]
    if config.dedupe:
        before = len(frame)
        frame = frame.drop_duplicates(subset="text", keep="first")
        report.dropped_duplicates = before - len(frame)
    report.rows_out = len(frame)
    return frame.reset_index(drop=True), report
