"""studybench against the study's own framework (Keras 3 on TensorFlow), side by side: training
samples/s of every seed-preset neural architecture of both studies, on the same data, the same
batch size and the same number of optimiser steps after warm-up, the two frameworks taking
turns (studybench first in even rounds, Keras first in odd ones) so machine noise hits both.

    python3.11 -m venv .venv-keras && .venv-keras/bin/pip install -r benchmarks/requirements-keras.txt
    python benchmarks/keras_compare.py --keras-python .venv-keras/bin/python [--models cnn_basic,lstm]
        [--steps 10] [--rounds 2] [--threads 2]     (--steps: at batch 1000; 10x that at batch 32)
    python benchmarks/keras_compare.py --keras-python .venv-keras/bin/python --accuracy 5
        [--models cnn_basic,cnn_skip,lstm,embedding_bag,cnn_multi_kernel]

With ``--accuracy EPOCHS`` both frameworks instead train each model for that many epochs on
one fixed split (the same arrays: tcc songs split by artist, 15% held out, GroupShuffleSplit
seed 0; CIFAR-10 block 1, the study's 5 classes, 20% of its training images held out) with
the study's recipe (its batch size, Adam 1e-3, no schedule, no early stopping), and print the
validation accuracy after every epoch: speed is compared at equal quality.

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


def keras(python: str, mode: str, name: str, data: Path, *options: str, timeout: int = 3600) -> dict:
    """The JSON line ``keras_study.py MODE NAME DATA OPTIONS`` prints, run in the Keras environment."""
    script = Path(__file__).resolve().with_name("keras_study.py")
    result = subprocess.run([python, str(script), mode, name, str(data), *options],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"keras {name} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def keras_speed(python: str, name: str, data: Path, steps: int, threads: int) -> tuple[float, int]:
    row = keras(python, "speed", name, data, "--steps", str(steps), "--threads", str(threads))
    return row["samples_per_s"], row["params"]


ACCURACY = ("cnn_basic", "cnn_skip", "lstm", "embedding_bag", "cnn_multi_kernel")


def accuracy_split(study: str, frame) -> dict[str, np.ndarray]:
    """The fixed train / validation arrays of ``study`` (lyrics | images) both frameworks train on
    (see the docstring)."""
    if study == "lyrics":
        from sklearn.model_selection import GroupShuffleSplit

        train, val = next(GroupShuffleSplit(1, test_size=0.15, random_state=0)
                          .split(frame, groups=frame["artist"]))
        labels = frame["label"].astype("category").cat.codes.to_numpy().astype(np.int32)
        encoder = TextEncoder(20000, 300, 1).fit(frame["text"].iloc[train].tolist())
        ids = [encoder.transform(frame["text"].iloc[part].tolist()) for part in (train, val)]
        return {"x": ids[0][0].numpy().astype(np.int32), "lengths": ids[0][1].numpy(), "y": labels[train],
                "x_val": ids[1][0].numpy().astype(np.int32), "lengths_val": ids[1][1].numpy(),
                "y_val": labels[val]}
    from studybench.data.images import class_blocks, load_images, select_classes

    data = load_images(image_throughput.cifar_folder())
    block = select_classes(data.train, class_blocks(len(data.train.classes), 2, 0)[0])
    order = np.random.default_rng(0).permutation(len(block))
    cut = int(0.8 * len(block))
    x = block.images.permute(0, 2, 3, 1).numpy()
    y = block.labels.numpy().astype(np.int32)
    return {"x": x[order[:cut]], "y": y[order[:cut]], "x_val": x[order[cut:]], "y_val": y[order[cut:]]}


def studybench_accuracy(name: str, arrays: dict[str, np.ndarray], epochs: int) -> list[float]:
    """Validation accuracy after each epoch of studybench's seed-preset network, trained with
    the study's recipe through the engine's batching and optimiser."""
    from studybench.models.heads import ClassifierHead, TextClassifier
    from studybench.training.engine import TensorBatches
    from studybench.training.tasks import adam

    spec, n_classes = registry.get(name), int(arrays["y"].max()) + 1
    params = spec.resolve("seed")
    torch.manual_seed(0)
    if name in LYRICS:
        trunk = spec.build.make_trunk(params, 20000)
        net = TextClassifier(trunk, ClassifierHead(trunk.out_features, n_classes, 0, params.artist_dim, 0.0))
        trim = not trunk.fixed_length
        train = {"ids": torch.from_numpy(arrays["x"]).long(), "lengths": torch.from_numpy(arrays["lengths"])}
        val = {"ids": torch.from_numpy(arrays["x_val"]).long(), "lengths": torch.from_numpy(arrays["lengths_val"])}
    else:
        net, trim = spec.build.factory(params, n_classes, 32), False
        train = {"images": torch.from_numpy(arrays["x"]).permute(0, 3, 1, 2).contiguous()}
        val = {"images": torch.from_numpy(arrays["x_val"]).permute(0, 3, 1, 2).contiguous()}
    train["y"] = torch.from_numpy(arrays["y"]).long()
    y_val = torch.from_numpy(arrays["y_val"]).long()
    optimizer = adam(net.parameters(), 1e-3)
    batches = TensorBatches(train, params.train.batch_size, shuffle=True, seed=0, trim=trim)
    accuracies = []
    for _ in range(epochs):
        net.train()
        for batch in batches:
            y = batch.pop("y")
            loss = torch.nn.functional.cross_entropy(net(**batch).float(), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            predicted = torch.cat([net(**batch).argmax(1) for batch in
                                   TensorBatches(val, 1000, shuffle=False, trim=trim)])
        accuracies.append(float((predicted == y_val).float().mean()))
    return accuracies


def keras_accuracy(python: str, name: str, data: Path, epochs: int, threads: int) -> list[float]:
    return keras(python, "accuracy", name, data, "--epochs", str(epochs), "--threads", str(threads),
                 timeout=7200)["val_accuracy"]


def compare_accuracy(args, models: list[str]) -> None:
    frame, source = train_throughput.lyrics_frame()
    print(f"# validation accuracy after each of {args.accuracy} epochs, the study's recipe; lyrics: {source}; "
          f"torch {torch.__version__}, {args.threads} threads", flush=True)
    rows, splits = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            study = "lyrics" if name in LYRICS else "images"
            path = Path(tmp) / f"{study}.npz"
            if study not in splits:  # made and written once per study, shared by its models
                splits[study] = accuracy_split(study, frame)
                np.savez(path, **{k: v for k, v in splits[study].items() if not k.startswith("lengths")})
            arrays = splits[study]
            ours = studybench_accuracy(name, arrays, args.accuracy)
            theirs = keras_accuracy(args.keras_python, name, path, args.accuracy, args.threads)
            print(f"{name}: studybench {[round(a, 3) for a in ours]}, keras {[round(a, 3) for a in theirs]}",
                  flush=True)
            rows.append((name, len(arrays["y"]), len(arrays["y_val"]), ours, theirs))
    print(f"| model | train / val | studybench val accuracy (epoch {args.accuracy}; best) "
          f"| Keras val accuracy (epoch {args.accuracy}; best) |")
    print("|---|---:|---:|---:|")
    for name, n, m, ours, theirs in rows:
        print(f"| {name} | {n:,} / {m:,} | {ours[-1]:.3f}; {max(ours):.3f} | {theirs[-1]:.3f}; {max(theirs):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keras-python", required=True, help="python of the environment with TensorFlow")
    parser.add_argument("--models", default=",".join(LYRICS + IMAGES))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--accuracy", type=int, default=0, metavar="EPOCHS",
                        help="compare validation accuracy after EPOCHS epochs instead of speed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as studybench's engine does
    if args.accuracy:
        models = args.models.split(",") if "--models" in sys.argv else list(ACCURACY)
        compare_accuracy(args, models)
        return
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
