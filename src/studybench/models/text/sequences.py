"""Padded word-id sequences, as the study fed its decision tree.

Keras semantics, so the ``seed`` preset matches the notebooks: the vocabulary is
the ``max_words - 1`` most frequent training words (id 0 is padding), words
outside it are dropped, and sequences are padded and truncated at the front.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from studybench.models.text.vocab import pack, unpack


class TokenSequences(TransformerMixin, BaseEstimator):
    """Whitespace tokens -> fixed-length int32 id sequences; learns its vocabulary in ``fit`` only."""

    def __init__(self, max_words: int = 20000, max_len: int = 300):
        self.max_words = max_words
        self.max_len = max_len

    def fit(self, texts, y=None):
        counts = Counter(word for text in texts for word in text.split())
        # Ties broken by first appearance (Counter keeps insertion order), like Keras' Tokenizer.
        words = [w for w, _ in counts.most_common(self.max_words - 1)]
        self.vocabulary_ = {w: i + 1 for i, w in enumerate(words)}
        return self

    def transform(self, texts):
        out = np.zeros((len(texts), self.max_len), dtype=np.int32)
        vocab = self.vocabulary_
        for row, text in enumerate(texts):
            ids = [vocab[w] for w in text.split() if w in vocab][-self.max_len:]
            if ids:
                out[row, self.max_len - len(ids):] = ids
        return out

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__ itself
        if "vocabulary_" in state:  # stored compactly; ids count from 1 (0 is padding)
            state["vocabulary_packed_"] = pack(state.pop("vocabulary_"))
        return state

    def __setstate__(self, state):
        if "vocabulary_packed_" in state:
            state = dict(state)
            state["vocabulary_"] = unpack(state.pop("vocabulary_packed_"), start=1)
        super().__setstate__(state)

    def get_feature_names_out(self, input_features=None):
        return np.array([f"token_{i}" for i in range(self.max_len)], dtype=object)
