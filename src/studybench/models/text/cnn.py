"""Convolutional lyrics models: ``cnn_same_kernel``, ``cnn_multi_kernel``, ``cnn_lstm``
and ``cnn_flat_lstm``.

The study's stack is a sequence of blocks [Conv1d (Keras 'valid' padding) ->
BatchNorm -> ReLU -> MaxPool -> Dropout]; after it come a Flatten + Dense (which
needs exactly ``max_len`` tokens), an LSTM over the pooled steps, or the study's
"method 2": every flattened value as one step of a scalar sequence. The tuned
multi-kernel model is Kim's (2014) text CNN instead: parallel branches, one per
kernel size, each max-pooled over the song's valid positions.

The convolutions run as 2-D convolutions of height 1 over a channels-last view of the
embeddings (``[B, T, C]`` seen as ``[B, C, 1, T]`` without a copy): the same weights and
the same arithmetic as ``Conv1d`` on ``[B, C, T]``, but oneDNN's channels-last kernels
train the tuned text CNNs 1.15-1.3x faster on one CPU thread, and no transposed copy of
the embeddings is made (benchmarks/RESULTS.md, "The text CNNs' convolutions in
channels-last layout"). The modules stay ``Conv1d`` / ``BatchNorm1d`` / ``MaxPool1d``, so
parameters, state-dict keys and saved models are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from studybench.errors import StudybenchError
from studybench.models.text.neural import TRAIN_SPACE, TUNED_BUDGET, TUNED_SELECTION, NeuralParams, neural_builder
from studybench.models.text.rnn import masked_pool, run_recurrent
from studybench.registry import ModelSpec, register


@dataclass(frozen=True)
class ConvStackParams(NeuralParams):
    """The convolution blocks shared by every CNN model."""

    filters: int = 30  # channels per convolution (the study's 30)
    kernels: tuple[int, ...] = (3, 3, 3)  # one block per kernel, in sequence (parallel: one branch each)
    pool: int = 2  # max-pool width after each block (the study's 2)
    conv_dropout: float = 0.2  # dropout at the end of each block (the study's 0.2)


@dataclass(frozen=True)
class CnnParams(ConvStackParams):
    """A CNN classifier: the stack (or parallel branches) then a dense layer."""

    parallel: bool = False  # Kim's text CNN: branches side by side over the embeddings, max over time
    pooling: str = "flatten"  # flatten (the study; fixes the length to max_len) | max over valid positions
    dense: int = 50  # units of the Dense relu after pooling (the study's 50); 0 = none
    dropout: float = 0.0  # dropout on the pooled features (Kim's 0.5); the study had none


@dataclass(frozen=True)
class CnnLstmParams(ConvStackParams):
    """The stack, then an LSTM over its output."""

    hidden: int = 10  # LSTM units per direction (the study's 10)
    bidirectional: bool = False  # read the pooled steps both ways
    dropout: float = 0.2  # after the BatchNorm on the LSTM state (the study's 0.2)


def steps_as_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, C]`` (embeddings, steps first) -> ``[B, C, 1, T]`` in channels-last memory: a
    view, no copy."""
    return x.unsqueeze(1).permute(0, 3, 1, 2)


def conv_steps(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` (a ``Conv1d``) applied along the last axis of ``x`` ``[B, C, 1, T]`` as a
    height-1 2-D convolution, which keeps channels-last memory."""
    return F.conv2d(x, conv.weight.unsqueeze(2), conv.bias, (1, conv.stride[0]), (0, conv.padding[0]),
                    (1, conv.dilation[0]), conv.groups)


def dropout_steps(drop: nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    """``drop`` on channels-last ``x`` ``[B, C, 1, T]`` with the mask drawn in the logical
    order of ``[B, C, T]`` (dropout on channels-last memory would draw it in memory order):
    for a given seed the same songs' features are dropped as by ``Dropout`` on the Conv1d
    layout."""
    if not drop.training or drop.p == 0:
        return x
    if drop.p >= 1:
        return x * 0
    keep = 1 - drop.p
    noise = torch.empty(x.shape, dtype=x.dtype).bernoulli_(keep).div_(keep)
    return x * noise.contiguous(memory_format=torch.channels_last)


class _BatchNormSteps(nn.BatchNorm1d):
    """``BatchNorm1d`` that also takes ``[B, C, 1, T]`` (per-channel statistics over batch and
    steps, exactly as on ``[B, C, T]``); its parameters and buffers are BatchNorm1d's."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2-D, 3-D or 4-D input (got {input.dim()}-D input)")


class ConvStack(nn.Module):
    """``[B, T, C]`` embeddings -> ``[B, T', filters]`` and the valid length of each row after
    every block (the output is a view of channels-last memory: steps first, contiguous)."""

    def __init__(self, p: ConvStackParams, channels: int):
        super().__init__()
        if not p.kernels:
            raise StudybenchError("--set model.kernels: needs at least one kernel size")
        self.kernels, self.pool = p.kernels, p.pool
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(channels if i == 0 else p.filters, p.filters, k),
                          _BatchNormSteps(p.filters), nn.ReLU(), nn.MaxPool1d(p.pool), nn.Dropout(p.conv_dropout))
            for i, k in enumerate(p.kernels))
        self.min_len = 1  # the shortest input giving one output step, found backwards through the blocks
        for k in reversed(p.kernels):
            self.min_len = self.min_len * p.pool + k - 1

    def out_len(self, length: torch.Tensor | int):
        """Steps left from ``length`` input steps (valid convolution, floor pooling)."""
        for k in self.kernels:
            length = (length - k + 1) // self.pool
        return length

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = steps_as_channels_last(x)
        if x.shape[3] < self.min_len:  # a trimmed batch of short songs: pad so every block has input
            x = F.pad(x, (0, self.min_len - x.shape[3]))
        for conv, norm, act, pool, drop in self.blocks:
            x = dropout_steps(drop, F.max_pool2d(act(norm(conv_steps(conv, x))), (1, pool.kernel_size)))
        return x.squeeze(2).transpose(1, 2), self.out_len(lengths).clamp(min=1)  # a too-short song keeps its first step


def _stack_fits(p: ConvStackParams, stack: ConvStack) -> None:
    if p.max_len < stack.min_len:
        raise StudybenchError(f"--set model.max_len={p.max_len}: the kernels {p.kernels} with pooling "
                              f"{p.pool} need at least {stack.min_len} tokens")


class CnnTrunk(nn.Module):
    """Embedding -> conv stack or parallel branches -> flatten or masked max -> Dense relu."""

    def __init__(self, p: CnnParams, vocab_size: int):
        super().__init__()
        if p.pooling not in ("flatten", "max"):
            raise StudybenchError(f"--set model.pooling={p.pooling}: expected flatten or max")
        if p.parallel and p.pooling == "flatten":
            raise StudybenchError("parallel branches are max-pooled: --set model.pooling=max")
        self.embedding = nn.Embedding(vocab_size, p.embedding_dim, padding_idx=0)
        self.parallel, self.pooling, self.max_len = p.parallel, p.pooling, p.max_len
        if p.parallel:
            self.branches = nn.ModuleList(nn.Conv1d(p.embedding_dim, p.filters, k) for k in p.kernels)
            width = p.filters * len(p.kernels)
        else:
            self.stack = ConvStack(p, p.embedding_dim)
            _stack_fits(p, self.stack)
            width = p.filters * (self.stack.out_len(p.max_len) if p.pooling == "flatten" else 1)
        self.fixed_length = p.pooling == "flatten"  # Flatten feeds a Dense layer sized for max_len
        layers: list[nn.Module] = [nn.Dropout(p.dropout)] if p.dropout else []
        if p.dense:
            layers += [nn.Linear(width, p.dense), nn.ReLU()]
            width = p.dense
        self.out, self.out_features = nn.Sequential(*layers), width

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)  # [B, T, embedding_dim]
        if self.parallel:
            x = steps_as_channels_last(x)
            widest = max(b.kernel_size[0] for b in self.branches)
            if x.shape[3] < widest:
                x = F.pad(x, (0, widest - x.shape[3]))
            pooled = [masked_pool(F.relu(conv_steps(b, x)).squeeze(2).transpose(1, 2),
                                  (lengths - b.kernel_size[0] + 1).clamp(min=1), "max") for b in self.branches]
            return self.out(torch.cat(pooled, dim=1))
        x, valid = self.stack(x, lengths)  # [B, T', filters]
        # flatten filter-major, as the Conv1d layout [B, filters, T'] was flattened
        features = x.transpose(1, 2).flatten(1) if self.pooling == "flatten" else masked_pool(x, valid, "max")
        return self.out(features)


class CnnLstmTrunk(nn.Module):
    """Embedding -> conv stack -> LSTM (over pooled steps, or over every value: ``flat``)
    -> BatchNorm -> Dropout."""

    def __init__(self, p: CnnLstmParams, vocab_size: int, flat: bool):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, p.embedding_dim, padding_idx=0)
        self.stack = ConvStack(p, p.embedding_dim)
        _stack_fits(p, self.stack)
        self.flat, self.max_len = flat, p.max_len
        self.lstm = nn.LSTM(1 if flat else p.filters, p.hidden, batch_first=True, bidirectional=p.bidirectional)
        self.out_features = p.hidden * (2 if p.bidirectional else 1)
        # The study's method 2 flattens a fixed max_len-token stack into one long sequence.
        self.fixed_length = flat
        self.out = nn.Sequential(nn.BatchNorm1d(self.out_features), nn.Dropout(p.dropout))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x, valid = self.stack(self.embedding(ids), lengths)  # [B, T', filters]: steps first, as Keras' layout
        if self.flat:  # Flatten (step-major, as Keras) to a sequence of scalars
            x, valid = x.reshape(len(x), -1, 1), valid * x.shape[2]
        _, h_n = run_recurrent(self.lstm, x, valid)  # the state at each song's last valid step
        return self.out(torch.cat(list(h_n), dim=1))


def make_cnn_trunk(p: CnnParams, vocab_size: int) -> CnnTrunk:
    """Sequential stack or parallel-branch CNN trunk."""
    return CnnTrunk(p, vocab_size)


def make_cnn_lstm_trunk(p: CnnLstmParams, vocab_size: int) -> CnnLstmTrunk:
    """Conv stack then an LSTM over the pooled steps (the study's method 1)."""
    return CnnLstmTrunk(p, vocab_size, flat=False)


def make_cnn_flat_lstm_trunk(p: CnnLstmParams, vocab_size: int) -> CnnLstmTrunk:
    """Conv stack flattened to a scalar sequence then an LSTM (the study's method 2)."""
    return CnnLstmTrunk(p, vocab_size, flat=True)


# Tuned training for every CNN: smaller batches, a higher rate, artist dropout so unseen
# artists are classified from the lyrics. No class weights (they cost the neural models
# 3-6 points of macro-F1 on tcc; see rnn.py).
# At most 12 epochs (TUNED_BUDGET's 15 less 3): replayed on the grid's histories (seeds 0-2,
# both feature sets, 24 runs) none keeps another epoch; half the filters (cnn_same_kernel,
# cnn_multi_kernel) or half the LSTM (cnn_flat_lstm) were 1.3-1.9x faster but cost 1.4-2.4
# points of validation macro-F1 with the artist (benchmarks/RESULTS.md, "Narrower tuned
# lyrics models"), so the widths stay.
_TUNED = {**TUNED_SELECTION, **TUNED_BUDGET, "train.epochs": 12, "artist_dropout": 0.5, "train.batch_size": 128, "train.lr": 2e-3}
# The CNN -> LSTM models overfit their from-scratch embedding by epoch 2; starting from
# GloVe 50-d (fine-tuned) lifts cnn_lstm from 0.217 to 0.274 validation macro-F1 (tcc,
# artist split, seed 0). The pure CNNs did not gain: cnn_multi_kernel 0.339 -> 0.326.
_GLOVE = {"vectors": "glove", "embedding_dim": 50}

register(ModelSpec(
    name="cnn_same_kernel", study="lyrics", family="cnn",
    summary="3 conv blocks with kernel 3; seed: flattened into Dense 50; tuned: 128 filters, max over time",
    params=CnnParams, build=neural_builder("cnn_same_kernel", make_cnn_trunk),
    presets={"seed": {},  # 3 x [Conv1D(30, 3) -> BN -> ReLU -> MaxPool 2 -> Dropout 0.2] -> Flatten -> Dense 50
             "tuned": {**_TUNED, "filters": 128, "pooling": "max", "dense": 64, "dropout": 0.3}},
    cost={"seed": 286, "tuned": 234},
    space=TRAIN_SPACE,
))
register(ModelSpec(
    name="cnn_multi_kernel", study="lyrics", family="cnn",
    summary="kernels 3, 4, 5; seed: in sequence (the study); tuned: Kim's parallel branches",
    params=CnnParams, build=neural_builder("cnn_multi_kernel", make_cnn_trunk),
    presets={"seed": {"kernels": (3, 4, 5)},
             "tuned": {**_TUNED, "kernels": (3, 4, 5), "parallel": True, "filters": 100,
                       "pooling": "max", "dense": 0, "dropout": 0.5}},
    cost={"seed": 297, "tuned": 294},
    space=TRAIN_SPACE,
))
register(ModelSpec(
    name="cnn_lstm", study="lyrics", family="cnn",
    summary="conv blocks then an LSTM over the pooled steps (the study's method 1)",
    params=CnnLstmParams, build=neural_builder("cnn_lstm", make_cnn_lstm_trunk),
    presets={"seed": {},  # CNN stack -> LSTM(10) -> BatchNorm -> Dropout 0.2
             "tuned": {**_TUNED, **_GLOVE, "filters": 64, "hidden": 64, "bidirectional": True,
                       "dropout": 0.3, "train.grad_clip": 1.0}},
    cost={"seed": 119, "tuned": 107},
    space=TRAIN_SPACE,
))
register(ModelSpec(
    name="cnn_flat_lstm", study="lyrics", family="cnn",
    summary="conv blocks flattened to a scalar sequence for an LSTM (the study's method 2; slow)",
    params=CnnLstmParams, build=neural_builder("cnn_flat_lstm", make_cnn_flat_lstm_trunk),
    # seed: 300 tokens -> 35 steps x 30 filters = a 1,050-step scalar sequence -> LSTM(10)
    presets={"seed": {},
             "tuned": {**_TUNED, **_GLOVE, "max_len": 200, "pool": 3, "hidden": 32,  # 180 scalar steps
                       "train.grad_clip": 1.0}},
    cost={"seed": 1230, "tuned": 193},
    space=TRAIN_SPACE,
))
