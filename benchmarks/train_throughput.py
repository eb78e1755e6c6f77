"""Training throughput (songs/s) of every neural lyrics model, fp32 against bf16 autocast.

Both precisions run side by side in one process on the same batches, so the
ratio is what matters; absolute numbers depend on the machine. Uses real lyrics
(tcc_ceds_music.csv from $STUDYBENCH_DATA, default ../shared/data) when present,
otherwise the built-in demo corpus.

    python benchmarks/train_throughput.py [--models rnn,lstm] [--preset tuned] [--steps 8]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from studybench import registry
from studybench.config import CleaningConfig
from studybench.data.cleaning import clean_frame
from studybench.data.demo import demo_lyrics_path
from studybench.data.lyrics import read_lyrics
from studybench.data.text import TextEncoder
from studybench.models.heads import ClassifierHead, TextClassifier
from studybench.training.engine import TensorBatches
from studybench.training.tasks import adam


def lyrics_frame():
    data = Path(os.environ.get("STUDYBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    path = data / "lyrics" / "tcc_ceds_music.csv"
    frame, _ = clean_frame(read_lyrics(path if path.exists() else demo_lyrics_path()).frame, CleaningConfig())
    return frame, path if path.exists() else demo_lyrics_path()


def lyrics_model(name: str, preset: str, frame, features: str = "lyrics", overrides: dict | None = None):
    """``(net, batches)``: the network of ``name`` as the engine builds it (``overrides``: model
    settings over the preset, as ``--set model.…``) and an endless iterator of its training
    batches (dicts with ``y``), sliced as the engine slices them."""
    spec = registry.get(name)
    params = spec.resolve(preset, overrides)
    encoder = TextEncoder(params.max_words, params.max_len, params.min_count).fit(frame["text"])
    torch.manual_seed(0)
    trunk = spec.build.make_trunk(params, encoder.vocab_size_)
    classes = sorted(set(frame["label"]))
    artists = sorted(set(frame["artist"]))
    n_artists = len(artists) if features == "lyrics+artist" else 0
    net = TextClassifier(trunk, ClassifierHead(trunk.out_features, len(classes), n_artists,
                                               params.artist_dim, params.artist_dropout))
    ids, lengths = encoder.transform(frame["text"].tolist())
    tensors = {"ids": ids, "lengths": lengths,
               "y": torch.tensor(frame["label"].map({c: i for i, c in enumerate(classes)}).to_numpy())}
    if n_artists:
        index = {a: i + 1 for i, a in enumerate(artists)}
        tensors["artist"] = torch.tensor([index[a] for a in frame["artist"]])
    return net, iter(TensorBatches(tensors, params.train.batch_size, shuffle=True, seed=0,
                                   trim=not trunk.fixed_length))


def measure(name: str, preset: str, frame, steps: int, precision: str, features: str,
            overrides: dict | None = None) -> float:
    """Songs per second over ``steps`` optimiser steps after one warm-up step."""
    net, batches = lyrics_model(name, preset, frame, features, overrides)
    optimizer = adam(net.parameters(), 1e-3)  # the engine's optimiser (fused Adam)
    net.train()
    songs, start = 0, None
    for step in range(steps + 1):
        batch = next(batches)
        y = batch.pop("y")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = net(**batch)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 0:
            start = time.perf_counter()  # the first step pays for allocation and warm-up
        else:
            songs += len(y)
    return songs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated (default: every neural lyrics model)")
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--features", default="lyrics")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    frame, path = lyrics_frame()
    names = args.models.split(",") if args.models else [
        n for n in registry.names("lyrics") if hasattr(registry.get(n).build, "make_trunk")]
    print(f"# {path.name}, {len(frame)} songs; preset {args.preset}; features {args.features}; "
          f"{args.steps} steps; torch {torch.__version__}; {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads")
    print("| model | batch | fp32 songs/s | bf16 songs/s | bf16 / fp32 |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        fp32 = measure(name, args.preset, frame, args.steps, "32", args.features)
        bf16 = measure(name, args.preset, frame, args.steps, "bf16", args.features)
        batch = registry.get(name).resolve(args.preset).train.batch_size
        print(f"| {name} | {batch} | {fp32:,.0f} | {bf16:,.0f} | {bf16 / fp32:.2f} |", flush=True)


if __name__ == "__main__":
    main()
