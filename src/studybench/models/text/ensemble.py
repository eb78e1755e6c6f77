"""``ensemble``: a weighted average of the genre probabilities of other models of the same study.

The members are ordinary runs of the same grid (same split, seed and feature set), trained
once; the ensemble run starts from their run folders (the pipeline hands it their files, as
it hands a transfer arm its block-1 model). Its weights are chosen on the validation split
only, from each member's validation scores as the member had them *before* any refit on
train + validation (``val_predictions.csv``), so a refitted member is not favoured for having
seen those songs. On the artist split the validation songs are by artists absent from
training, as the test songs are.

A member that gives margins instead of probabilities (the linear SVM) is turned into
probabilities by a softmax with a temperature fitted on validation (lowest log-loss). The
weights are searched on a grid over the simplex (steps of ``step``) for the highest
validation macro-F1; among equal scores the most even weights win. Per-class bias shifts
are deliberately absent: tuned on validation they raised its macro-F1 by 2 points on tcc and
did not carry over to unseen artists.

The saved ensemble holds its members' model files under ``members/<name>/``, so its bundle
predicts and serves like any other model.
"""

from __future__ import annotations

import io
import itertools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studybench.errors import StudybenchError
from studybench.models.artifacts import MEMBER_KINDS, load_model
from studybench.records import complete_description, read_model_json, write_json
from studybench.registry import ModelSpec, register

FORMAT_VERSION = 1
TEMPERATURES = np.geomspace(0.02, 20, 31)  # softmax temperatures tried for a margin-scoring member


@dataclass(frozen=True)
class EnsembleParams:
    """Which runs of the grid to combine and how finely to search their weights."""

    # Chosen on validation: on tcc (artist split, seeds 0-2, both feature sets) every set of 2-5 of
    # these five models was weighted on validation; all five had the highest mean validation
    # macro-F1 (0.4070; nb_logreg + sentence_encoder + pretrained_embedding alone 0.4063, the
    # first three 0.3996). benchmarks/RESULTS.md, "Ensemble members".
    members: tuple[str, ...] = ("nb_logreg", "sentence_encoder", "pretrained_embedding", "tfidf_linear_svm",
                                "tfidf_logreg")
    step: float = 0.1  # weight grid step on the simplex (0.1 and 5 members: 1,001 weightings)


def macro_f1(true: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over ``n_classes`` integer labels (a class never true nor predicted counts 0)."""
    scores = []
    for c in range(n_classes):
        tp = np.sum((pred == c) & (true == c))
        denominator = np.sum(pred == c) + np.sum(true == c)
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def softmax(margins: np.ndarray, temperature: float) -> np.ndarray:
    z = margins / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(margins: np.ndarray, y: np.ndarray) -> float:
    """The temperature whose softmax gives the lowest log-loss on (``margins``, ``y``)."""
    losses = [-np.mean(np.log(softmax(margins, t)[np.arange(len(y)), y] + 1e-12)) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def simplex(n: int, step: float) -> list[np.ndarray]:
    """Every weighting of ``n`` members on a grid of ``step`` (non-negative, summing to 1)."""
    units = round(1 / step)
    if units < 1 or abs(units * step - 1) > 1e-9:
        raise StudybenchError(f"--set model.step={step}: expected 1/k for a whole k (0.1, 0.25, ...)")
    grid = [np.asarray(c, dtype=float) / units for c in itertools.product(range(units + 1), repeat=n)
            if sum(c) == units]
    return grid


def choose_weights(probs: list[np.ndarray], y: np.ndarray, n_classes: int, step: float) -> tuple[np.ndarray, float]:
    """The weights with the highest macro-F1 of the weighted average (the most even on ties)."""
    best, best_key, best_score = None, None, 0.0
    for w in simplex(len(probs), step):
        pred = np.argmax(sum(wi * p for wi, p in zip(w, probs)), axis=1)
        score = macro_f1(y, pred, n_classes)
        key = (round(score, 10), -float(np.sum((w - 1 / len(w)) ** 2)))
        if best_key is None or key > best_key:
            best, best_key, best_score = w, key, score
    return best, best_score


class EnsembleModel:
    """Fit (choose weights) from member runs; score, save and load like every lyrics model."""

    kind = "ensemble"
    needs_sources = True  # the runner hands it its members' run files before fit

    def __init__(self, params: EnsembleParams, features: str, seed: int = 0):
        if len(params.members) < 2 or len(set(params.members)) != len(params.members):
            raise StudybenchError(f"--set model.members={','.join(params.members)}: expected two or more "
                                  "different models")
        if "ensemble" in params.members:
            raise StudybenchError("--set model.members: an ensemble cannot be its own member")
        self.params, self.features, self.seed = params, features, seed
        self.sources_: dict[str, dict[str, bytes]] = {}

    # --- fitting ----------------------------------------------------------------------
    def _member(self, name: str, files: dict[str, bytes], folder: Path):
        config = json.loads(files["config.json"])
        artifact = config.get("artifact") or {}
        if artifact.get("kind") not in MEMBER_KINDS:
            raise StudybenchError(f"ensemble member {name}: its run holds no lyrics model to combine")
        for rel, content in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(content)
        if "val_predictions.csv" not in files:
            raise StudybenchError(f"ensemble member {name}: its run {config.get('run_id')} has no validation "
                                  "scores (made by an older studybench); delete that run folder and rerun")
        val = pd.read_csv(io.BytesIO(files["val_predictions.csv"]))
        kind = json.loads(files["metrics.json"]).get("score_kind", "probability")
        return load_model(artifact["kind"], folder / artifact["file"]), val, kind

    def fit(self, train: pd.DataFrame, val: pd.DataFrame) -> dict[str, Any]:
        missing = [m for m in self.params.members if m not in self.sources_]
        if missing:
            raise StudybenchError(f"ensemble: the runs of {', '.join(missing)} were not handed over")
        self.members_, self.temperatures_, self.files_, probs, alone = {}, {}, {}, [], {}
        with tempfile.TemporaryDirectory() as tmp:
            loaded = {name: self._member(name, self.sources_[name], Path(tmp) / name) for name in self.params.members}
        # the members' genres: the training split's, and a genre only validation has where a
        # member was refitted on train + validation (all members share one split, so one set)
        self.classes_ = list(next(iter(loaded.values()))[0].classes_)
        val = val[val["label"].isin(self.classes_)]
        y = val["label"].map({c: i for i, c in enumerate(self.classes_)}).to_numpy()
        for name, (model, val_scores, kind) in loaded.items():
            if list(model.classes_) != self.classes_:
                raise StudybenchError(f"ensemble member {name}: its genres differ from the other members'")
            files = self.sources_[name]
            # a genre the member did not know when it was selected scores 0 there
            scores = val_scores.set_index("row").reindex(columns=[f"score:{c}" for c in self.classes_],
                                                         fill_value=0.0).loc[val["row"]]
            scores = scores.to_numpy(dtype=np.float64)
            self.temperatures_[name] = fit_temperature(scores, y) if kind != "probability" else None
            p = softmax(scores, self.temperatures_[name]) if self.temperatures_[name] else scores
            probs.append(p)
            alone[name] = macro_f1(y, np.argmax(p, axis=1), len(self.classes_))
            self.members_[name] = model
            self.files_[name] = {k: v for k, v in files.items() if k not in ("metrics.json", "val_predictions.csv")}
        weights, score = choose_weights(probs, y, len(self.classes_), self.params.step)
        self.weights_ = {name: float(w) for name, w in zip(self.params.members, weights)}
        self.n_params_ = int(sum(getattr(m, "n_params_", 0) for m in self.members_.values()))
        return {"method": "validation macro-F1 over a weight grid", "weights": self.weights_,
                "val_macro_f1": score, "members_val_macro_f1": alone,
                "temperatures": {k: v for k, v in self.temperatures_.items() if v}}

    # --- scoring and storage -----------------------------------------------------------
    def _proba(self, name: str, frame: pd.DataFrame) -> np.ndarray:
        scores, kind = self.members_[name].scores(frame)
        scores = np.asarray(scores, dtype=np.float64)
        temperature = self.temperatures_.get(name)
        return softmax(scores, temperature) if temperature else scores

    def scores(self, frame: pd.DataFrame) -> tuple[np.ndarray, str]:
        total = sum(w * self._proba(name, frame) for name, w in self.weights_.items() if w > 0)
        return np.asarray(total, dtype=np.float32), "probability"

    def save(self, folder: str | Path) -> str:
        """``ensemble.json`` and each member's model files under ``members/<name>/``."""
        folder = Path(folder)
        members = {}
        for name, files in self.files_.items():
            config = json.loads(files["config.json"])
            for rel, content in files.items():
                if rel != "config.json":
                    (folder / "members" / name / rel).parent.mkdir(parents=True, exist_ok=True)
                    (folder / "members" / name / rel).write_bytes(content)
            members[name] = {"kind": config["artifact"]["kind"], "file": config["artifact"]["file"],
                             "run_id": config.get("run_id")}
        write_json(folder / "ensemble.json", {
            "format_version": FORMAT_VERSION, "model": "ensemble", "features": self.features, "seed": self.seed,
            "classes": self.classes_, "members": members, "weights": self.weights_,
            "temperatures": self.temperatures_, "n_params": self.n_params_})
        return "ensemble.json"

    @classmethod
    def load(cls, path: str | Path) -> EnsembleModel:
        path = Path(path)
        meta = read_model_json(path, FORMAT_VERSION, "ensemble")
        with complete_description(path, "ensemble"):
            model = cls(EnsembleParams(members=tuple(meta["members"])), meta["features"], meta["seed"])
            model.classes_ = list(meta["classes"])
            model.weights_ = {k: float(v) for k, v in meta["weights"].items()}
            model.temperatures_ = {k: (float(v) if v else None) for k, v in meta["temperatures"].items()}
            model.n_params_ = int(meta.get("n_params", 0))
            described = {name: (m["kind"], m["file"]) for name, m in meta["members"].items()}
        model.members_ = {}
        for name, (kind, file) in described.items():
            if kind not in MEMBER_KINDS or "/" in file or "\\" in file or name.startswith("."):
                raise StudybenchError(f"{path}: member {name!r} is not a lyrics model file")
            model.members_[name] = load_model(kind, path.parent / "members" / name / file)
            if list(model.members_[name].classes_) != model.classes_:
                raise StudybenchError(f"{path}: member {name}'s genres differ from the ensemble's")
        return model


def _build(params: EnsembleParams, features: str, seed: int) -> EnsembleModel:
    return EnsembleModel(params, features, seed)


register(ModelSpec(
    name="ensemble", study="lyrics", family="ensemble",
    summary="weighted average of other models' probabilities, weights chosen on validation (not in the study)",
    params=EnsembleParams, build=_build, in_study=False, presets={"tuned": {}}, cost={"tuned": 0.2},
))
