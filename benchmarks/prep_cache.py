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


def grid(preset: str, features: list[str]) -> list[tuple[str, str]]:
    """The grid's (model, feature set) pairs, longest runs first, as the driver orders them."""
    def cost(pair: tuple[str, str]) -> float:
        spec = registry.get(pair[0])
        return spec.relative_cost(preset, spec.resolve(preset))

    pairs = [(name, fs) for name in registry.names("lyrics") for fs in features]
    return sorted(pairs, key=cost, reverse=True)


def prepare_grid(split, preset: str, features: list[str],
                 pairs: list[tuple[str, str]] | None = None) -> dict[str, float]:
    """Seconds of preparation per model family, for every model x feature set of the grid
    (or the given ``pairs`` of it)."""
    both = pd.concat([split.train, split.val], ignore_index=True)
    seconds: dict[str, float] = {}
    for name, fs in pairs or [(n, f) for n in registry.names("lyrics") for f in features]:
        spec = registry.get(name)
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


def _worker(split, preset, features, pairs, shared: bool, cache: str, results) -> None:
    os.environ["STUDYBENCH_CACHE"] = cache
    torch.set_num_threads(1)
    memo.clear()
    memo.share_on_disk(shared)
    seconds = prepare_grid(split, preset, features, pairs)
    results.put((os.getpid(), sum(seconds.values()), dict(memo.stats)))


def across_workers(split, preset: str, features: list[str], workers: int, rounds: int) -> None:
    """The grid's preparation in ``workers`` processes at once, each taking every
    ``workers``-th run of the driver's order: the disk layer off (each worker prepares what it
    needs itself) against on (a worker loads what another one already saved)."""
    import multiprocessing
    import tempfile

    context = multiprocessing.get_context("spawn")
    pairs = grid(preset, features)
    totals: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(rounds):
        for mode in ("off", "on"):
            with tempfile.TemporaryDirectory(prefix="prep-bench-") as cache:
                results = context.Queue()
                started = time.perf_counter()
                procs = [context.Process(target=_worker, args=(split, preset, features, pairs[i::workers],
                                                               mode == "on", cache, results))
                         for i in range(workers)]
                for proc in procs:
                    proc.start()
                done = [results.get() for _ in procs]
                for proc in procs:
                    proc.join()
                wall = time.perf_counter() - started
            totals[mode].append((sum(d[1] for d in done), wall))
            stats = [d[2] for d in done]
            print(f"# {mode}: prep {totals[mode][-1][0]:.1f} s summed over {workers} workers, "
                  f"{wall:.1f} s wall (incl. start-up); per worker {stats}", flush=True)
    print(f"| disk layer | prep s, summed over {workers} workers | wall s (incl. process start) |")
    print("|---|---:|---:|")
    for mode in ("off", "on"):
        prep, wall = min(totals[mode])
        print(f"| {mode} | {prep:.1f} | {wall:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="artist")
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--features", default="lyrics,lyrics+artist")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1,
                        help="1: one process, in-memory cache off/on; N: N processes at once, disk layer off/on")
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
    if args.workers > 1:
        across_workers(split, args.preset, features, args.workers, args.rounds)
        return
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
