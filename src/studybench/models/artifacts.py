"""Saving and loading scikit-learn models without unrestricted unpickling.

Artifacts are written with skops, whose loader rebuilds objects from an explicit
list of trusted types instead of running arbitrary pickle code. We trust
scikit-learn, NumPy, SciPy and studybench's own transformers, and refuse a file
that needs anything else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import skops.io as sio

from studybench.errors import StudybenchError

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "studybench.", "builtins.", "collections.")


def save_sklearn(model: Any, path: str | Path) -> None:
    """Write ``model`` to ``path`` atomically (a temporary name, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    sio.dump(model, tmp)
    os.replace(tmp, path)


def load_sklearn(path: str | Path) -> Any:
    """Load a skops artifact, refusing any type outside the trusted prefixes."""
    path = Path(path)
    if not path.is_file():
        raise StudybenchError(f"{path}: model artifact not found")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a truncated or foreign file: skops raises several kinds
        raise StudybenchError(f"{path}: not a readable model artifact ({type(exc).__name__})") from None
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise StudybenchError(f"{path}: refuses to load untrusted types: {', '.join(refused)}")
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001 - a damaged archive fails in many ways inside skops
        raise StudybenchError(f"{path}: not a readable model artifact ({type(exc).__name__})") from None


def save_weights(module, folder: str | Path) -> None:
    """``module``'s weights as ``folder/model.safetensors`` (no pickle)."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, Path(folder) / "model.safetensors")


def load_weights(module, path: str | Path) -> None:
    """Load a safetensors file into ``module``: missing, truncated, foreign or of another
    architecture is a one-line error naming the file (never unpickled: safetensors)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise StudybenchError(f"{path}: missing (the model's weights)")
    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise StudybenchError(f"{path}: not readable weights ({str(exc).splitlines()[0]})") from None
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise StudybenchError(f"{path}: weights do not fit the model "
                              f"({str(exc).strip().splitlines()[0][:200]})") from None


def load_model(kind: str, path: str | Path) -> Any:
    """A saved model of artifact ``kind`` (``model.kind`` when it was saved) from ``path``;
    ``None`` for a kind this studybench does not know."""
    if kind == "sklearn":
        from studybench.models.text.classic import ClassicModel

        return ClassicModel.load(path)
    if kind == "torch":
        from studybench.models.text.neural import NeuralTextModel

        return NeuralTextModel.load(path)
    if kind == "torch-sentence":
        from studybench.models.text.sentence import SentenceModel

        return SentenceModel.load(path)
    if kind == "ensemble":
        from studybench.models.text.ensemble import EnsembleModel

        return EnsembleModel.load(path)
    if kind == "torch-image":
        from studybench.models.image.model import ImageModel

        return ImageModel.load(path)
    return None


MEMBER_KINDS = ("sklearn", "torch", "torch-sentence")  # a lyrics model of one family
LYRICS_KINDS = (*MEMBER_KINDS, "ensemble")  # what a lyrics run can hold
