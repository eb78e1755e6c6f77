"""Where one training step of a model spends its time: the operators of forward, backward and
the optimiser, from ``torch.profiler``, grouped so a slow model's bottleneck can be read off.

    python benchmarks/profile_step.py cnn_same_kernel [--preset seed] [--steps 5]
        [--optimizer engine|unfused] [--precision 32|bf16] [--rows 15]

The step is the one ``train_throughput.py`` and ``image_throughput.py`` time (batches sliced
from tensors, Adam 1e-3), on tcc lyrics or CIFAR-10 (or the demo / random stand-ins), after
two warm-up steps, with the engine's optimiser (fused Adam) or the unfused one it replaced. The phases (forward, backward, optimiser) are timed around the profile as
well, without the profiler's overhead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_throughput  # noqa: E402
import train_throughput  # noqa: E402

from studybench import registry  # noqa: E402
from studybench.training.tasks import adam  # noqa: E402


def lyrics_step(name: str, preset: str):
    """The network and a function giving its next (inputs, labels)."""
    frame, _ = train_throughput.lyrics_frame()
    net, batches = train_throughput.lyrics_model(name, preset, frame)

    def batch():
        b = next(batches)
        return b, b.pop("y")
    return net, batch


def image_step(name: str, preset: str):
    pixels, _ = image_throughput.images()
    params = registry.get(name).resolve(preset)
    net, params = image_throughput.image_model(name, preset, getattr(params, "channels_last", False))
    labels = torch.randint(0, 5, (len(pixels),))
    size, state = params.train.batch_size, {"i": 0}

    def batch():
        i = state["i"] % (len(pixels) - size)
        state["i"] += size
        return {"images": pixels[i:i + size]}, labels[i:i + size]
    return net, batch


def timed_step(net, optimizer, inputs: dict, y: torch.Tensor, bf16: bool) -> tuple[float, float, float]:
    """One training step (reconstruction MSE for an autoencoder, cross-entropy otherwise);
    the seconds of its forward, backward and optimiser phases."""
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = net(**inputs)
        loss = F.mse_loss(*(o.float() for o in out)) if isinstance(out, tuple) else F.cross_entropy(out.float(), y)
    t1 = time.perf_counter()
    optimizer.zero_grad()
    loss.backward()
    t2 = time.perf_counter()
    optimizer.step()
    return t1 - t0, t2 - t1, time.perf_counter() - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--optimizer", default="engine", choices=["engine", "unfused"])
    parser.add_argument("--precision", default="32", choices=["32", "bf16"])
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    study = registry.get(args.model).study
    net, batch = (lyrics_step if study == "lyrics" else image_step)(args.model, args.preset)
    optimizer = adam(net.parameters(), 1e-3) if args.optimizer == "engine" else \
        torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    bf16 = args.precision == "bf16"

    def step(times=None):
        inputs, y = batch()
        phases = timed_step(net, optimizer, inputs, y, bf16)
        if times is not None:
            times.append((*phases, len(y)))

    for _ in range(2):
        step()
    times: list[tuple[float, float, float, int]] = []
    for _ in range(args.steps):
        step(times)
    fwd, bwd, opt, n = (sum(t[i] for t in times) for i in range(4))
    total = fwd + bwd + opt
    print(f"# {args.model} ({args.preset}), {args.precision}, optimizer {args.optimizer}, "
          f"{torch.get_num_threads()} threads: {n / total:,.0f} samples/s; forward {fwd / total:.0%}, "
          f"backward {bwd / total:.0%}, optimiser {opt / total:.0%}")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
