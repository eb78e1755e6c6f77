"""studybench against the study's own framework (Keras 3 on TensorFlow), side by side: training
samples/s of every seed-preset neural architecture of both studies, on the same data, the same
batch size and the same number of optimiser steps after warm-up, the two frameworks taking
turns (studybench first in even rounds, Keras first in odd ones) so machine noise hits both.

    python3.11 -m venv .venv-keras && .venv-keras/bin/pip install -r benchmarks/requirements-keras.txt
    python benchmarks/keras_compare.py --keras-python .venv-keras/bin/python [--models cnn_basic,lstm]
        [--steps 10] [--rounds 2] [--threads 2]     (--steps: at batch 1000; 10x that at batch 32)

studybench runs in this process (its seed preset: fp32, as the study), Keras in a subprocess of
the other environment (``benchmarks/keras_study.py``, layer for layer the same networks; the
parameter counts are printed beside each other: Keras counts BatchNorm's moving statistics and
PyTorch's recurrent layers carry a second bias vector, so they differ by exactly those).
Lyrics: tcc_ceds_music.csv from $STUDYBENCH_DATA (else the demo corpus), 20,000 words, 300
tokens; images: CIFAR-10 training images (else random pixels), 5 classes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_throughput  # noqa: E402
import train_throughput  # noqa: E402
from keras_study import IMAGES, LYRICS, batch_size  # noqa: E402

from studybench import registry  # noqa: E402
from studybench.data.text import TextEncoder  # noqa: E402


def studybench_speed(name: str, frame, pixels, steps: int) -> tuple[float, int]:
    """Samples/s of studybench's seed preset and its parameter count."""
    spec = registry.get(name)
    if name in LYRICS:
        speed = train_throughput.measure(name, "seed", frame, steps, "32", "lyrics")
        trunk = spec.build.make_trunk(spec.resolve("seed"), 20000)
        classes = frame["label"].nunique()
        params = sum(p.numel() for p in trunk.parameters()) + (trunk.out_features + 1) * classes
        return speed, params
    speed = image_throughput.measure(name, "seed", pixels, steps, fast=False)
    net = spec.build.factory(spec.resolve("seed"), 5, 32)
    return speed, sum(p.numel() for p in net.parameters())


def keras_speed(python: str, name: str, data: Path, steps: int, threads: int) -> tuple[float, int]:
    script = Path(__file__).resolve().with_name("keras_study.py")
    result = subprocess.run([python, str(script), "speed", name, str(data), "--steps", str(steps),
                             "--threads", str(threads)], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"keras {name} failed: {result.stderr[-2000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    return row["samples_per_s"], row["params"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keras-python", required=True, help="python of the environment with TensorFlow")
    parser.add_argument("--models", default=",".join(LYRICS + IMAGES))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as studybench's engine does
    models = args.models.split(",")
    frame, source = train_throughput.lyrics_frame()
    pixels, image_source = image_throughput.images()
    with tempfile.TemporaryDirectory() as tmp:
        lyrics_npz, images_npz = Path(tmp) / "lyrics.npz", Path(tmp) / "images.npz"
        ids, _ = TextEncoder(20000, 300, 1).fit(frame["text"].tolist()).transform(frame["text"].tolist())
        labels = frame["label"].astype("category").cat.codes.to_numpy()
        np.savez(lyrics_npz, x=ids.numpy().astype(np.int32), y=labels.astype(np.int32))
        np.savez(images_npz, x=pixels.permute(0, 2, 3, 1).numpy(),
                 y=np.random.default_rng(0).integers(0, 5, len(pixels)).astype(np.int32))
        print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads "
              f"each; lyrics: {source}; images: {image_source}; {args.steps} steps (x10 at batch 32) x "
              f"{args.rounds} rounds",
              flush=True)
        rows = []
        for name in models:
            steps = args.steps * (10 if batch_size(name) <= 32 else 1)  # batch-32 models: 10x the steps
            ours, theirs, counts = [], [], None
            for r in range(args.rounds):
                order = ("studybench", "keras") if r % 2 == 0 else ("keras", "studybench")
                for who in order:
                    if who == "studybench":
                        speed, own = studybench_speed(name, frame, pixels, steps)
                        ours.append(speed)
                    else:
                        speed, other = keras_speed(args.keras_python, name,
                                                   lyrics_npz if name in LYRICS else images_npz,
                                                   steps, args.threads)
                        theirs.append(speed)
                counts = (own, other)
            a, b = statistics.median(ours), statistics.median(theirs)
            rows.append((name, batch_size(name), a, b, counts))
            print(f"{name}: studybench {a:.0f}/s, keras {b:.0f}/s, ratio {a / b:.2f} "
                  f"(rounds {[round(v) for v in ours]} vs {[round(v) for v in theirs]})", flush=True)
    print("| model | batch | studybench samples/s | Keras samples/s | ratio | params (studybench / Keras) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, batch, a, b, (own, other) in rows:
        print(f"| {name} | {batch} | {a:,.0f} | {b:,.0f} | {a / b:.2f} | {own:,} / {other:,} |")


if __name__ == "__main__":
    main()
