"""The text CNNs' convolutions in channels-last layout against the Conv1d layout they had.

studybench runs the lyrics CNNs' convolutions as height-1 2-D convolutions over a
channels-last view of the embeddings (``models/text/cnn.py``). This script times one
training step of every CNN lyrics model both ways, alternating, on the same batches: the
model as it is, and the same modules run as ``Conv1d`` / ``BatchNorm1d`` / ``MaxPool1d`` on
``[B, C, T]`` (the former forward, kept here as the reference). The outputs of the two
agree to float rounding (``tests/models/test_neural.py``).

    python benchmarks/text_conv_layout.py [--models cnn_multi_kernel] [--presets seed,tuned]
        [--songs 2048] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_throughput  # noqa: E402

from studybench import registry  # noqa: E402
from studybench.models.text import cnn  # noqa: E402
from studybench.models.text.rnn import masked_pool  # noqa: E402
from studybench.training.tasks import adam  # noqa: E402

MODELS = ("cnn_same_kernel", "cnn_multi_kernel", "cnn_lstm", "cnn_flat_lstm")


def conv1d_stack(self, x: torch.Tensor, lengths: torch.Tensor):
    """ConvStack.forward in the Conv1d layout: ``[B, T, C]`` -> ``[B, T', filters]``."""
    x = x.transpose(1, 2)
    if x.shape[2] < self.min_len:
        x = F.pad(x, (0, self.min_len - x.shape[2]))
    for conv, norm, act, pool, drop in self.blocks:
        x = drop(pool(act(norm(conv(x)))))
    return x.transpose(1, 2), self.out_len(lengths).clamp(min=1)


def conv1d_trunk(self, ids: torch.Tensor, lengths: torch.Tensor):
    """CnnTrunk.forward with Kim's branches as Conv1d on ``[B, C, T]``."""
    if not self.parallel:
        x, valid = self.stack(self.embedding(ids), lengths)
        features = x.transpose(1, 2).flatten(1) if self.pooling == "flatten" else masked_pool(x, valid, "max")
        return self.out(features)
    x = self.embedding(ids).transpose(1, 2)
    widest = max(b.kernel_size[0] for b in self.branches)
    if x.shape[2] < widest:
        x = F.pad(x, (0, widest - x.shape[2]))
    pooled = [masked_pool(F.relu(b(x)).transpose(1, 2), (lengths - b.kernel_size[0] + 1).clamp(min=1), "max")
              for b in self.branches]
    return self.out(torch.cat(pooled, dim=1))


@contextlib.contextmanager
def conv1d_layout():
    """Run the CNN trunks in the Conv1d layout while inside."""
    saved = cnn.ConvStack.forward, cnn.CnnTrunk.forward
    cnn.ConvStack.forward, cnn.CnnTrunk.forward = conv1d_stack, conv1d_trunk
    try:
        yield
    finally:
        cnn.ConvStack.forward, cnn.CnnTrunk.forward = saved


def songs_per_second(name: str, preset: str, frame, songs: int) -> float:
    """Training songs/s over about ``songs`` songs after one warm-up step."""
    net, batches = train_throughput.lyrics_model(name, preset, frame)
    optimizer = adam(net.parameters(), 1e-3)
    net.train()
    done, elapsed = 0, 0.0
    while done < songs:
        batch = next(batches)
        y = batch.pop("y")
        start = time.perf_counter()
        loss = F.cross_entropy(net(**batch).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if elapsed or done:  # the first step warms up
            elapsed += time.perf_counter() - start
        done += len(y)
    return (done - len(y)) / elapsed if elapsed else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--presets", default="seed,tuned")
    parser.add_argument("--songs", type=int, default=2048, help="songs timed per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is shown")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    frame, path = train_throughput.lyrics_frame()
    print(f"# {path.name}; {torch.get_num_threads()} thread(s); torch {torch.__version__}; "
          f"~{args.songs} songs per measurement, {args.rounds} alternating rounds, median")
    print("| model | preset | batch | Conv1d layout songs/s | channels-last songs/s | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.models.split(","):
        for preset in args.presets.split(","):
            rates: dict[str, list[float]] = {"conv1d": [], "channels_last": []}
            for r in range(args.rounds):
                for label in (("conv1d", "channels_last") if r % 2 == 0 else ("channels_last", "conv1d")):
                    with conv1d_layout() if label == "conv1d" else contextlib.nullcontext():
                        rates[label].append(songs_per_second(name, preset, frame, args.songs))
            before, after = statistics.median(rates["conv1d"]), statistics.median(rates["channels_last"])
            batch = registry.get(name).resolve(preset).train.batch_size
            print(f"| {name} | {preset} | {batch} | {before:,.0f} | {after:,.0f} | {after / before:.2f} |", flush=True)


if __name__ == "__main__":
    main()
