"""What both studies share: argument parsing and seeding."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from studybench import registry
from studybench.errors import StudybenchError


def seed_everything(seed: int) -> None:
    """Seed every generator a run can touch (scikit-learn models also get ``random_state``)."""
    random.seed(seed)
    np.random.seed(seed)


def parse_list(value: str | Sequence[str] | None, what: str) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]``; an empty list is an error naming ``--what``."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [i.strip() for i in items if str(i).strip()]
    if not items:
        raise StudybenchError(f"--{what}: empty list")
    return items


def check_model_overrides(specs: list[registry.ModelSpec], overrides: dict[str, Any]) -> None:
    """Every ``model.*``/``train.*`` key must belong to at least one selected model."""
    for key in overrides:
        if not any(spec.knows(key) for spec in specs):
            shown = key if key.startswith("train.") else f"model.{key}"
            raise StudybenchError(
                f"--set {shown}: unknown key for {', '.join(s.name for s in specs)} "
                "(`studybench list --params` shows each model's keys)"
            )


def parse_seed(value: str, what: str = "seeds") -> int:
    """One seed from the command line (``--what``), in the range NumPy and scikit-learn accept."""
    try:
        seed = int(value)
    except ValueError:
        raise StudybenchError(f"--{what} {value!r}: expected whole numbers such as 0,1,2") from None
    if not 0 <= seed < 2**32:  # the range NumPy and scikit-learn accept
        raise StudybenchError(f"--{what} {value}: a seed must lie between 0 and 4294967295")
    return seed


def parse_seeds(seeds: str | Sequence[int], what: str = "seeds") -> list[int]:
    """``"0,1,2"`` or ``[0, 1, 2]`` -> distinct seeds; a repeated or bad seed is an error
    naming ``--what`` (``--seeds``, or ``--draws`` for class-block draws)."""
    items = seeds if isinstance(seeds, str) else [str(s) for s in seeds]
    seed_list = [parse_seed(s, what) for s in parse_list(items, what)]
    repeated = sorted({s for s in seed_list if seed_list.count(s) > 1})
    if repeated:
        raise StudybenchError(f"--{what}: {', '.join(map(str, repeated))} given twice; each is planned once")
    return seed_list



def note_emulated_bf16(params: dict[str, Any], log) -> None:
    """Say so when models are asked to train with bf16 autocast (``train.precision=bf16``; the
    presets say ``auto``) on a machine that only emulates it: measured on a 2-core AVX2 EPYC,
    the tuned image CNNs ran at 30-51 images/s in bf16 + channels-last against 342-379 in
    fp32 (benchmarks/RESULTS.md), 7-12x slower."""
    from studybench.training import engine

    slow = [name for name, p in params.items() if getattr(getattr(p, "train", None), "precision", "") == "bf16"]
    if log and slow and not engine.native_bf16():
        log(f"note: {', '.join(slow)} train with bf16 autocast, but this machine has no native bf16 "
            "(no CUDA GPU with bf16; the CPU lacks AVX-512 BF16 and AMX): emulated bf16 ran 7-12x slower "
            "than fp32 on such a CPU. --set train.precision=auto trains in bf16 only where it is native.")


def run_params(params: Any) -> dict[str, Any]:
    """A model's parameters as a run records and hashes them (its id): a setting only
    `studybench tune` sets (``train.prune_below``) is left out while unset, so adding it left
    the id, and the reuse, of every earlier run unchanged."""
    from studybench.config import to_dict

    data = to_dict(params)
    train = data.get("train")
    if isinstance(train, dict) and not train.get("prune_below"):
        train.pop("prune_below", None)
    return data
