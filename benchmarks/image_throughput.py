"""Training throughput (images/s) of every image model: fp32 against bf16 autocast with
channels-last memory.

Both settings run side by side in one process on the same batches, so the ratio is
what matters. Uses CIFAR-10 from $STUDYBENCH_DATA (default ../shared/data) when
present, otherwise random images of the same shape.

    python benchmarks/image_throughput.py [--models cnn_basic] [--preset tuned] [--steps 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from studybench import registry
from studybench.training.tasks import adam


def cifar_folder() -> Path:
    """CIFAR-10 under $STUDYBENCH_DATA (default ../shared/data); it may be absent."""
    data = Path(os.environ.get("STUDYBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return data / "cifar10-jpeg-q75"


def images() -> tuple[torch.Tensor, str]:
    folder = cifar_folder()
    if folder.is_dir():
        from studybench.data.images import load_images

        return load_images(folder).train.images[:8192], "CIFAR-10 training images"
    return torch.randint(0, 256, (8192, 3, 32, 32), dtype=torch.uint8), "random images"


def image_model(name: str, preset: str, channels_last: bool):
    """``(net, params)``: the 5-class network of ``name`` for 32-pixel images, in channels-last
    memory when asked."""
    params = registry.get(name).resolve(preset)
    if channels_last:
        params = dataclasses.replace(params, channels_last=True)
    torch.manual_seed(0)
    net = registry.get(name).build.factory(params, 5, 32)
    return (net.to(memory_format=torch.channels_last) if channels_last else net), params


def measure(name: str, preset: str, pixels: torch.Tensor, steps: int, fast: bool) -> float:
    """Images per second over ``steps`` optimiser steps after two warm-up steps."""
    net, params = image_model(name, preset, fast)
    optimizer = adam(net.parameters(), 1e-3)  # the engine's optimiser (fused Adam)
    batch = params.train.batch_size
    labels = torch.randint(0, 5, (len(pixels),))
    net.train()
    done, start = 0, None
    for step in range(steps + 2):
        if step == 2:
            start = time.perf_counter()
        i = (step * batch) % (len(pixels) - batch)
        x, y = pixels[i:i + batch], labels[i:i + batch]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            out = net(x)
            loss = F.mse_loss(*(o.float() for o in out)) if isinstance(out, tuple) else \
                F.cross_entropy(out.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 2:
            done += len(x)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(registry.names("images")))
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    pixels, source = images()
    print(f"# {source}; preset {args.preset}; {args.steps} steps; torch {torch.__version__}; "
          f"{platform.machine()}, {torch.get_num_threads()} threads")
    print("| model | batch | fp32 images/s | bf16 + channels-last images/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in args.models.split(","):
        batch = registry.get(name).resolve(args.preset).train.batch_size
        fp32 = measure(name, args.preset, pixels, args.steps, fast=False)
        bf16 = measure(name, args.preset, pixels, args.steps, fast=True)
        print(f"| {name} | {batch} | {fp32:,.0f} | {bf16:,.0f} | {bf16 / fp32:.2f} |", flush=True)


if __name__ == "__main__":
    main()
