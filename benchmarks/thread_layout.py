"""Two cores, three ways to use them: one run on 2 threads, one run on 1 thread alone, and
two runs on 1 thread each at once (what ``--workers 2`` does). Training songs/s of neural
lyrics models, each layout in fresh processes, the layouts alternating per model, so the
ratios are side by side in one run.

    python benchmarks/thread_layout.py [--models lstm,cnn_multi_kernel] [--steps 40] [--rounds 2]

Columns: songs/s of one 2-thread run; of one 1-thread run alone; of two 1-thread runs
together (their sum); the gain of two workers over one 2-thread run; and how much of its
alone speed each of the two concurrent runs keeps (1.00 = the cores do not slow each other).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def child(model: str, preset: str, steps: int, threads: int) -> None:
    import torch

    from train_throughput import lyrics_frame, measure

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    frame, _ = lyrics_frame()
    print(measure(model, preset, frame, steps, "32", "lyrics"))


def spawn(model: str, preset: str, steps: int, threads: int, copies: int) -> list[float]:
    env = {**os.environ, **{v: str(threads) for v in THREAD_VARIABLES}}
    argv = [sys.executable, __file__, "--child", model, "--preset", preset, "--steps", str(steps),
            "--threads", str(threads)]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    rates = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            sys.exit(f"{model}: a measuring process failed ({proc.returncode})")
        rates.append(float(out.strip().splitlines()[-1]))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="rnn,lstm,cnn_multi_kernel,embedding_bag")
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="best of this many per layout")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.preset, args.steps, args.threads)
        return
    print(f"# preset {args.preset}, {args.steps} steps after one warm-up step, best of {args.rounds}")
    print("| model | 1 run × 2 threads | 1 run × 1 thread, alone | 2 runs × 1 thread, sum "
          "| 2 × 1 over 1 × 2 | kept of alone speed |")
    print("|---|---:|---:|---:|---:|---:|")
    for model in args.models.split(","):
        two, one, pair = 0.0, 0.0, (0.0, 0.0)
        for _ in range(args.rounds):
            two = max(two, spawn(model, args.preset, args.steps, 2, 1)[0])
            one = max(one, spawn(model, args.preset, args.steps, 1, 1)[0])
            rates = spawn(model, args.preset, args.steps, 1, 2)
            pair = max(pair, tuple(rates), key=sum)
        print(f"| {model} | {two:,.0f} | {one:,.0f} | {sum(pair):,.0f} | {sum(pair) / two:.2f} | "
              f"{sum(pair) / 2 / one:.2f} |", flush=True)


if __name__ == "__main__":
    main()
