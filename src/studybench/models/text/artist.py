"""The artist branch of the classical models: one-hot artists with artist dropout.

Unknown artists (and songs without one) encode as all zeros, so the lyrics
decide. Without more, a linear model can explain its training songs by the
artist alone and learn little from the lyrics, then fail on unseen artists.
Artist dropout blanks the artist of a seeded random fraction of training songs
while fitting (never when transforming), so the lyric weights must carry those
songs: the scikit-learn form of the neural head's artist dropout.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import OneHotEncoder


class ArtistEncoder(TransformerMixin, BaseEstimator):
    """One-hot artist ids learned on the training split; ``dropout`` applies in ``fit_transform`` only."""

    def __init__(self, dropout: float = 0.0, seed: int = 0):
        self.dropout = dropout
        self.seed = seed

    def fit(self, frame, y=None):
        artists = np.asarray(frame, dtype=object).reshape(-1, 1)
        known = artists[artists[:, 0] != ""]
        self.encoder_ = OneHotEncoder(handle_unknown="ignore", dtype=np.float32)
        # With no artist at all, a placeholder category no song can have keeps every row zero.
        self.encoder_.fit(known if len(known) else np.array([["\0no artist"]], dtype=object))
        return self

    def transform(self, frame):
        return self.encoder_.transform(np.asarray(frame, dtype=object).reshape(-1, 1))

    def fit_transform(self, frame, y=None):
        encoded = self.fit(frame).transform(frame).tocsr()
        if self.dropout > 0:
            rng = np.random.default_rng(self.seed)
            keep = (rng.random(encoded.shape[0]) >= self.dropout).astype(np.float32)
            encoded = encoded.multiply(keep[:, None]).tocsr()
            encoded.eliminate_zeros()
        return encoded

    def get_feature_names_out(self, input_features=None):
        return self.encoder_.get_feature_names_out(["artist"])
