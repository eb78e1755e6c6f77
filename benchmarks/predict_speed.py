"""Prediction speed of exported bundles: single-lyric latency (median, p95), batch throughput
(lyrics/s) and images/s, all in one process on this machine.

Give finished run folders (a lyrics classical run, a neural one, an image classifier);
each is exported to a temporary bundle and loaded the way `studybench predict` does.
Lyrics come from tcc_ceds_music.csv ($STUDYBENCH_DATA, default ../shared/data) when present,
else the demo corpus; images from CIFAR-10 there, else random pixels.

    python benchmarks/predict_speed.py RUN_DIR [RUN_DIR ...] [--n 2000] [--single 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from studybench.bundles import export_bundle, load_bundle

DATA = Path(os.environ.get("STUDYBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def lyrics(n: int) -> list[str]:
    import pandas as pd

    from studybench.data.demo import demo_lyrics_path

    path = DATA / "lyrics" / "tcc_ceds_music.csv"
    frame = pd.read_csv(path if path.exists() else demo_lyrics_path())
    column = "Lyrics" if "Lyrics" in frame else frame.columns[-1]
    texts = frame[column].astype(str).tolist()
    return (texts * (n // len(texts) + 1))[:n]


def images(n: int) -> torch.Tensor:
    folder = DATA / "cifar10-jpeg-q75"
    if folder.is_dir():
        from studybench.data.images import load_images

        return load_images(folder).test.images[:n]
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)


def measure(bundle, n: int, single: int, batch: int) -> str:
    if bundle.study == "lyrics":
        texts = lyrics(n)
        bundle.predict_lyrics(texts[:8])  # warm-up
        latencies = []
        for text in texts[:single]:
            started = time.perf_counter()
            bundle.predict_lyrics([text])
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(0, n, batch):
            bundle.predict_lyrics(texts[i:i + batch])
        rate = n / (time.perf_counter() - started)
        ms = np.array(latencies) * 1000
        return (f"| {bundle.meta['model']} ({bundle.meta['features']}) | {np.median(ms):.1f} | "
                f"{np.percentile(ms, 95):.1f} | {rate:,.0f} lyrics/s |")
    pixels = images(n)
    bundle.predict_images(pixels[:8])
    latencies = []
    for i in range(single):
        started = time.perf_counter()
        bundle.predict_images(pixels[i:i + 1])
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(0, len(pixels), batch):
        bundle.predict_images(pixels[i:i + batch])
    rate = len(pixels) / (time.perf_counter() - started)
    ms = np.array(latencies) * 1000
    return (f"| {bundle.meta['model']} (images) | {np.median(ms):.1f} | {np.percentile(ms, 95):.1f} | "
            f"{rate:,.0f} images/s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=2000, help="inputs for the batch throughput")
    parser.add_argument("--single", type=int, default=200, help="single-input calls for the latency")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    print(f"# torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads; "
          f"batch {args.batch}, {args.n} inputs, {args.single} single calls")
    print("| model | single median ms | single p95 ms | batch throughput |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(args.runs):
            bundle = load_bundle(export_bundle(run, Path(tmp) / f"b{i}"))
            print(measure(bundle, args.n, args.single, args.batch), flush=True)


if __name__ == "__main__":
    main()
