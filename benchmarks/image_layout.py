"""fp32 training speed of the image models' seed presets in NCHW against channels-last memory,
alternating, same batches (the layout is the only difference; the arithmetic is the same).

    python benchmarks/image_layout.py cnn_basic,cnn_skip,conv_autoencoder THREADS
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_throughput  # noqa: E402
from profile_step import timed_step  # noqa: E402

from studybench import registry  # noqa: E402
from studybench.training.tasks import adam  # noqa: E402


def rate(name: str, pixels: torch.Tensor, channels_last: bool, steps: int) -> float:
    """Images/s of the seed preset's training step over ``steps`` steps after two warm-up steps."""
    params = dataclasses.replace(registry.get(name).resolve("seed"), channels_last=channels_last)
    torch.manual_seed(0)
    net = registry.get(name).build.factory(params, 5, 32)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer, batch = adam(net.parameters(), 1e-3), params.train.batch_size
    labels = torch.randint(0, 5, (len(pixels),))
    net.train()
    seconds = 0.0
    for step in range(steps + 2):
        i = (step * batch) % (len(pixels) - batch)
        phases = timed_step(net, optimizer, {"images": pixels[i:i + batch]}, labels[i:i + batch], False)
        if step >= 2:
            seconds += sum(phases)
    return steps * batch / seconds


def main() -> None:
    torch.set_flush_denormal(True)
    torch.set_num_threads(int(sys.argv[2]))
    pixels, _ = image_throughput.images()
    for name in sys.argv[1].split(","):
        rates: dict[bool, list[float]] = {False: [], True: []}
        for r in range(3):
            for layout in ((False, True) if r % 2 == 0 else (True, False)):
                rates[layout].append(rate(name, pixels, layout, 30))
        nchw, last = statistics.median(rates[False]), statistics.median(rates[True])
        print(f"{name} seed: NCHW {nchw:.0f} img/s, channels-last {last:.0f} img/s, ratio {last / nchw:.2f}", flush=True)


if __name__ == "__main__":
    main()
