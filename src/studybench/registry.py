"""Models by name: one registry for every study, refusing duplicate names.

A :class:`ModelSpec` ties a stable name to a parameter dataclass (every
hyper-parameter with its default and a one-line reason), named presets (``seed``
reproduces the study, ``tuned`` is the good default; a family the study never had
has only ``tuned``) stored as *data* (the
fields that differ from the defaults) and a builder. Model families register
themselves on import of :mod:`studybench.models`.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from studybench.config import apply_overrides
from studybench.errors import StudybenchError

PRESETS = ("seed", "tuned")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its name, what it is, its parameters, presets and builder."""

    name: str
    study: str  # "lyrics" or "images"
    family: str  # for grouping in listings and reports
    summary: str  # one line shown by `studybench list`
    params: type  # frozen dataclass of hyper-parameters
    build: Callable[..., Any]  # build(params, features, seed) -> unfitted model object
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    features: tuple[str, ...] = ("lyrics", "lyrics+artist")
    # Relative cost of one run per preset, for scheduling only (a pool starts the largest
    # runs first, so none is left running alone at the end): one-thread fit seconds on tcc,
    # artist split (the lyrics models' tuned preset: the one-seed study of benchmarks/RESULTS.md,
    # "after the fill, the caps and the narrower stacked LSTM"; the seed preset: the README's
    # results). Never reported as a result.
    cost: dict[str, float] = field(default_factory=dict)
    # False for a family the study never had: its ``seed`` preset, if it has one, is the
    # published recipe it comes from (there is nothing of the study's to reproduce); without
    # one, ``--preset seed`` runs it with ``tuned`` (preset_for).
    in_study: bool = True
    # What `studybench tune` searches, around the tuned preset: parameter key (as in presets)
    # -> ("log", low, high) | ("float", low, high) | ("int", low, high) | ("choice", (values...)).
    space: dict[str, tuple] = field(default_factory=dict)

    def preset_for(self, preset: str) -> str:
        """The preset this model runs under when a grid asks for ``preset``."""
        return "tuned" if preset == "seed" and not self.in_study and "seed" not in self.presets else preset

    def relative_cost(self, preset: str, params: Any) -> float:
        """This model's scheduling weight under ``preset``, scaled by its epochs if overridden."""
        preset = self.preset_for(preset)
        weight = self.cost.get(preset, 1.0)
        train, default = getattr(params, "train", None), getattr(self.resolve(preset), "train", None)
        if train is not None and default is not None and default.epochs:
            weight *= train.epochs / default.epochs
        return weight

    def resolve(self, preset: str, overrides: dict[str, Any] | None = None) -> Any:
        """The parameter dataclass for ``preset`` with ``overrides`` (keys without ``model.``)."""
        preset = self.preset_for(preset)
        if preset not in self.presets:
            raise StudybenchError(
                f"--preset {preset}: unknown for {self.name} (known: {', '.join(self.presets)})"
            )
        params = apply_overrides(self.params(), self.presets[preset], prefix="model.")
        return apply_overrides(params, overrides or {}, prefix="model.")

    def knows(self, key: str) -> bool:
        """Whether ``key`` (without ``model.``) is one of this model's parameters."""
        head = key.split(".", 1)[0]
        return head in {f.name for f in dataclasses.fields(self.params)}


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec``; a name registered twice is a programming error and raises."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model name {spec.name!r} is already registered")
    for preset in PRESETS if spec.in_study else ("tuned",):
        if preset not in spec.presets:
            raise ValueError(f"model {spec.name!r} lacks the {preset!r} preset")
    spec.resolve("seed"), spec.resolve("tuned")  # presets must name real fields
    for key, dimension in spec.space.items():
        if not spec.knows(key) or dimension[0] not in ("log", "float", "int", "choice"):
            raise ValueError(f"model {spec.name!r}: search space entry {key!r}: {dimension!r}")
    _REGISTRY[spec.name] = spec
    return spec


def _load_models() -> None:
    import studybench.models  # noqa: F401  (registers every family)


def get(name: str) -> ModelSpec:
    """The spec registered under ``name``; an unknown name is an error with suggestions."""
    _load_models()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise StudybenchError(
            f"unknown model {name!r}{hint}; `studybench list` shows the {len(_REGISTRY)} known names"
        )
    return _REGISTRY[name]


def names(study: str | None = None) -> list[str]:
    """Registered names in registration order, optionally for one study."""
    _load_models()
    return [n for n, s in _REGISTRY.items() if study is None or s.study == study]
