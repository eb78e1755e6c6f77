"""The report's figures, drawn with matplotlib (Agg) and returned as PNG bytes.

Every figure has a title, labelled axes with units and a legend where there is more
than one series; colours come from the Okabe-Ito palette, which stays distinct for
the common kinds of colour blindness. Long labels sit on the y axis of horizontal
bars, so they never overlap.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

# Okabe & Ito (2008): distinguishable with deuteranopia, protanopia and tritanopia.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 10,
                         "axes.spines.top": False, "axes.spines.right": False,
                         "axes.prop_cycle": matplotlib.cycler(color=PALETTE)})
    return plt


def _png(fig) -> bytes:
    plt = _plt()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def bars(labels: list[str], means: list[float], stds: list[float], title: str, xlabel: str,
         groups: list[str] | None = None, reference: tuple[str, float] | None = None) -> bytes:
    """Horizontal bars with error bars (± std over seeds), coloured by ``groups``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.32 * len(labels)))
    y = np.arange(len(labels))[::-1]
    names = list(dict.fromkeys(groups)) if groups else [None]
    colours = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(names)}
    ax.barh(y, means, xerr=stds, color=[colours[g] for g in (groups or [None] * len(labels))],
            capsize=3, error_kw={"elinewidth": 1})
    ax.set_yticks(y, labels)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.set_xlim(0, max(1.0 if max(means, default=0) > 0.5 else 0.6, max(means, default=0) * 1.1))
    if reference:
        ax.axvline(reference[1], color="#555555", linestyle="--", linewidth=1, label=reference[0])
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[g]) for g in names if g]
    if handles or reference:
        extra = ax.get_legend_handles_labels()
        ax.legend(handles + extra[0], [g for g in names if g] + extra[1], loc="lower right", fontsize=8)
    return _png(fig)


def heatmap(matrix: pd.DataFrame, title: str, colorbar: str, fmt: str = "{:.2f}") -> bytes:
    """Rows x columns of values in [0, 1], each cell annotated."""
    plt = _plt()
    rows, cols = matrix.shape
    fig, ax = plt.subplots(figsize=(max(7.0, 3.4 + 0.75 * cols), 1.4 + 0.38 * rows))
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(cols), matrix.columns, rotation=35, ha="right")
    ax.set_yticks(range(rows), matrix.index)
    for i in range(rows):
        for j in range(cols):
            value = matrix.iat[i, j]
            if value == value:
                ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=8,
                        color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=ax, label=colorbar, fraction=0.05)
    ax.set_title(title)
    ax.spines[:].set_visible(False)
    return _png(fig)


def confusion(matrix: list[list[int]], classes: list[str], title: str) -> bytes:
    """A confusion matrix normalised per true class (rows sum to 1)."""
    counts = np.asarray(matrix, dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    frame = pd.DataFrame(share, index=[f"true {c}" for c in classes], columns=[f"pred. {c}" for c in classes])
    return heatmap(frame, title, "share of the true class's test items")


def learning_curves(histories: dict[str, pd.DataFrame], title: str, metric: str | None = None) -> bytes:
    """Loss and ``metric`` (default: accuracy, or PSNR for a reconstruction) per epoch, train
    (dashed) and validation (solid), one colour per run."""
    plt = _plt()
    if metric is None:
        metric = "accuracy" if any("val_accuracy" in h for h in histories.values()) else "psnr"
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (name, h) in enumerate(histories.items()):
        colour = PALETTE[i % len(PALETTE)]
        for ax, key in ((left, "loss"), (right, metric)):
            if f"val_{key}" in h:
                ax.plot(h["epoch"], h[f"val_{key}"], color=colour, label=f"{name} (validation)")
            if f"train_{key}" in h:
                ax.plot(h["epoch"], h[f"train_{key}"], color=colour, linestyle="--", alpha=0.8,
                        label=f"{name} (train)")
    left.set(xlabel="epoch", ylabel="loss (cross-entropy)" if metric != "psnr" else "loss (MSE)",
             title="loss per epoch")
    right.set(xlabel="epoch", ylabel=metric.replace("_", " ") + (" (dB)" if metric == "psnr" else ""),
              title=f"{metric.replace('_', ' ')} per epoch")
    right.legend(fontsize=7, loc="best")
    fig.suptitle(title)
    return _png(fig)


def lines_with_bands(frame: pd.DataFrame, x: str, y: str, std: str, series: str, title: str,
                     xlabel: str, ylabel: str) -> bytes:
    """One line per ``series`` value with a ±std band (the transfer chart)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    markers = "osD^vP*X"
    for i, (name, part) in enumerate(frame.groupby(series, sort=False)):
        part = part.sort_values(x)
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(part[x], part[y], marker=markers[i % len(markers)], color=colour, label=name)
        ax.fill_between(part[x], part[y] - part[std], part[y] + part[std], color=colour, alpha=0.15)
    ax.set_xscale("log")
    ticks = sorted(frame[x].unique())
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    # beside the axes, not on them: the lines fill the plot from corner to corner
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)
