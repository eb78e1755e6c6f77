"""Compact, safe storage of fitted vocabularies.

skops writes every NumPy integer of a ``{term: index}`` dict as its own array
entry, which made saving a 200k-term TF-IDF model take minutes and 45 MB. The
vocabulary is stored instead as one newline-joined string of terms in index
order (terms never contain whitespace: they are whitespace-split tokens and
n-grams of them joined by spaces, so newlines cannot occur) and rebuilt on load.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer


def pack(vocabulary: dict[str, int]) -> str:
    """Terms in index order, newline-joined; indices must be 0..n-1 or 1..n."""
    terms = sorted(vocabulary, key=vocabulary.__getitem__)
    return "\n".join(terms)


def unpack(packed: str, start: int = 0) -> dict[str, int]:
    """Inverse of :func:`pack`, with indices counting from ``start``."""
    return {term: i for i, term in enumerate(packed.split("\n") if packed else [], start=start)}


class _Packed:
    """Stores ``vocabulary_`` packed (see the module doc); a mixin for the vectorizers below."""

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__ itself
        if "vocabulary_" in state:
            state["vocabulary_packed_"] = pack(state.pop("vocabulary_"))
        return state

    def __setstate__(self, state):
        if "vocabulary_packed_" in state:
            state = dict(state)
            state["vocabulary_"] = unpack(state.pop("vocabulary_packed_"))
        super().__setstate__(state)


class Tfidf(_Packed, TfidfVectorizer):
    """scikit-learn's TfidfVectorizer, stored compactly (see the module doc)."""


class Counts(_Packed, CountVectorizer):
    """scikit-learn's CountVectorizer, stored compactly. Its terms are word n-grams or the
    ``char_wb`` character n-grams of whitespace-split words: neither holds a newline."""
