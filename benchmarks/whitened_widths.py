"""Training and test-time-scoring throughput (images/s) of whitened_cnn at several widths,
side by side in one process: what sizes the tuned preset for a 10-minute block-1 run.

Training: forward, backward and a Nesterov SGD step on 5-class batches, after two
warm-up steps. Scoring: the test-time views of level 2 (six forwards per image). bf16 is
autocast around the forward passes, as the engine's bf16-mixed precision does (fast only
where the CPU has native bf16: AVX-512 BF16 or AMX). Random images: speed does not depend
on the pixels.

    python benchmarks/whitened_widths.py [--steps 6] [--batches 256,512] [--precisions 32,bf16]
        [--layouts channels-last,NCHW] [--widths 64/256/256,96/384/384]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import time

import torch
import torch.nn.functional as F

from studybench import registry
from studybench.models.image.layers import TestTimeViews

WIDTHS = "64/256/256,64/128/128,32/64/128"  # airbench94's, the width between, the tuned preset's


def autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def measure(widths: tuple[int, ...], batch: int, channels_last: bool, steps: int,
            pixels: torch.Tensor, precision: str = "32") -> tuple[float, float]:
    spec = registry.get("whitened_cnn")
    params = spec.resolve("tuned", {"widths": widths, "channels_last": channels_last})
    torch.manual_seed(0)
    net = spec.build.factory(params, 5, 32)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1, momentum=0.85,
                                nesterov=True)
    labels = torch.randint(0, 5, (len(pixels),))
    net.train()
    done, start = 0, 0.0
    for step in range(steps + 2):
        if step == 2:
            start = time.perf_counter()
        i = (step * batch) % (len(pixels) - batch)
        with autocast(precision):
            logits = net(pixels[i:i + batch])
        loss = F.cross_entropy(logits.float(), labels[i:i + batch], label_smoothing=0.2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done += batch if step >= 2 else 0
    train = done / (time.perf_counter() - start)
    net.eval()
    with torch.no_grad(), TestTimeViews(net), autocast(precision):
        net(pixels[:256])
        start = time.perf_counter()
        net(pixels[:1024])
        scoring = 1024 / (time.perf_counter() - start)
    return train, scoring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batches", default="256,512")
    parser.add_argument("--precisions", default="32", help="comma-separated: 32, bf16")
    parser.add_argument("--layouts", default="channels-last,NCHW", help="comma-separated: channels-last, NCHW")
    parser.add_argument("--widths", default=WIDTHS, help="comma-separated, each the groups' widths joined by /")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    pixels = torch.randint(0, 256, (4096, 3, 32, 32), dtype=torch.uint8)
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    print(f"# torch {torch.__version__}; {platform.machine()}, {torch.get_num_threads()} threads; "
          f"native bf16: {bf16}")
    print("| widths | batch | precision | memory | train images/s | scoring images/s (6 views) |")
    print("|---|---:|---|---|---:|---:|")
    for widths in (tuple(int(w) for w in ws.split("/")) for ws in args.widths.split(",")):
        for batch in (int(b) for b in args.batches.split(",")):
            for precision in args.precisions.split(","):
                for layout in args.layouts.split(","):
                    train, scoring = measure(widths, batch, layout == "channels-last", args.steps, pixels, precision)
                    print(f"| {'/'.join(map(str, widths))} | {batch} | {precision} | {layout} "
                          f"| {train:,.0f} | {scoring:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
