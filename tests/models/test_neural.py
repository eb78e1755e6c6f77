"""Every registered neural lyrics model x both presets x both feature sets: forward and
backward on tiny inputs; a few short end-to-end fits with save, load and reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import GENRE_WORDS, SHARED_WORDS, canonical_frame, neural_lyrics_models, write_glove

from studybench import registry
from studybench.models.heads import ClassifierHead, TextClassifier
from studybench.models.text.cnn import conv_steps, steps_as_channels_last
from studybench.models.text.neural import NeuralTextModel, pretrained_vectors

N_CLASSES, N_ARTISTS, MAX_LEN, VOCAB = 3, 3, 60, 50  # 60: enough for the tuned cnn_flat_lstm (pool 3)
DIM = 8  # pretrained vectors in the tiny GloVe file
WORDS = sorted({w for ws in GENRE_WORDS.values() for w in ws} | set(SHARED_WORDS))


@pytest.fixture(scope="module")
def glove(tmp_path_factory):
    return write_glove(tmp_path_factory.mktemp("glove") / "glove.txt", WORDS[:-3])  # 3 words lack vectors


NEURAL = neural_lyrics_models()
COMBOS = [(n, p, f) for n in NEURAL for p in registry.PRESETS for f in ("lyrics", "lyrics+artist")]


def test_every_neural_family_is_registered():
    assert set(NEURAL) >= {"rnn", "lstm", "lstm_stacked", "cnn_same_kernel", "cnn_multi_kernel",
                           "cnn_lstm", "cnn_flat_lstm", "embedding_bag", "pretrained_embedding"}


def _params(name, preset, glove, **extra):
    """Tiny sizes; presets that start from GloVe read the tiny GloVe file instead."""
    overrides = {"max_len": MAX_LEN, "max_words": VOCAB, **extra}
    if registry.get(name).resolve(preset).vectors != "none":
        overrides.update(vectors=str(glove), embedding_dim=DIM)
    return registry.get(name).resolve(preset, overrides)


VOCABULARY = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}


def _trunk(name, params):
    """The trunk as NeuralTextModel builds it: pretrained vectors loaded and frozen if asked."""
    trunk = registry.get(name).build.make_trunk(params, VOCAB)
    if params.vectors != "none":
        pretrained_vectors(trunk.embedding, params, VOCABULARY, seed=0)
        trunk.embedding.weight.requires_grad_(not params.freeze)
    return trunk


@pytest.mark.parametrize("name, preset, features", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_forward_backward(glove, name, preset, features):
    params = _params(name, preset, glove)
    torch.manual_seed(0)
    trunk = _trunk(name, params)
    head = ClassifierHead(trunk.out_features, N_CLASSES, N_ARTISTS if features == "lyrics+artist" else 0)
    net = TextClassifier(trunk, head).train()
    lengths = torch.tensor([MAX_LEN, 1, 17, 5])
    steps = MAX_LEN if trunk.fixed_length else int(lengths.max())
    ids = torch.randint(2, VOCAB, (4, steps))
    ids[torch.arange(steps)[None, :] >= lengths[:, None]] = 0  # padded at the end
    artist = torch.tensor([0, 1, 2, 3]) if features == "lyrics+artist" else None
    logits = net(ids, lengths, artist)
    assert logits.shape == (4, N_CLASSES)
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    for pname, parameter in trunk.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None, pname
            assert torch.isfinite(parameter.grad).all(), pname
        else:  # only the frozen pretrained vectors
            assert params.vectors != "none" and params.freeze and pname == "embedding.weight"
            assert parameter.grad is None
    if not trunk.fixed_length:  # a batch of short songs, cut to its longest
        short = torch.tensor([1, 3, 2, 1])
        ids = torch.randint(2, VOCAB, (4, 3)) * (torch.arange(3)[None, :] < short[:, None])
        assert net.eval()(ids, short, artist).shape == (4, N_CLASSES)


def test_padding_does_not_change_features(glove):
    """Trimmed and full-length batches give the same features (eval mode) for pooled models."""
    for name in ("rnn", "lstm_stacked", "cnn_multi_kernel", "cnn_lstm", "embedding_bag"):
        params = _params(name, "tuned", glove)
        trunk = _trunk(name, params).eval()
        lengths = torch.tensor([9, 12, 7])
        ids = torch.randint(2, VOCAB, (3, MAX_LEN)) * (torch.arange(MAX_LEN)[None, :] < lengths[:, None])
        with torch.no_grad():
            assert torch.allclose(trunk(ids, lengths), trunk(ids[:, :12], lengths), atol=1e-5), name


def _conv1d_stack(stack, x: torch.Tensor) -> torch.Tensor:
    """The conv blocks as plain Conv1d layers on ``[B, C, T]`` (the layout they ran in before
    the channels-last form): ``[B, T, C]`` in, ``[B, T', filters]`` out."""
    x = x.transpose(1, 2)
    for conv, norm, act, pool, drop in stack.blocks:
        x = drop(pool(act(F.batch_norm(conv(x), norm.running_mean.clone(), norm.running_var.clone(),
                                       norm.weight, norm.bias, True, 0.1, norm.eps))))
    return x.transpose(1, 2)


@pytest.mark.parametrize("name", ["cnn_same_kernel", "cnn_multi_kernel", "cnn_lstm", "cnn_flat_lstm"])
@pytest.mark.parametrize("preset", ["seed", "tuned"])
def test_channels_last_convolutions_match_conv1d(glove, name, preset):
    """The text CNNs' height-1 channels-last convolutions compute what Conv1d computes:
    the same outputs and input gradients, and in training the same dropout masks for a
    seed (so a seed drops the same features as before)."""
    params = _params(name, preset, glove)
    torch.manual_seed(0)
    trunk = _trunk(name, params).train()
    ids = torch.randint(2, VOCAB, (6, MAX_LEN))
    lengths = torch.full((6,), MAX_LEN)
    if getattr(params, "parallel", False):  # Kim's branches: each branch against its Conv1d
        x = trunk.embedding(ids).detach()
        for branch in trunk.branches:
            got = conv_steps(branch, steps_as_channels_last(x)).squeeze(2)
            assert got.stride(1) == 1  # channels-last memory: channels vary fastest
            assert torch.allclose(got, branch(x.transpose(1, 2)), atol=1e-5)
        return
    x = trunk.embedding(ids).detach()
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    torch.manual_seed(5)
    got, _ = trunk.stack(a, lengths)
    torch.manual_seed(5)
    want = _conv1d_stack(trunk.stack, b)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5)  # dropout included: the same masks
    weights = torch.randn_like(want)
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-5)


@pytest.mark.parametrize("name", ["pretrained_embedding", "lstm", "cnn_multi_kernel"])
def test_pretrained_coverage_and_vectors(glove, name):
    """GloVe vectors go into any family's embedding; padding stays zero."""
    params = _params(name, "seed", glove, vectors=str(glove), embedding_dim=DIM)
    trunk = registry.get(name).build.make_trunk(params, VOCAB)
    coverage = pretrained_vectors(trunk.embedding, params, VOCABULARY, seed=0)
    assert coverage == pytest.approx((len(WORDS) - 3) / len(WORDS))
    assert torch.equal(trunk.embedding.weight[0], torch.zeros(DIM))  # padding
    assert trunk.embedding.weight[2, 0].item() == pytest.approx(0.01)  # WORDS[0]'s first value
    assert trunk.embedding.weight[3, 1].item() == pytest.approx(0.021)  # WORDS[1]'s second value


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def frames():
    train = canonical_frame(per_class=14, artists_per_genre=3)
    val = canonical_frame(per_class=3, artist_prefix="Val")
    test = pd.concat([canonical_frame(per_class=2), canonical_frame(per_class=2, artist_prefix="New")],
                     ignore_index=True)
    return train, val, test


FITS = [("lstm", "seed", "lyrics"), ("cnn_multi_kernel", "tuned", "lyrics+artist"),
        ("pretrained_embedding", "seed", "lyrics+artist")]


@pytest.mark.parametrize("name, preset, features", FITS, ids=["-".join(c) for c in FITS])
def test_fit_save_load_reproduce(frames, glove, tmp_path, name, preset, features):
    train, val, test = frames
    spec = registry.get(name)
    overrides = {"train.epochs": 2, "train.progress": False, "max_len": MAX_LEN, "max_words": 200}
    if spec.resolve(preset).vectors != "none":
        overrides.update(vectors=str(glove), embedding_dim=DIM)
    params = spec.resolve(preset, overrides)

    def fitted():
        model = spec.build(params, features, 0)
        result = model.fit(train, val)
        assert result["epochs_run"] == 2 and result["n_params"] > 0
        return model

    model = fitted()
    scores, kind = model.scores(test)
    assert kind == "probability" and scores.shape == (len(test), 3)
    assert np.allclose(scores.sum(axis=1), 1, atol=1e-5)
    model.save(tmp_path)
    loaded = NeuralTextModel.load(tmp_path / "model.json")
    np.testing.assert_array_equal(loaded.scores(test)[0], scores)
    np.testing.assert_array_equal(fitted().scores(test)[0], scores)  # same seed, same model
    if name == "pretrained_embedding":
        coverage = model.coverage_
        assert 0 < coverage < 1 and not math.isnan(coverage)
        assert loaded.coverage_ == pytest.approx(coverage)
