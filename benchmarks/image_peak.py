"""How close the image CNNs' training steps come to this machine's peak: the matrix-multiply
peak measured here (fp32, and bf16 where the CPU has it), the FLOPs of each model's training
step counted by ``torch.utils.flop_counter``, the step timed (forward, backward, optimiser) in
fp32 and in bf16 autocast + channels-last, and the achieved share of the peak.

    python benchmarks/image_peak.py [--models cnn_basic,whitened_cnn] [--preset tuned]
        [--steps 6] [--threads 1,2] [--runs RUN_FOLDER ...]

The step is the one ``image_throughput.py`` and ``profile_step.py`` time (batches sliced from
CIFAR-10 training images, or random images where the data is absent; fused Adam), after two
warm-up steps. FLOPs count the convolutions and matrix multiplies of forward and backward
(2 per multiply-add), which is what the peak measures; elementwise work (activations,
BatchNorm, pooling, the optimiser) is time without FLOPs here, so it lowers the share.

``--runs`` takes finished image study folders (``studybench run images --out ...``) and sets
each block-1 model's real seconds per epoch (fit seconds / epochs run) beside the timed steps,
so the part of an epoch spent outside the training steps (validation, checkpoint, the other
worker's share of the machine) can be read off, as in the lyrics table of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_throughput  # noqa: E402
from profile_step import timed_step  # noqa: E402

from studybench import registry  # noqa: E402
from studybench.training.tasks import adam  # noqa: E402


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """The best of ``repeats`` square ``size`` matrix multiplies, in GFLOP/s (2 n^3 each)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def loss_of(out, y: torch.Tensor) -> torch.Tensor:
    """The training loss: reconstruction MSE for the autoencoder, cross-entropy otherwise."""
    if isinstance(out, tuple):
        return F.mse_loss(*(o.float() for o in out))
    return F.cross_entropy(out.float(), y)


def step_flops(name: str, preset: str, pixels: torch.Tensor) -> tuple[float, int]:
    """FLOPs of one training step (forward and backward, fp32) and the batch size."""
    net, params = image_throughput.image_model(name, preset, False)
    batch = params.train.batch_size
    x, y = pixels[:batch], torch.randint(0, 5, (batch,))
    net.train()
    with FlopCounterMode(display=False) as counter:
        loss_of(net(x), y).backward()
    return float(counter.get_total_flops()), batch


def time_steps(name: str, preset: str, pixels: torch.Tensor, steps: int, fast: bool) -> dict[str, float]:
    """Seconds per step, and their split into forward, backward and optimiser."""
    net, params = image_throughput.image_model(name, preset, fast)
    optimizer = adam(net.parameters(), 1e-3)
    batch = params.train.batch_size
    labels = torch.randint(0, 5, (len(pixels),))
    net.train()
    phases = [0.0, 0.0, 0.0]
    for step in range(steps + 2):
        i = (step * batch) % (len(pixels) - batch)
        timed = timed_step(net, optimizer, {"images": pixels[i:i + batch]}, labels[i:i + batch], fast)
        if step >= 2:
            for k, t in enumerate(timed):
                phases[k] += t / steps
    return {"step": sum(phases), "forward": phases[0], "backward": phases[1], "optimiser": phases[2]}


def real_epochs(folders: list[str], preset: str) -> dict[str, list[float]]:
    """Block-1 model -> real seconds per epoch (fit seconds / epochs run) of each finished run
    under ``folders``."""
    out: dict[str, list[float]] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("runs/*/metrics.json")):
            m = json.loads(path.read_text())
            epochs = m.get("selection", {}).get("epochs_run")
            if m.get("stage") == "block1" and m.get("preset") == preset and epochs and m.get("fit_seconds"):
                out.setdefault(m["model"], []).append(m["fit_seconds"] / epochs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(registry.names("images")))
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", default="1,2", help="thread counts to measure, comma-separated")
    parser.add_argument("--precisions", default="fp32,bf16",
                        help="fp32 and/or bf16 (autocast + channels-last); bf16 is slow where the CPU emulates it")
    parser.add_argument("--runs", nargs="*", default=[], help="finished image study folders")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    pixels, source = image_throughput.images()
    names = args.models.split(",")
    precisions = [(label, fast) for key, label, fast in (("fp32", "fp32", False), ("bf16", "bf16 + channels-last", True))
                  if key in args.precisions.split(",")]
    flops = {name: step_flops(name, args.preset, pixels) for name in names}
    real = real_epochs(args.runs, args.preset)
    print(f"# {source}; preset {args.preset}; {args.steps} steps after 2 warm-up; torch {torch.__version__}; "
          f"{platform.machine()} {platform.processor() or ''}".rstrip())
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16, 1024, 2)}
        print(f"\n## {threads} thread(s): matrix-multiply peak fp32 {peak['fp32']:,.1f} GFLOP/s "
              f"(2048 x 2048, best of 5), bf16 {peak['bf16']:,.1f} GFLOP/s (1024 x 1024, best of 2)\n")
        print("| model | batch | GFLOP per step | precision | images/s | forward | backward | optimiser "
              "| GFLOP/s | share of peak | s per epoch of steps (20,000 images) | real s per epoch |")
        print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name in names:
            total, batch = flops[name]
            for label, fast in precisions:
                t = time_steps(name, args.preset, pixels, args.steps, fast)
                rate = total / t["step"] / 1e9
                key = "bf16" if fast else "fp32"
                epoch = 20000 / batch * t["step"]
                seen = real.get(name)
                real_col = f"{sum(seen) / len(seen):.1f} ({len(seen)} runs)" if seen and not fast else ""
                print(f"| {name} | {batch} | {total / 1e9:.2f} | {label} | {batch / t['step']:,.0f} | "
                      f"{t['forward'] / t['step']:.0%} | {t['backward'] / t['step']:.0%} | "
                      f"{t['optimiser'] / t['step']:.0%} | {rate:,.1f} | {rate / peak[key]:.0%} | {epoch:.1f} | "
                      f"{real_col} |", flush=True)


if __name__ == "__main__":
    main()
