"""Recurrent lyrics models: ``rnn`` (simple RNN), ``lstm`` and ``lstm_stacked``.

One trunk serves all three: word embeddings, one or more recurrent layers that never
let padding reach a valid step (:func:`run_recurrent`), then the features are taken
from the last state, pooled over the valid steps or, as the study's ``lstm`` did,
every step flattened into one vector (which needs exactly ``max_len`` steps). The
seed presets are the study's networks (10 units, BatchNorm and Dropout 0.2
before the head); the tuned ones are wider, bidirectional and pooled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from studybench.errors import StudybenchError
from studybench.models.text.neural import TRAIN_SPACE, TUNED_BUDGET, TUNED_SELECTION, NeuralParams, neural_builder
from studybench.registry import ModelSpec, register
from studybench.training import engine

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


def valid_steps(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``[B, steps]`` mask: True at each row's first ``lengths`` steps."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def masked_pool(steps: torch.Tensor, lengths: torch.Tensor, how: str) -> torch.Tensor:
    """Max or mean of ``steps [B, T, F]`` over the first ``lengths`` steps of each row."""
    valid = valid_steps(lengths.to(steps.device), steps.shape[1])
    if how == "max":
        return steps.masked_fill(~valid[:, :, None], float("-inf")).max(dim=1).values
    total = (steps * valid[:, :, None]).sum(dim=1)
    return total / lengths.to(steps.device).clamp(min=1)[:, None].to(steps.dtype)


def run_recurrent(layer: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One single-layer ``nn.RNN``/``nn.LSTM`` (``batch_first``, either direction count)
    over a padded batch ``x [B, T, F]`` whose rows have ``lengths`` valid steps.

    Returns the outputs ``[B, T, directions * H]`` (zeros past each row's length) and the
    state at each row's last valid step ``[directions, B, H]``: what the layer gives on
    packed sequences, computed on the padded batch instead, where PyTorch runs an LSTM
    through oneDNN's fused kernels (5-8x faster on CPU than packed sequences, measured in
    benchmarks/RESULTS.md). Padding never reaches a valid step: the forward direction meets
    it only after a row's last step, and the reverse direction runs over each row reversed
    within its length, so its padding also comes last. The parameters are the layer's own
    (its state dict is unchanged); tests/models/test_recurrent.py checks the equality with
    packed sequences, values and gradients."""
    if layer.num_layers != 1 or not layer.batch_first:
        raise ValueError("run_recurrent takes one batch-first layer")
    if x.is_cpu and torch.is_autocast_enabled("cpu") and not engine.native_bf16():
        # oneDNN has no bf16 recurrent kernel without native bf16 (it refuses to build one
        # on AVX2): the layer runs in fp32 there, what the emulated bf16 would round to anyway
        with torch.autocast("cpu", enabled=False):
            return run_recurrent(layer, x.float(), lengths)
    lengths = lengths.to(x.device).clamp(min=1, max=x.shape[1])
    valid = valid_steps(lengths, x.shape[1])
    last = (lengths - 1)[:, None, None]
    outputs, states = [], []
    for suffix in ("", "_reverse")[:2 if layer.bidirectional else 1]:
        weights = [getattr(layer, f"{name}_l0{suffix}") for name in
                   (("weight_ih", "weight_hh", "bias_ih", "bias_hh") if layer.bias else ("weight_ih", "weight_hh"))]
        if suffix:  # each row reversed within its length; the padding stays behind it
            order = torch.arange(x.shape[1], device=x.device)[None, :].expand(len(x), -1)
            order = torch.where(valid, lengths[:, None] - 1 - order, order)
            inputs = x.gather(1, order[:, :, None].expand(-1, -1, x.shape[2]))
        else:
            inputs = x
        h0 = inputs.new_zeros(1, len(x), layer.hidden_size)
        # the op nn.LSTM / nn.RNN call themselves, with one direction's weights
        if isinstance(layer, nn.LSTM):
            out = torch._VF.lstm(inputs, (h0, h0), weights, layer.bias, 1, 0.0, layer.training, False, True)[0]
        else:
            op = torch._VF.rnn_tanh if layer.mode == "RNN_TANH" else torch._VF.rnn_relu
            out = op(inputs, h0, weights, layer.bias, 1, 0.0, layer.training, False, True)[0]
        states.append(out.gather(1, last.expand(-1, 1, out.shape[2]))[:, 0])
        if suffix:
            out = out.gather(1, order[:, :, None].expand(-1, -1, out.shape[2]))
        outputs.append(out)
    steps = torch.cat(outputs, dim=2)
    return steps * valid[:, :, None].to(steps.dtype), torch.stack(states)


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
        if self.pooling == "flatten" and ids.shape[1] < self.max_len:  # Flatten needs every step
            ids = nn.functional.pad(ids, (0, self.max_len - ids.shape[1]))
        steps = self.embedding(ids)
        valid = valid_steps(lengths.to(ids.device), ids.shape[1])
        for i, layer in enumerate(self.layers):
            if i > 0:  # BatchNorm (and Dropout) over the valid steps only, not the padding
                steps = steps.masked_scatter(valid[:, :, None], self.between[i - 1](steps[valid]))
            steps, h_n = run_recurrent(layer, steps, lengths)  # zeros past each length
        if self.pooling == "last":
            features = torch.cat(list(h_n), dim=1)  # [directions, B, H] -> [B, directions * H]
        else:
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
# Patience 2, not the other families' 3: every tuned recurrent run of the artist-split grid
# (tcc, seeds 0 and 1) peaked in validation macro-F1 by epoch 5, and replayed under patience 2
# each keeps the same epoch (the same weights, so the same test score) one epoch sooner
# (benchmarks/RESULTS.md, "Patience of the tuned recurrent presets").
# lstm and lstm_stacked: at most 4 epochs. Replayed on the grid's histories (seeds 0-2, both
# feature sets; exact, the first epochs do not depend on when a run stops) 11 of 12 runs keep
# their epoch and one keeps epoch 4 for 5 (-0.3 points of validation macro-F1), in 48 epochs
# instead of 65. The simple RNN keeps 15: three of its six runs peaked at epochs 5-6.
# lstm_stacked is 48 wide, not 64: 1.34x the songs/s of a training step, and over seeds 0-2
# its validation macro-F1 moved -0.04 (lyrics) and -0.29 points (lyrics+artist). Narrower
# lstm (64 for 96) lost 0.9 and 0.4 points and stays at 96 (benchmarks/RESULTS.md, "Narrower
# tuned lyrics models").
_TUNED = {**TUNED_SELECTION, **TUNED_BUDGET, "train.patience": 2, "max_len": 200, "artist_dropout": 0.5,
          "train.batch_size": 64, "train.lr": 2e-3, "train.grad_clip": 1.0, "dropout": 0.3, "vectors": "glove",
          "embedding_dim": 50}

register(ModelSpec(
    name="rnn", study="lyrics", family="recurrent",
    summary="simple RNN over word embeddings; tuned: bidirectional, 64 units, max-pooled",
    params=RnnParams, build=neural_builder("rnn", make_rnn_trunk),
    presets={"seed": {},  # Embedding(20k,100) -> SimpleRNN(10) -> BatchNorm -> Dropout 0.2
             "tuned": {**_TUNED, "hidden": 64, "bidirectional": True, "pooling": "max"}},
    cost={"seed": 55, "tuned": 103},
    space=TRAIN_SPACE,
))
register(ModelSpec(
    name="lstm", study="lyrics", family="recurrent",
    summary="LSTM over word embeddings; seed: every step flattened; tuned: bidirectional, max-pooled",
    params=RnnParams, build=neural_builder("lstm", make_lstm_trunk),
    presets={"seed": {"pooling": "flatten"},  # LSTM(10, all steps) -> Flatten -> BatchNorm -> Dropout
             "tuned": {**_TUNED, "train.epochs": 4, "hidden": 96, "bidirectional": True, "pooling": "max"}},
    cost={"seed": 121, "tuned": 154},
    space=TRAIN_SPACE,
))
register(ModelSpec(
    name="lstm_stacked", study="lyrics", family="recurrent",
    summary="two stacked LSTMs with BatchNorm + Dropout between; tuned: bidirectional 48, max-pooled",
    params=RnnParams, build=neural_builder("lstm_stacked", make_lstm_trunk),
    # seed: LSTM(10, sequences) -> BatchNorm -> Dropout 0.2 -> LSTM(10) -> Dense
    presets={"seed": {"layers": 2, "norm_between": True, "norm_out": False},
             "tuned": {**_TUNED, "train.epochs": 4, "layers": 2, "norm_between": True, "norm_out": True, "hidden": 48,
                       "bidirectional": True, "pooling": "max"}},
    cost={"seed": 127, "tuned": 167},
    space=TRAIN_SPACE,
))
