"""Typed configuration: frozen dataclasses with defaults in code, overridden by
YAML files and ``--set key=value``.

Every default lives here with a one-line reason. An override names a dotted key
(``split.test_size=0.25``, ``data.columns.text=body``); an unknown key or a value
of the wrong type is a :class:`StudybenchError` that names the key. Model
hyper-parameters are validated by the model's own parameter dataclass (see
:mod:`studybench.registry`), under the ``model.`` prefix.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studybench.errors import StudybenchError


@dataclass(frozen=True)
class Columns:
    """Column names in the input CSV; empty means "take it from the detected schema"."""

    text: str = ""  # the lyrics
    label: str = ""  # the genre
    artist: str = ""  # optional: needed for the artist split and the +artist features
    language: str = ""  # optional: picks the stop-word list per song
    song: str = ""  # optional: a title or id, kept in the predictions


@dataclass(frozen=True)
class DataConfig:
    """Where the lyrics come from and how their columns are read."""

    schema: str = "auto"  # auto-detected from the header unless named (see `studybench list`)
    columns: Columns = field(default_factory=Columns)  # explicit mapping wins over the schema


@dataclass(frozen=True)
class CleaningConfig:
    """Fit-free text cleaning applied identically to every file."""

    lowercase: bool = True  # done before stop-word removal, so "The" is caught too
    strip_punctuation: bool = True  # keeps in-word apostrophes ("don't") so stop words still match
    stopwords: bool = True  # per song language from the stopwords-iso lists
    default_language: str = "en"  # used where the language is missing or unknown
    dedupe: bool = True  # identical cleaned lyrics would sit on both sides of a split
    min_tokens: int = 1  # songs with fewer tokens after cleaning are dropped


@dataclass(frozen=True)
class SplitConfig:
    """How songs are divided into train, validation and test."""

    kind: str = "random"  # random (song level) | artist (grouped) | file (test = --test-data)
    test_size: float = 0.2  # fraction of songs (or of artists' songs) held out for test
    val_size: float = 0.1  # fraction of all songs used for validation / model selection


@dataclass(frozen=True)
class LyricsConfig:
    """Everything a lyrics run depends on except the model's own parameters."""

    data: DataConfig = field(default_factory=DataConfig)
    clean: CleaningConfig = field(default_factory=CleaningConfig)
    split: SplitConfig = field(default_factory=SplitConfig)


@dataclass(frozen=True)
class ImageDataConfig:
    """Which images, and how their classes are divided into blocks."""

    dataset: str = "auto"  # auto (from the folder) | cifar10 | cifar100 | folder
    blocks: int = 2  # disjoint class blocks (CIFAR-100: 50 + 50; CIFAR-10: 5 + 5)
    block_seed: int = 0  # seeds the class permutation; fixed so every run seed sees the same blocks
    val_size: float = 0.2  # share of a block's training images kept for validation (the study's 80/20)
    train_fraction: float = 1.0  # seeded, class-stratified share of block 1's training images kept
    image_size: int = 32  # image folders are resized to this many pixels a side
    test_size: float = 0.2  # an image folder without a test/ folder: share held out for test


@dataclass(frozen=True)
class TransferConfig:
    """Block 2: which arms, how much data, and where the block-1 models come from."""

    arms: tuple[str, ...] = ("scratch", "cnn_frozen", "cnn_finetune", "ae_frozen", "ae_finetune",
                             "cnn_ae_concat")  # empty ([]) skips transfer
    fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)  # shares of block 2's training images
    cnn: str = "cnn_basic"  # the block-1 CNN whose trunk transfers (and whose architecture is scratch)
    source: str = ""  # a finished block-1 CNN run folder; empty: the run of `cnn` in this study
    ae_source: str = ""  # a finished conv_autoencoder run folder; empty: trained in this study
    trunk_lr_scale: float = 0.1  # fine-tuned pretrained parts learn this much slower than the head
    lp_ft_lr_scale: float = 0.03  # lp_ft: every part's rate after the probe; chosen on validation
    # (whitened_cnn, 10% of block 2, 200-step floor, draws 0-2): 0.03 beat 0.01 on all three
    # draws (0.819/0.734/0.775 against 0.807/0.720/0.767), 0.1 diverged from the probed head on two
    epochs: int = 0  # training epochs of every arm; 0: the CNN's own, capped by its transfer_epochs (tuned 10)
    min_steps: int = 0  # at least this many optimiser steps at every share (more epochs on a small
    # share, every arm alike); 0: off, the same epochs at every share as in the study


@dataclass(frozen=True)
class ImagesConfig:
    """Everything an image run depends on except the model's own parameters."""

    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)


SPLIT_KINDS = ("random", "artist", "file")


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=x"]`` into ``{"a.b": "1", "c": "x"}``.

    Values stay text here; :func:`coerce` reads them as the declared type, so a text
    setting keeps words such as ``no`` or ``on`` as they are."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StudybenchError(f"--set {item!r}: expected key=value")
        out[key] = raw.strip()
    return out


def load_yaml_overrides(path: str | Path) -> dict[str, Any]:
    """Read a YAML file of overrides and flatten it to dotted keys."""
    path = Path(path)
    from studybench.records import read_input_text

    text = read_input_text(path, "config file")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise StudybenchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise StudybenchError(f"{path}: expected a mapping of keys to values")
    return _flatten(data)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _none_word(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~"))


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert an override (text from ``--set`` or a typed YAML value) to the field's
    declared type, or raise naming ``key``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if type(None) in args and _none_word(value):
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option, key)
            except StudybenchError as exc:
                errors.append(str(exc))
        raise StudybenchError(errors[-1] if errors else f"--set {key}: bad value {value!r}")
    if origin in (tuple, list):
        (inner, *_) = typing.get_args(annotation) or (Any,)
        items = value
        if isinstance(value, str):
            text = value.strip()
            items = _yaml_scalar(text) if text.startswith("[") else text.split(",")
        if not isinstance(items, (list, tuple)):
            items = [items]
        if not items and Ellipsis not in typing.get_args(annotation):
            raise StudybenchError(f"--set {key}: needs at least one value")
        return tuple(coerce(v.strip() if isinstance(v, str) else v, inner, key) for v in items)
    if annotation is Any or annotation is str:
        return value if isinstance(value, str) or annotation is Any else str(value)
    parsed = _yaml_scalar(value) if isinstance(value, str) else value
    if annotation is bool and isinstance(parsed, bool):
        return parsed
    if annotation is bool and isinstance(parsed, int) and parsed in (0, 1):
        return bool(parsed)
    if annotation is int and isinstance(parsed, int) and not isinstance(parsed, bool):
        return parsed
    if annotation is int and isinstance(parsed, float) and parsed.is_integer():
        return int(parsed)
    if annotation is float and isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
        return float(parsed)
    name = getattr(annotation, "__name__", str(annotation))
    raise StudybenchError(f"--set {key}: expected {name}, got {value!r}")


def _yaml_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _between(low: float, high: float, low_in: bool = False, high_in: bool = False):
    text = f"a number {'≥' if low_in else '>'} {low:g} and {'≤' if high_in else '<'} {high:g}"
    return text, lambda v: (v >= low if low_in else v > low) and (v <= high if high_in else v < high)


def _at_least(low: float, whole: bool = True):
    return f"{'a whole number' if whole else 'a number'} ≥ {low:g}", lambda v: v >= low


# Numeric settings with a natural range, by field name (or ``Class.field`` where one class
# differs): checked wherever a value enters, whether a preset, a YAML file, --set or a
# Python caller's overrides, so the command line and the API refuse the same values.
LIMITS: dict[str, tuple[str, Any]] = {
    "test_size": _between(0, 1), "val_size": _between(0, 1),
    "train_fraction": _between(0, 1, high_in=True), "fractions": _between(0, 1, high_in=True),
    "epochs": _at_least(1), "TransferConfig.epochs": _at_least(0), "min_steps": _at_least(0),
    "batch_size": _at_least(1), "lr": _at_least(1e-12, whole=False), "lr_factor": _between(0, 1),
    "weight_decay": _at_least(0, whole=False), "min_lr": _at_least(0, whole=False),
    "grad_clip": _at_least(0, whole=False), "patience": _at_least(0), "lr_patience": _at_least(0),
    "label_smoothing": _between(0, 1, low_in=True), "dropout": _between(0, 1, low_in=True),
    "artist_dropout": _between(0, 1, low_in=True), "max_len": _at_least(1), "max_words": _at_least(3),
    "min_count": _at_least(1), "min_tokens": _at_least(0), "blocks": _at_least(1), "image_size": _at_least(8),
    "widths": _at_least(1), "dense": _at_least(0), "convs": _at_least(1), "crop_padding": _at_least(0),
    "trunk_lr_scale": _at_least(0, whole=False), "C": _at_least(1e-12, whole=False),
    "lp_ft_lr_scale": _at_least(0, whole=False), "momentum": _between(0, 1, low_in=True),
    "ema": _between(0, 1, low_in=True), "bn_momentum": _between(0, 1, low_in=True),
    "whiten_kernel": _at_least(1), "whiten_images": _at_least(1),
}


# Text settings with a fixed set of values, by ``Class.field``: refused when the value enters,
# before anything is planned or written, rather than when a run reaches the code that reads it.
CHOICES: dict[str, tuple[str, ...]] = {
    "TrainConfig.precision": ("32", "bf16", "auto"),
    "TrainConfig.schedule": ("plateau", "onecycle"),
    "TrainConfig.optimizer": ("adam", "sgd"),
    "TrainConfig.class_weights": ("none", "balanced"),
}


def check_limits(obj: Any, name: str, value: Any, key: str) -> None:
    """Raise naming ``key`` if ``value`` (or an item of it) is outside ``name``'s range."""
    choices = CHOICES.get(f"{type(obj).__name__}.{name}")
    if choices is not None and value not in choices:
        raise StudybenchError(f"--set {key}={value}: expected {', '.join(choices)}")
    rule = LIMITS.get(f"{type(obj).__name__}.{name}") or LIMITS.get(name)
    if rule is None:
        return
    text, ok = rule
    for item in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(item, (int, float)) and not isinstance(item, bool) and not ok(item):
            shown = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value
            raise StudybenchError(f"--set {key}={shown}: expected {text}")


def apply_overrides(obj: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    """Return a copy of dataclass ``obj`` with dotted ``overrides`` applied and type-checked."""
    hints = typing.get_type_hints(type(obj))
    nested: dict[str, dict[str, Any]] = {}
    direct: dict[str, Any] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in hints:
            known = ", ".join(prefix + f for f in hints)
            raise StudybenchError(f"--set {prefix}{key}: unknown key (known: {known})")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            if dataclasses.is_dataclass(hints[head]):
                raise StudybenchError(f"--set {prefix}{key}: is a group; set one of its keys")
            direct[head] = coerce(value, hints[head], prefix + key)
            check_limits(obj, head, direct[head], prefix + key)
    for head, sub in nested.items():
        child = getattr(obj, head)
        if not dataclasses.is_dataclass(child):
            raise StudybenchError(f"--set {prefix}{head}.{next(iter(sub))}: {prefix}{head} has no sub-keys")
        direct[head] = apply_overrides(child, sub, prefix + head + ".")
    return dataclasses.replace(obj, **direct)


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) dataclass; tuples become lists."""
    return json_ready(dataclasses.asdict(obj))


def json_ready(value: Any) -> Any:
    """Make tuples lists (recursively), so a config round-trips through JSON unchanged."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) dataclass from :func:`to_dict` output."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if dataclasses.is_dataclass(hints[f.name]):
            value = from_dict(hints[f.name], value)
        elif typing.get_origin(hints[f.name]) in (tuple, list) or (
            isinstance(value, list)
        ):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate model keys (``model.*``, and ``train.*`` for neural models' training settings;
    validated per model) from the run config keys."""
    model = {k[len("model."):]: v for k, v in overrides.items() if k.startswith("model.")}
    model.update({k: v for k, v in overrides.items() if k.startswith("train.")})
    rest = {k: v for k, v in overrides.items() if not k.startswith(("model.", "train."))}
    return rest, model
