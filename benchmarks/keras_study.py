"""The study's own framework: every seed-preset neural architecture of both studies in Keras 3
on TensorFlow, layer for layer as studybench's ``seed`` preset builds it (sizes, activations,
batch normalisation, dropout, Adam at 1e-3, the study's batch sizes). Run by
``benchmarks/keras_compare.py`` in a separate environment (``benchmarks/requirements-keras.txt``);
never imported by studybench or its tests.

    python benchmarks/keras_study.py speed MODEL DATA.npz --steps 20 --threads 2
    python benchmarks/keras_study.py accuracy MODEL DATA.npz --epochs 3 --threads 2

``DATA.npz`` holds ``x`` (token ids [N, 300] int32, or images [N, 32, 32, 3] uint8), ``y`` (class
ids), and for ``accuracy`` also ``x_val`` / ``y_val``; it prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

LYRICS = ("rnn", "lstm", "lstm_stacked", "embedding_bag", "pretrained_embedding", "cnn_same_kernel",
          "cnn_multi_kernel", "cnn_lstm", "cnn_flat_lstm")
IMAGES = ("cnn_basic", "cnn_tanh", "cnn_sigmoid_out", "cnn_skip", "conv_autoencoder")
BATCH = {"embedding_bag": 32, "pretrained_embedding": 32, **{m: 32 for m in IMAGES}}  # else 1000 (the study's)


def batch_size(name: str) -> int:
    return BATCH.get(name, 1000)


def _conv_stack(x, kernels, layers):
    """studybench's ConvStack: [Conv1D(30, k) -> BN -> ReLU -> MaxPool 2 -> Dropout 0.2] per kernel."""
    for k in kernels:
        x = layers.Conv1D(30, k)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling1D(2)(x)
        x = layers.Dropout(0.2)(x)
    return x


def build(name: str, n_classes: int, vocab: int = 20000, max_len: int = 300):
    import keras
    from keras import layers

    if name in LYRICS:
        ids = keras.Input((max_len,), dtype="int32")
        dim = 50 if name == "pretrained_embedding" else 100
        x = layers.Embedding(vocab, dim, trainable=name != "pretrained_embedding")(ids)
        if name == "rnn":  # SimpleRNN(10) -> BN -> Dropout 0.2
            x = layers.Dropout(0.2)(layers.BatchNormalization()(layers.SimpleRNN(10)(x)))
        elif name == "lstm":  # LSTM(10, every step) -> Flatten -> BN -> Dropout 0.2
            x = layers.LSTM(10, return_sequences=True)(x)
            x = layers.Dropout(0.2)(layers.BatchNormalization()(layers.Flatten()(x)))
        elif name == "lstm_stacked":  # LSTM(10, sequences) -> BN -> Dropout 0.2 -> LSTM(10)
            x = layers.Dropout(0.2)(layers.BatchNormalization()(layers.LSTM(10, return_sequences=True)(x)))
            x = layers.LSTM(10)(x)
        elif name in ("embedding_bag", "pretrained_embedding"):  # mean -> Dropout -> Dense 64 relu -> Dropout
            x = layers.GlobalAveragePooling1D()(x)
            x = layers.Dropout(0.2)(layers.Dense(64, activation="relu")(layers.Dropout(0.2)(x)))
        elif name in ("cnn_same_kernel", "cnn_multi_kernel"):  # stack -> Flatten -> Dense 50 relu
            x = _conv_stack(x, (3, 3, 3) if name == "cnn_same_kernel" else (3, 4, 5), layers)
            x = layers.Dense(50, activation="relu")(layers.Flatten()(x))
        elif name == "cnn_lstm":  # stack -> LSTM(10) -> BN -> Dropout 0.2
            x = layers.LSTM(10)(_conv_stack(x, (3, 3, 3), layers))
            x = layers.Dropout(0.2)(layers.BatchNormalization()(x))
        else:  # cnn_flat_lstm: stack -> Flatten -> a sequence of scalars -> LSTM(10) -> BN -> Dropout
            x = layers.Flatten()(_conv_stack(x, (3, 3, 3), layers))
            x = layers.LSTM(10)(layers.Reshape((-1, 1))(x))
            x = layers.Dropout(0.2)(layers.BatchNormalization()(x))
        out = layers.Dense(n_classes)(x)
        model = keras.Model(ids, out)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    elif name == "conv_autoencoder":  # [Conv -> relu -> BN -> Pool] for 64, 32; the decoder as studybench's
        image = keras.Input((32, 32, 3))
        x = layers.Rescaling(1 / 255)(image)
        for width in (64, 32):
            x = layers.MaxPooling2D(2)(layers.BatchNormalization()(layers.Conv2D(width, 3, padding="same",
                                                                                 activation="relu")(x)))
        for width in (64, 64):  # studybench's mirror: [Conv -> relu -> BN -> Upsample 2] x 2, then Conv 3
            x = layers.UpSampling2D(2)(layers.BatchNormalization()(
                layers.Conv2D(width, 3, padding="same", activation="relu")(x)))
        out = layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x)
        model = keras.Model(image, out)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        return model
    else:  # the image CNNs: 3 x [Conv 3x3 valid -> BN -> MaxPool 2] -> Dense 512 -> Dense 256 (-> skip)
        act = "tanh" if name == "cnn_tanh" else "relu"
        image = keras.Input((32, 32, 3))
        x, blocks = image, []
        for width in (64, 128, 256):
            x = layers.MaxPooling2D(2)(layers.BatchNormalization()(layers.Conv2D(width, 3, activation=act)(x)))
            blocks.append(x)
        x = layers.Dropout(0.5)(layers.Dense(512, activation=act)(layers.Flatten()(x)))
        if name == "cnn_skip":  # Dense 512 joined with the flattened 2nd and 3rd conv blocks
            x = layers.Concatenate()([x, layers.Flatten()(blocks[1]), layers.Flatten()(blocks[2])])
        x = layers.Dropout(0.5)(layers.Dense(256, activation=act)(x))
        if name == "cnn_sigmoid_out":
            out = layers.Dense(n_classes, activation="sigmoid")(x)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=False)
        else:
            out = layers.Dense(n_classes)(x)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model = keras.Model(image, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["speed", "accuracy"])
    parser.add_argument("model", choices=LYRICS + IMAGES)
    parser.add_argument("data")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    keras.utils.set_random_seed(0)
    data = np.load(args.data)
    x, y = data["x"], data["y"]
    target = x if args.model == "conv_autoencoder" else y
    model = build(args.model, int(y.max()) + 1)
    size = batch_size(args.model)
    if args.mode == "speed":
        batches = [(x[i:i + size], target[i:i + size]) for i in range(0, len(x) - size + 1, size)]
        for b in range(3):  # warm-up: graph tracing, allocation
            model.train_on_batch(*batches[b % len(batches)])
        started = time.perf_counter()
        for step in range(args.steps):
            model.train_on_batch(*batches[step % len(batches)])
        seconds = time.perf_counter() - started
        print(json.dumps({"samples_per_s": args.steps * size / seconds, "params": model.count_params()}))
    else:
        y_val = data["x_val"] if args.model == "conv_autoencoder" else data["y_val"]
        history = model.fit(x, target, batch_size=size, epochs=args.epochs, verbose=0, shuffle=True,
                            validation_data=(data["x_val"], y_val))
        key = "val_loss" if args.model == "conv_autoencoder" else "val_accuracy"
        print(json.dumps({key: [float(v) for v in history.history[key]], "params": model.count_params()}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
