"""The shared classifier head: where "+artist" happens, once, for every neural model.

The artist is a second input: an embedding learned on the training split, with
index 0 as the bucket for artists not seen in training and for songs without
one. Artist dropout sends a random share of training songs to that bucket, so
the model learns to classify unknown artists from the lyrics alone.
"""

from __future__ import annotations

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """``features [B, F]`` (+ ``artist [B]`` ids) -> logits ``[B, n_classes]``."""

    def __init__(self, in_features: int, n_classes: int, n_artists: int = 0, artist_dim: int = 16,
                 artist_dropout: float = 0.0):
        super().__init__()
        self.artist_dropout = artist_dropout
        self.artist = nn.Embedding(n_artists + 1, artist_dim) if n_artists else None
        self.out = nn.Linear(in_features + (artist_dim if n_artists else 0), n_classes)

    def forward(self, features: torch.Tensor, artist: torch.Tensor | None = None) -> torch.Tensor:
        if self.artist is not None:
            if artist is None:
                artist = torch.zeros(len(features), dtype=torch.long, device=features.device)
            if self.training and self.artist_dropout > 0:
                drop = torch.rand(artist.shape, device=artist.device) < self.artist_dropout
                artist = artist.masked_fill(drop, 0)
            features = torch.cat([features, self.artist(artist)], dim=1)
        return self.out(features)


class TextClassifier(nn.Module):
    """A text trunk (``ids, lengths -> features``) followed by the shared head."""

    def __init__(self, trunk: nn.Module, head: ClassifierHead):
        super().__init__()
        self.trunk, self.head = trunk, head

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, artist: torch.Tensor | None = None):
        return self.head(self.trunk(ids, lengths), artist)
