"""The training step with torch's deterministic algorithms, with and without
``fill_uninitialized_memory``, side by side in one process.

    OMP_NUM_THREADS=1 python benchmarks/deterministic_fill.py [--models lstm,cnn_basic] [--preset tuned]
        [--steps 10] [--rounds 3]

Lightning's ``Trainer(deterministic=True)`` calls ``torch.use_deterministic_algorithms(True)``,
which also sets ``torch.utils.deterministic.fill_uninitialized_memory``: every new tensor
(``torch.empty`` included) is filled with NaN before a kernel writes it. The engine keeps the
deterministic algorithms and turns the fill off for training (``training/engine.py``); this
measures what that buys per model: samples/s of the engine's step (``profile_step.timed_step``,
fused Adam) on real data where present, the two settings alternating over ``--rounds`` so machine
noise falls on both; the median round of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import profile_step
from studybench import registry
from studybench.training.tasks import adam

MODELS = ("rnn,lstm,lstm_stacked,embedding_bag,pretrained_embedding,cnn_same_kernel,cnn_multi_kernel,"
          "cnn_lstm,cnn_flat_lstm,cnn_basic,cnn_skip,conv_autoencoder,whitened_cnn")


def rate(net, optimizer, batch, steps: int, fill: bool) -> float:
    """Samples/s over ``steps`` steps after one warm-up step, with the fill on or off."""
    torch.utils.deterministic.fill_uninitialized_memory = fill
    inputs, y = batch()
    profile_step.timed_step(net, optimizer, inputs, y, False)
    seconds, samples = 0.0, 0
    for _ in range(steps):
        inputs, y = batch()
        seconds += sum(profile_step.timed_step(net, optimizer, inputs, y, False))
        samples += len(y)
    return samples / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # as the engine does
    torch.use_deterministic_algorithms(True)  # as Lightning's deterministic=True does
    print(f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, preset {args.preset}, "
          f"{args.steps} steps x {args.rounds} rounds, {time.strftime('%Y-%m-%d')}")
    print("| model | fill on: samples/s | fill off: samples/s | ratio |\n|---|---:|---:|---:|")
    for name in args.models.split(","):
        make = profile_step.image_step if registry.get(name).study == "images" else profile_step.lyrics_step
        net, batch = make(name, args.preset)
        net.train()
        optimizer = adam([p for p in net.parameters() if p.requires_grad], 1e-3)
        rates = {True: [], False: []}
        for _ in range(args.rounds):
            for fill in (True, False):
                rates[fill].append(rate(net, optimizer, batch, args.steps, fill))
        on, off = statistics.median(rates[True]), statistics.median(rates[False])
        print(f"| {name} | {on:,.0f} | {off:,.0f} | {off / on:.2f} |", flush=True)


if __name__ == "__main__":
    main()
