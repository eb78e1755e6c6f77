"""Training throughput of a tuned lyrics model at other widths, side by side in one process.

    OMP_NUM_THREADS=1 python benchmarks/lyrics_width.py lstm_stacked hidden=64 hidden=48 [--rounds 3] [--steps 20]

Each variant is the preset with one or more ``key=value`` model settings over it (``a=1,b=2``
for several); the variants alternate over ``--rounds`` so machine noise falls on all of them,
and each round reports songs/s over ``--steps`` optimiser steps of the engine's step (fused Adam)
after a warm-up step, on the real tcc lyrics (or the demo corpus). The median round is printed
with the ratio to the first variant. Width changes to a tuned preset are decided on validation
(benchmarks/RESULTS.md); this script only says what they buy in speed.
"""

from __future__ import annotations

import argparse
import statistics

import torch

import train_throughput
from studybench.config import parse_assignments


def variant(text: str) -> dict:
    """``hidden=48,layers=2`` -> {"hidden": "48", "layers": "2"} (read as the declared types)"""
    return parse_assignments(text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("variants", nargs="+", help="key=value[,key=value] over the preset")
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--features", default="lyrics")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # as the engine does
    frame, source = train_throughput.lyrics_frame()
    print(f"{args.model} ({args.preset}, {args.features}) on {source.name}, {torch.get_num_threads()} thread(s)")
    rates: dict[str, list[float]] = {v: [] for v in args.variants}
    for _ in range(args.rounds):
        for v in args.variants:
            rates[v].append(train_throughput.measure(args.model, args.preset, frame, args.steps, "32",
                                                     args.features, variant(v)))
    first = statistics.median(rates[args.variants[0]])
    print("| variant | songs/s (median) | rounds | ratio |\n|---|---:|---|---:|")
    for v, r in rates.items():
        med = statistics.median(r)
        print(f"| {v} | {med:,.0f} | {', '.join(f'{x:,.0f}' for x in r)} | {med / first:.2f} |")


if __name__ == "__main__":
    main()
