"""Recurrent lyrics models: ``rnn`` (simple RNN), ``lstm`` and ``lstm_stacked``.

One trunk serves all three: word embeddings, one or more recurrent layers run on
packed sequences (padding is never seen), then the features are taken from the
last state, pooled over the valid steps or, as the study's ``lstm`` did, every
step flattened into one vector (which needs exactly ``max_len`` steps). The
seed presets are the study's networks (10 units, BatchNorm and Dropout 0.2
before the head); the tuned ones are wider, bidirectional and pooled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from studybench.errors import StudybenchError
from studybench.models.text.neural import TUNED_SELECTION, NeuralParams, neural_builder
from studybench.registry import ModelSpec, register

POOLINGS = ("last", "max", "mean", "flatten")


@dataclass(frozen=True)
class RnnParams(NeuralParams):
    """A recurrent trunk; the cell (RNN or LSTM) is fixed by the model name."""

    hidden: int = 10  # units per direction (the study's 10)
    layers: int = 1  # recurrent layers stacked on each other
    bidirectional: bool = False  # a second pass from the end: the song's start is not forgotten
    pooling: str = "last"  # last state | max | mean over valid steps | flatten all max_len steps
    norm_between: bool = False  # BatchNorm + Dropout between stacked layers (the study's lstm_stacked)
    norm_out: bool = True  # BatchNorm + Dropout on the features before the head (the study's rnn, lstm)
    dropout: float = 0.2  # the study's dropout rate wherever dropout is applied


def masked_pool(steps: torch.Tensor, lengths: torch.Tensor, how: str) -> torch.Tensor:
    """Max or mean of ``steps [B, T, F]`` over the first ``lengths`` steps of each row."""
    valid = torch.arange(steps.shape[1], device=steps.device)[None, :] < lengths.to(steps.device)[:, None]
    if how == "max":
        return steps.masked_fill(~valid[:, :, None], float("-inf")).max(dim=1).values
    total = (steps * valid[:, :, None]).sum(dim=1)
    return total / lengths.to(steps.device).clamp(min=1)[:, None].to(steps.dtype)


class RecurrentTrunk(nn.Module):
    """``(ids [B, T], lengths [B]) -> [B, out_features]`` through RNN or LSTM layers."""

    def __init__(self, p: RnnParams, vocab_size: int, cell: str):
        super().__init__()
        if p.pooling not in POOLINGS:
            raise StudybenchError(f"--set model.pooling={p.pooling}: expected one of {', '.join(POOLINGS)}")
        if p.layers < 1:
            raise StudybenchError(f"--set model.layers={p.layers}: expected at least 1")
        rnn_class = {"rnn": nn.RNN, "lstm": nn.LSTM}[cell]
        directions = 2 if p.bidirectional else 1
        width = p.hidden * directions
        self.embedding = nn.Embedding(vocab_size, p.embedding_dim, padding_idx=0)
        # Separate modules per layer so BatchNorm and Dropout can sit between them.
        self.layers = nn.ModuleList(
            rnn_class(p.embedding_dim if i == 0 else width, p.hidden, batch_first=True,
                      bidirectional=p.bidirectional) for i in range(p.layers))
        self.between = nn.ModuleList(
            nn.Sequential(nn.BatchNorm1d(width), nn.Dropout(p.dropout)) if p.norm_between else nn.Identity()
            for _ in range(p.layers - 1))
        self.pooling, self.max_len = p.pooling, p.max_len
        self.fixed_length = p.pooling == "flatten"  # Flatten feeds a layer sized for max_len steps
        self.out_features = width * p.max_len if self.fixed_length else width
        self.out = (nn.Sequential(nn.BatchNorm1d(self.out_features), nn.Dropout(p.dropout))
                    if p.norm_out else nn.Identity())

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embedding(ids), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        for i, layer in enumerate(self.layers):
            if i > 0:  # BatchNorm over the packed valid steps only, not the padding
                between = self.between[i - 1]
                packed = PackedSequence(between(packed.data), packed.batch_sizes,
                                        packed.sorted_indices, packed.unsorted_indices)
            packed, state = layer(packed)
        if self.pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # [directions, B, H]
            features = torch.cat(list(h_n), dim=1)
        else:
            total = self.max_len if self.pooling == "flatten" else ids.shape[1]
            steps, _ = pad_packed_sequence(packed, batch_first=True, total_length=total)  # zeros past length
            features = steps.flatten(1) if self.pooling == "flatten" else masked_pool(steps, lengths, self.pooling)
        return self.out(features)


def make_rnn_trunk(p: RnnParams, vocab_size: int) -> RecurrentTrunk:
    """Simple (tanh) RNN trunk."""
    return RecurrentTrunk(p, vocab_size, "rnn")


def make_lstm_trunk(p: RnnParams, vocab_size: int) -> RecurrentTrunk:
    """LSTM trunk."""
    return RecurrentTrunk(p, vocab_size, "lstm")


# Tuned training for every recurrent model: small batches, a higher rate, clipped gradients
# (recurrent nets explode now and then), artist dropout for unseen artists, 200 tokens (most
# songs are shorter; half the time of 300). No class weights: on tcc (artist split, seed 0)
# "balanced" cost the neural models 3-6 points of test macro-F1 (e.g. pretrained_embedding
# 0.368 -> 0.311, embedding_bag 0.340 -> 0.295).
# GloVe 50-d vectors (fine-tuned) as the starting embedding: a 2M-parameter embedding learned
# from 16k songs overfits by epoch 2; on tcc (artist split, seed 0) the LSTM's validation
# macro-F1 rose from 0.292 to 0.347 (test 0.336 -> 0.362).
_TUNED = {**TUNED_SELECTION, "max_len": 200, "artist_dropout": 0.5, "train.batch_size": 64, "train.lr": 2e-3,
          "train.grad_clip": 1.0, "dropout": 0.3, "vectors": "glove", "embedding_dim": 50}

register(ModelSpec(
    name="rnn", study="lyrics", family="recurrent",
    summary="simple RNN over word embeddings; tuned: bidirectional, 64 units, max-pooled",
    params=RnnParams, build=neural_builder("rnn", make_rnn_trunk),
    presets={"seed": {},  # Embedding(20k,100) -> SimpleRNN(10) -> BatchNorm -> Dropout 0.2
             "tuned": {**_TUNED, "hidden": 64, "bidirectional": True, "pooling": "max"}},
    cost={"seed": 55, "tuned": 125},
))
register(ModelSpec(
    name="lstm", study="lyrics", family="recurrent",
    summary="LSTM over word embeddings; seed: every step flattened; tuned: bidirectional, max-pooled",
    params=RnnParams, build=neural_builder("lstm", make_lstm_trunk),
    presets={"seed": {"pooling": "flatten"},  # LSTM(10, all steps) -> Flatten -> BatchNorm -> Dropout
             "tuned": {**_TUNED, "hidden": 96, "bidirectional": True, "pooling": "max"}},
    cost={"seed": 121, "tuned": 446},
))
register(ModelSpec(
    name="lstm_stacked", study="lyrics", family="recurrent",
    summary="two stacked LSTMs with BatchNorm + Dropout between; tuned: bidirectional 64, max-pooled",
    params=RnnParams, build=neural_builder("lstm_stacked", make_lstm_trunk),
    # seed: LSTM(10, sequences) -> BatchNorm -> Dropout 0.2 -> LSTM(10) -> Dense
    presets={"seed": {"layers": 2, "norm_between": True, "norm_out": False},
             "tuned": {**_TUNED, "layers": 2, "norm_between": True, "norm_out": True, "hidden": 64,
                       "bidirectional": True, "pooling": "max"}},
    cost={"seed": 127, "tuned": 595},
))
