"""Classical lyrics models: majority baseline, TF-IDF + logistic regression,
TF-IDF + linear SVM and a decision tree, each for both feature sets.

A model is a scikit-learn ``Pipeline`` of a ``ColumnTransformer`` (the lyrics
branch, plus a one-hot artist branch for ``lyrics+artist``: the artist is never
mixed into the lyric text) and a classifier. Hyper-parameters given as several
values are chosen on the validation split (macro-F1), or by 5-fold CV on the
training split where the ``seed`` preset reproduces the study's grid search.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, ParameterGrid
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from studybench import memo
from studybench.errors import StudybenchError
from studybench.models.artifacts import load_sklearn, save_sklearn
from studybench.models.text.artist import ArtistEncoder
from studybench.models.text.sequences import TokenSequences
from studybench.models.text.nblinear import NBLogisticRegression
from studybench.models.text.vocab import Counts, Tfidf
from studybench.registry import ModelSpec, register


def _save_matrix(x, path: Path) -> None:
    if sparse.issparse(x):
        sparse.save_npz(path.with_suffix(".npz"), x.tocsr(), compressed=False)
    else:
        np.save(path.with_suffix(".npy"), np.asarray(x), allow_pickle=False)


def _load_matrix(path: Path):
    if path.with_suffix(".npz").is_file():
        x = sparse.load_npz(path.with_suffix(".npz")).tocsr()
        x.sort_indices()
        return x
    if path.with_suffix(".npy").is_file():
        return np.load(path.with_suffix(".npy"), allow_pickle=False)
    return None


def _save_featurized(value, folder: Path) -> None:
    fitted, x_fit, x_other = value
    save_sklearn(fitted, folder / "features.skops")
    _save_matrix(x_fit, folder / "fit")
    if x_other is not None:
        _save_matrix(x_other, folder / "other")


def _load_featurized(folder: Path):
    x_fit = _load_matrix(folder / "fit")
    if x_fit is None:
        raise FileNotFoundError(folder / "fit")
    return load_sklearn(folder / "features.skops"), x_fit, _load_matrix(folder / "other")


# fitted features and both matrices, shared by the workers of a machine (studybench.memo)
FEATURIZED = memo.Codec(_save_featurized, _load_featurized)


@dataclass(frozen=True)
class ArtistParams:
    """The artist branch, used with the lyrics+artist feature set."""

    artist_dropout: float = 0.0  # share of training songs fitted as if their artist were unknown
    refit: bool = False  # after choosing on validation, refit on train + validation (more data)


@dataclass(frozen=True)
class TfidfParams(ArtistParams):
    """The lyrics branch of the TF-IDF models."""

    max_features: int | None = 5000  # the study's vocabulary cap; None keeps every term
    ngram_max: int = 1  # 2 adds word pairs ("broken heart"), a cheap gain on lyrics
    min_df: int = 1  # terms in fewer songs than this are noise
    sublinear_tf: bool = False  # 1 + log(tf): a chorus repeated ten times should not dominate


@dataclass(frozen=True)
class LogregParams(TfidfParams):
    """TF-IDF + logistic regression."""

    C: tuple[float, ...] = (1.0,)  # inverse regularisation; several values are tried on validation
    class_weight: str | None = None  # "balanced" lifts rare genres, which macro-F1 rewards
    max_iter: int = 1000  # the study's setting; lbfgs converges well before on lyrics


@dataclass(frozen=True)
class SvmParams(TfidfParams):
    """TF-IDF + linear SVM (one-vs-rest hinge loss)."""

    C: tuple[float, ...] = (1.0,)  # several values are tried on validation
    class_weight: str | None = None  # "balanced" lifts rare genres


@dataclass(frozen=True)
class NbParams(ArtistParams):
    """NB-weighted logistic regression on binary word and character n-grams (not in the study)."""

    word_ngram_max: int = 2  # word 1..n-grams: pairs carry phrases ("broken heart")
    char_min: int = 2  # character n-grams within words (char_wb) from this size …
    char_max: int = 5  # … to this one; 0 leaves them out. They catch spelling and word forms
    min_df: int = 2  # n-grams in fewer training songs than this are dropped (noise, and memory)
    max_features: int | None = None  # cap per branch (words, characters); None keeps all
    alpha: float = 1.0  # Laplace smoothing of the Naive Bayes counts (Wang & Manning's)
    C: tuple[float, ...] = (1.0,)  # inverse regularisation; several values are tried on validation
    class_weight: str | None = None  # "balanced" lifts rare genres, which macro-F1 rewards
    max_iter: int = 1000  # lbfgs iterations per genre


@dataclass(frozen=True)
class TreeParams(ArtistParams):
    """A single decision tree."""

    input: str = "token_ids"  # token_ids (the study: padded word ids) | tfidf
    max_words: int = 20000  # token_ids: vocabulary of the most frequent training words
    max_len: int = 300  # token_ids: sequence length (pre-padded, pre-truncated as Keras did)
    max_features: int | None = 20000  # tfidf: vocabulary cap
    max_depth: tuple[int | None, ...] = (4, 8)  # the study's grid
    min_samples_split: tuple[int, ...] = (2, 5, 10)  # the study's grid
    min_samples_leaf: tuple[int, ...] = (1, 2, 4)  # the study's grid
    selection: str = "cv5"  # cv5: 5-fold CV on train (the study) | val: on the validation split
    class_weight: str | None = None  # "balanced" lifts rare genres


@dataclass(frozen=True)
class MajorityParams:
    """The majority-class baseline has no parameters."""


def _tfidf(p: TfidfParams) -> Tfidf:
    # Text is already cleaned and lower-cased: split on whitespace only.
    return Tfidf(
        token_pattern=r"\S+",
        lowercase=False,
        max_features=p.max_features,
        ngram_range=(1, p.ngram_max),
        min_df=p.min_df,
        sublinear_tf=p.sublinear_tf,
        dtype=np.float32,
    )


def _features(text_step: Any, features: str, p: ArtistParams, seed: int) -> ColumnTransformer:
    branches = [("lyrics", text_step, "text")]
    if features == "lyrics+artist":
        branches.append(("artist", ArtistEncoder(dropout=p.artist_dropout, seed=seed), "artist"))
    return ColumnTransformer(branches, sparse_threshold=1.0)


class ClassicModel:
    """A fitted-on-demand scikit-learn pipeline with model selection on validation or by CV."""

    kind = "sklearn"

    def __init__(self, features: ColumnTransformer | None, classifier: Any, grid: dict | None = None,
                 selection: str = "val", seed: int = 0, refit: bool = False):
        self.features = features
        self.classifier = classifier
        self.grid = grid or {}
        self.selection = selection
        self.seed = seed
        self.refit = refit
        self.pipeline_: Pipeline | None = None
        self.selection_: dict[str, Any] = {}

    def fit(self, train: pd.DataFrame, val: pd.DataFrame) -> dict[str, Any]:
        """Fit on ``train``; choose among the grid on ``val`` (or by CV); return what was chosen.

        With ``refit`` the chosen settings are fitted again on train + validation; the
        test split is never seen either way."""
        fitted, x_train, x_val = self._featurize(train, val)
        clf = self._select(x_train, train["label"].to_numpy(), x_val, val["label"].to_numpy())
        # the chosen model's validation scores, before a refit sees those songs (for ensembles)
        scores = clf.predict_proba(x_val) if hasattr(clf, "predict_proba") else clf.decision_function(x_val)
        self.val_scores_ = (scores, [str(c) for c in clf.classes_])  # a refit may add a genre only val has
        if self.refit:
            both = pd.concat([train, val], ignore_index=True)
            fitted, x_both, _ = self._featurize(both, None)
            clf = clone(clf)
            clf.fit(x_both, both["label"].to_numpy())
            self.selection_["refit"] = "train + validation"
        steps = [("features", fitted)] if fitted is not None else []
        self.pipeline_ = Pipeline(steps + [("clf", clf)])
        return self.selection_

    def _featurize(self, fit_on: pd.DataFrame, other: pd.DataFrame | None):
        """``(fitted features, X of fit_on, X of other)``. The same unfitted features on the
        same songs give the same result, so it is made once per process (:mod:`studybench.memo`;
        the TF-IDF of tfidf_logreg is then tfidf_linear_svm's too)."""
        if self.features is None:
            return None, fit_on, other

        def make():
            fitted = clone(self.features)
            x_fit = fitted.fit_transform(fit_on)
            x_other = fitted.transform(other) if other is not None else None
            for x in (x_fit, x_other):
                if hasattr(x, "sort_indices"):
                    x.sort_indices()  # parallel scikit-learn estimators need sorted CSR indices
            return fitted, x_fit, x_other

        return memo.remember(memo.key("featurize", self.features, fit_on, other), make, FEATURIZED)

    def _select(self, x_train, y_train, x_val, y_val):
        candidates = list(ParameterGrid(self.grid)) if self.grid else [{}]
        if self.selection == "cv5" and len(candidates) > 1:
            # n_jobs None: the run's thread budget (joblib's parallel_config), never every core
            search = GridSearchCV(self.classifier, self.grid, cv=5, scoring="accuracy")
            search.fit(x_train, y_train)
            self.selection_ = {"method": "5-fold CV on train", "chosen": search.best_params_,
                               "cv_accuracy": float(search.best_score_)}
            return search.best_estimator_
        best, best_score, tried = None, -1.0, []
        clf = copy.deepcopy(self.classifier)
        for params in candidates:
            clf.set_params(**params)
            clf.fit(x_train, y_train)
            if len(candidates) == 1:
                return clf
            score = float(f1_score(y_val, clf.predict(x_val), average="macro"))
            tried.append({"params": params, "val_macro_f1": score})
            if score > best_score:
                best, best_score = copy.deepcopy(clf), score
                self.selection_ = {"method": "validation macro-F1", "chosen": params}
        self.selection_["tried"] = tried
        return best

    @property
    def classes_(self) -> list[str]:
        return [str(c) for c in self.pipeline_.classes_]

    def scores(self, frame: pd.DataFrame) -> tuple[np.ndarray, str]:
        """Per-class scores for ``frame``: probabilities where the model has them, else margins."""
        if hasattr(self.pipeline_, "predict_proba"):
            return self.pipeline_.predict_proba(frame), "probability"
        return self.pipeline_.decision_function(frame), "decision_function"

    def save(self, folder) -> str:
        """Write ``model.skops`` into ``folder``; return its name."""
        from pathlib import Path

        from studybench.models.artifacts import save_sklearn

        save_sklearn(self.pipeline_, Path(folder) / "model.skops")
        return "model.skops"

    @property
    def n_params_(self) -> int:
        """Learned numbers in the classifier (coefficients, intercepts or tree nodes)."""
        clf = self.pipeline_[-1]
        if hasattr(clf, "coef_"):
            return int(clf.coef_.size + np.size(getattr(clf, "intercept_", 0)))
        if hasattr(clf, "tree_"):
            return int(clf.tree_.node_count)
        return 0

    @classmethod
    def load(cls, path) -> "ClassicModel":
        from studybench.models.artifacts import load_sklearn

        model = cls(None, None)
        model.pipeline_ = load_sklearn(path)
        return model


def _c_grid(values: tuple[float, ...]) -> dict | None:
    """The validation grid over C when several values are given."""
    return {"C": list(values)} if len(values) > 1 else None


def _build_majority(p: MajorityParams, features: str, seed: int) -> ClassicModel:
    return ClassicModel(None, DummyClassifier(strategy="most_frequent"))


def _build_logreg(p: LogregParams, features: str, seed: int) -> ClassicModel:
    # No warm starts across the C grid: lbfgs then stops near the previous C's optimum
    # (measured: identical validation scores for C=4 and C=8), which would bias the choice.
    clf = LogisticRegression(C=p.C[0], max_iter=p.max_iter, class_weight=p.class_weight,
                             random_state=seed)
    return ClassicModel(_features(_tfidf(p), features, p, seed), clf, _c_grid(p.C), seed=seed, refit=p.refit)


def _build_svm(p: SvmParams, features: str, seed: int) -> ClassicModel:
    clf = LinearSVC(C=p.C[0], class_weight=p.class_weight, random_state=seed)
    return ClassicModel(_features(_tfidf(p), features, p, seed), clf, _c_grid(p.C), seed=seed, refit=p.refit)


def _ngrams(p: NbParams) -> FeatureUnion:
    """Binary word n-grams, and character n-grams within words when ``char_max`` is set."""
    common = {"binary": True, "lowercase": False, "min_df": p.min_df, "max_features": p.max_features,
              "dtype": np.float32}
    branches = [("words", Counts(token_pattern=r"\S+", ngram_range=(1, p.word_ngram_max), **common))]
    if p.char_max:
        if not 1 <= p.char_min <= p.char_max:
            raise StudybenchError(f"--set model.char_min={p.char_min}: expected 1 <= char_min <= char_max "
                                  f"({p.char_max})")
        branches.append(("chars", Counts(analyzer="char_wb", ngram_range=(p.char_min, p.char_max), **common)))
    return FeatureUnion(branches)


def _build_nb(p: NbParams, features: str, seed: int) -> ClassicModel:
    clf = NBLogisticRegression(C=p.C[0], alpha=p.alpha, class_weight=p.class_weight, max_iter=p.max_iter,
                               random_state=seed)
    return ClassicModel(_features(_ngrams(p), features, p, seed), clf, _c_grid(p.C), seed=seed, refit=p.refit)


def _build_tree(p: TreeParams, features: str, seed: int) -> ClassicModel:
    if p.input == "token_ids":
        text_step = TokenSequences(max_words=p.max_words, max_len=p.max_len)
    elif p.input == "tfidf":
        text_step = _tfidf(TfidfParams(max_features=p.max_features, sublinear_tf=True))
    else:
        raise StudybenchError(f"--set model.input={p.input}: expected token_ids or tfidf")
    grid = {"max_depth": list(p.max_depth), "min_samples_split": list(p.min_samples_split),
            "min_samples_leaf": list(p.min_samples_leaf)}
    clf = DecisionTreeClassifier(class_weight=p.class_weight, random_state=seed)
    return ClassicModel(_features(text_step, features, p, seed), clf, grid, selection=p.selection,
                        seed=seed, refit=p.refit and p.selection == "val")


_TUNED_TFIDF = {"max_features": 200000, "ngram_max": 2, "min_df": 2, "sublinear_tf": True,
                "artist_dropout": 0.5, "refit": True}

register(ModelSpec(
    name="majority", study="lyrics", family="baseline",
    summary="predicts the most frequent training genre: the floor every model must beat",
    params=MajorityParams, build=_build_majority, presets={"seed": {}, "tuned": {}},
    cost={"seed": 0.1, "tuned": 0.1},
))
register(ModelSpec(
    name="tfidf_logreg", study="lyrics", family="tfidf",
    summary="TF-IDF bag of words + logistic regression",
    params=LogregParams, build=_build_logreg,
    presets={"seed": {},  # the study: 5,000 unigram features, default C, max_iter 1000
             "tuned": {**_TUNED_TFIDF, "C": (2.0, 4.0, 8.0), "class_weight": "balanced"}},
    cost={"seed": 1.4, "tuned": 56},
    space={"C": ("log", 0.25, 64.0), "ngram_max": ("int", 1, 2), "min_df": ("int", 1, 5),
           "sublinear_tf": ("choice", (True, False)), "class_weight": ("choice", ("balanced", None))},
))
register(ModelSpec(
    name="tfidf_linear_svm", study="lyrics", family="tfidf",
    summary="TF-IDF bag of words + linear SVM (not in the study; the usual strong text baseline)",
    params=SvmParams, build=_build_svm,
    presets={"seed": {}, "tuned": {**_TUNED_TFIDF, "C": (0.03, 0.1, 0.3), "class_weight": "balanced"}},
    cost={"seed": 0.9, "tuned": 6},
    space={"C": ("log", 0.005, 2.0), "ngram_max": ("int", 1, 2), "min_df": ("int", 1, 5),
           "sublinear_tf": ("choice", (True, False)), "class_weight": ("choice", ("balanced", None))},
))
register(ModelSpec(
    name="decision_tree", study="lyrics", family="tree",
    summary="decision tree; seed: on padded token ids with the study's 5-fold grid",
    params=TreeParams, build=_build_tree,
    presets={"seed": {},
             "tuned": {"input": "tfidf", "max_depth": (20, 40), "min_samples_split": (2,),
                       "min_samples_leaf": (2, 8), "selection": "val", "class_weight": "balanced",
                       "artist_dropout": 0.5, "refit": True}},
    cost={"seed": 20, "tuned": 23},
))
register(ModelSpec(
    name="nb_logreg", study="lyrics", family="tfidf",
    summary="NB-weighted logistic regression on binary word 1-2-grams + character 2-5-grams (not in the study)",
    params=NbParams, build=_build_nb, in_study=False,
    # C: on tcc (artist split, seed 0) validation macro-F1 peaked at C = 0.01 for both feature
    # sets across 0.003-3 (lyrics: 0.368, 0.378, 0.371, 0.364, 0.356, 0.346, 0.346 for C = 0.003,
    # 0.01, 0.03, 0.1, 0.3, 1, 3); the NB-scaled features are large (|r| up to ~5), hence a small C.
    presets={"tuned": {"C": (0.003, 0.01, 0.03), "class_weight": "balanced", "artist_dropout": 0.5,
                       "refit": True}},
    cost={"tuned": 150},
    space={"C": ("log", 1e-3, 0.1), "alpha": ("log", 0.1, 4.0), "word_ngram_max": ("int", 1, 3),
           "char_max": ("choice", (0, 4, 5, 6)), "min_df": ("int", 1, 4), "class_weight": ("choice", ("balanced", None))},
))
