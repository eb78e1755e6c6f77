"""Scoring songs in length order against file order: what validation each epoch and the
final test and validation scoring of a recurrent or bag-of-embeddings model cost.

A trimmed batch is cut to its longest song. In file order a batch of 64 (or 1,024 at
prediction) nearly always holds one song at the length cap, so every batch runs the cap's
steps; sorted by length, each batch runs about its own songs' length. The engine scores
length-sorted since this benchmark (and puts the rows back in their order); the file-order
pass here is the code it replaced. Same model, same songs, passes alternated in one run.

    python benchmarks/eval_order.py RUN_DIR [RUN_DIR ...] [--batch 64 1024] [--repeats 3]

RUN_DIR: finished neural lyrics runs (tuned rnn/lstm/lstm_stacked/embedding_bag, say); the
songs are the cleaned tcc_ceds_music.csv ($STUDYBENCH_DATA, default ../shared/data).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from studybench.studies.lyrics import load_clean, load_run_model
from studybench.training.engine import predict_proba

DATA = Path(os.environ.get("STUDYBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@torch.no_grad()
def file_order(net, tensors: dict[str, torch.Tensor], batch_size: int) -> np.ndarray:
    """The scoring before: batches in file order, each cut to its longest song."""
    net.eval()
    out = []
    for start in range(0, len(tensors["ids"]), batch_size):
        batch = {k: v[start:start + batch_size] for k, v in tensors.items() if k != "y"}
        batch["ids"] = batch["ids"][:, : int(batch["lengths"].max())]
        out.append(torch.softmax(net(**batch).float(), dim=1))
    return torch.cat(out).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--songs", type=int, default=5000, help="the first N cleaned songs")
    args = parser.parse_args()

    from studybench.config import LyricsConfig

    frame = load_clean(DATA / "lyrics" / "tcc_ceds_music.csv", LyricsConfig()).frame.head(args.songs)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread(s); {len(frame):,} songs")
    print("| model | batch | file order songs/s | length order songs/s | ratio | max abs prob diff | same top class |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in args.runs:
        _, model = load_run_model(run)
        tensors = model._tensors(frame, False)
        # each batch size both ways, then the scoring before (1,024 in file order) against
        # the engine's default now (None: 128, shortest first)
        for batch, label in [(b, (b, b)) for b in args.batch] + [(None, (1024, "default"))]:
            times = {"file": [], "length": []}
            for _ in range(args.repeats):  # alternated, so machine noise hits both alike
                started = time.perf_counter()
                before = file_order(model.net_, tensors, label[0])
                times["file"].append(time.perf_counter() - started)
                started = time.perf_counter()
                after = predict_proba(model.net_, tensors, batch_size=batch, trim=True)
                times["length"].append(time.perf_counter() - started)
            file_s, length_s = min(times["file"]), min(times["length"])
            same = float(np.mean(before.argmax(1) == after.argmax(1)))
            shown = label[0] if label[0] == label[1] else f"{label[0]} → {label[1]}"
            print(f"| {run.name.split('-')[0]} | {shown} | {len(frame) / file_s:,.0f} | {len(frame) / length_s:,.0f} "
                  f"| {file_s / length_s:.2f} | {np.abs(before - after).max():.1e} | {same:.4f} |", flush=True)


if __name__ == "__main__":
    main()
