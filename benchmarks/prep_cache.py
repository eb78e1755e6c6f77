"""What preparing data once saves on a lyrics grid: every run's preparation (TF-IDF fits,
sequence encoders, token ids, GloVe lookups) for one seed of a grid, with the in-process
cache of :mod:`studybench.memo` off and on, side by side in one process (off, on, off, on).
No model is trained: this is the part of a grid the cache can remove.

    python benchmarks/prep_cache.py --data ../shared/data/lyrics/tcc_ceds_music.csv

The split is timed apart: the driver makes it once per seed and hands it to every worker
(before the run pipeline, each process running a grid made it again).
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch

from studybench import memo, registry
from studybench.config import LyricsConfig, apply_overrides
from studybench.data.splits import make_split
from studybench.studies.lyrics import load_clean


def prepare_grid(split, preset: str, features: list[str]) -> dict[str, float]:
    """Seconds of preparation per model family, for every model x feature set of the grid."""
    both = pd.concat([split.train, split.val], ignore_index=True)
    seconds: dict[str, float] = {}
    for name in registry.names("lyrics"):
        spec = registry.get(name)
        for fs in features:
            model = spec.build(spec.resolve(preset), fs, 0)
            started = time.perf_counter()
            if model.kind == "sklearn":
                model._featurize(split.train, split.val)
                if model.refit:
                    model._featurize(both, None)
            else:
                model.prepare(split.train, split.val)
                model._build(len(model.classes_), fitting=True)  # GloVe vectors, where the preset has them
                model._tensors(split.test, False)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="artist")
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--features", default="lyrics,lyrics+artist")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = apply_overrides(LyricsConfig(), {"split.kind": args.split})
    data = load_clean(args.data, config)
    started = time.perf_counter()
    split = make_split(data.frame, config.split, 0, None, args.data)
    made = time.perf_counter() - started
    print(f"# {args.data}: {len(data.frame):,} songs; {args.split} split (made in {made:.1f} s); "
          f"preset {args.preset}; features {args.features}; 1 thread")
    features = args.features.split(",")
    totals = {"off": [], "on": []}
    per_model = {}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            os.environ["STUDYBENCH_PREP_CACHE"] = "0" if mode == "off" else "1"
            memo.clear()
            seconds = prepare_grid(split, args.preset, features)
            totals[mode].append(sum(seconds.values()))
            per_model[mode] = seconds
            if mode == "on":
                print(f"# cache: {memo.stats['hits']} hits, {memo.stats['misses']} misses")
    print("| model | off s | on s |")
    print("|---|---:|---:|")
    for name in per_model["off"]:
        print(f"| {name} | {per_model['off'][name]:.1f} | {per_model['on'][name]:.1f} |")
    off, on = min(totals["off"]), min(totals["on"])
    print(f"| **all ({len(features)} feature sets)** | **{off:.1f}** | **{on:.1f}** |")
    rounds = {mode: ", ".join(f"{t:.1f}" for t in times) for mode, times in totals.items()}
    print(f"saved {off - on:.1f} s of {off:.1f} s per seed ({(off - on) / off:.0%}); "
          f"rounds off {rounds['off']} / on {rounds['on']}")


if __name__ == "__main__":
    main()
