"""How studybench looks in a terminal: one-line errors, progress bars over runs, and the
result tables of both studies (rich). The commands themselves are in :mod:`studybench.cli`."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from studybench.errors import Interrupted, StudybenchError
from studybench.results import gain_points, mean_std

# Pipes and files get a width that fits the tables; a terminal keeps its own.
out_console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)


@contextmanager
def user_errors():
    """Turn input problems into one line on stderr and exit code 2."""
    try:
        yield
    except StudybenchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except Interrupted as exc:
        err_console.print(exc.message(), highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted (SIGINT): finished runs are kept; rerun the same command to resume")
        raise typer.Exit(130) from None


def log(message: str) -> None:
    """A message for the user on stderr (stdout keeps the tables)."""
    err_console.print(message, highlight=False, soft_wrap=True)


@contextmanager
def run_progress():
    """One display for a grid, shown from its first run on (not for input errors): runs done
    of the total, failed, elapsed and an estimate of the rest, and a line per running run
    with its epoch and validation metric, whichever process or machine runs it."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=err_console)
    grid = None
    rows: dict[str, object] = {}

    def update(event, status) -> None:
        nonlocal grid
        if grid is None:
            if event.kind == "planned" and status.done == status.total:
                return  # nothing to do: no bar at all
            bar.start()
            grid = bar.add_task("runs", total=status.total, note="")
        eta = status.remaining_seconds()
        note = "  ".join(filter(None, (
            f"{len(status.running)} running" if status.running else "",
            f"[red]{len(status.failed)} failed[/]" if status.failed else "",
            f"~{_duration(eta)} left" if eta is not None and status.done < status.total else "")))
        bar.update(grid, completed=status.done, total=status.total, note=note,
                   description="runs" if status.done < status.total else "done")
        for run_id in [r for r in rows if r not in status.running]:
            bar.remove_task(rows.pop(run_id))
        for run_id, running in status.running.items():
            if run_id not in rows:
                rows[run_id] = bar.add_task(f"  {run_id}", total=None, note="")
            bar.update(rows[run_id], completed=running.epoch, total=running.max_epochs or None,
                       note=" · ".join(filter(None, (running.stage, running.text))) if running.epoch else "")

    try:
        yield update
    finally:
        if grid is not None:  # never started: print nothing, not even a blank line
            bar.stop()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def print_table(table, title: str) -> None:
    """Print a summary table (test mean ± std over seeds) as the user sees it."""
    view = Table(title=title, title_justify="left")
    view.add_column("model", no_wrap=True)
    view.add_column("features", no_wrap=True)
    for name in ("preset", "split"):
        if table[name].nunique() > 1:
            view.add_column(name, no_wrap=True)
    for name in ("seeds", "accuracy", "macro-F1", "fit s", "params"):
        view.add_column(name, justify="right", no_wrap=True)
    for row in table.itertuples():
        cells = [row.model, row.features]
        cells += [getattr(row, n) for n in ("preset", "split") if table[n].nunique() > 1]
        cells += [str(row.seeds), mean_std(row.accuracy_mean, row.accuracy_std, seeds=row.seeds),
                  mean_std(row.macro_f1_mean, row.macro_f1_std, seeds=row.seeds), f"{row.fit_seconds:.1f}",
                  count(row.n_params)]
        view.add_row(*cells)
    out_console.print(view)


def count(n) -> str:
    """12345 -> 12.3k; missing -> empty."""
    if n != n or n is None:
        return ""
    n = float(n)
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else f"{n:.0f}"


def print_lyrics(table, out: Path) -> None:
    split, preset = (", ".join(table[k].unique()) for k in ("split", "preset"))
    print_table(table, f"Lyrics → genre: test metrics, mean ± std over seeds "
                       f"(split: {split}; preset: {preset})")
    print_split_comparison(table, out)
    out_console.print(f"runs and results.csv in {out}")


def print_split_comparison(table, out: Path) -> None:
    """Where ``out`` also holds these models under another split, show macro-F1 side by side."""
    import pandas as pd

    from studybench.results import summarize
    from studybench.runfolder import collect_results

    everything = summarize(collect_results(out))
    keys = ["model", "features", "preset", "data"]
    mine = table[keys].drop_duplicates()
    others = everything.merge(mine, on=keys)
    if others["split"].nunique() < 2:
        return
    wide = others.pivot_table(index=keys, columns="split", values="macro_f1_mean")
    wide = wide.reindex(pd.MultiIndex.from_frame(mine))
    keys = keys[:3]
    wide.index = wide.index.droplevel("data")
    view = Table(title="Test macro-F1 by split, same models (from every run in this --out)",
                 title_justify="left")
    for name in keys:
        view.add_column(name, no_wrap=True)
    for split in wide.columns:
        view.add_column(split, justify="right")
    for index, row in wide.iterrows():
        view.add_row(*index, *("" if v != v else f"{v:.3f}" for v in row))
    out_console.print(view)


def print_image_tables(block1, transfer) -> None:
    """Block-1 test metrics per model; block-2 test accuracy per arm x training fraction."""
    view = Table(title="Block 1: test metrics, mean ± std over seeds (reconstruction for the autoencoder)",
                 title_justify="left")
    for name in ("model", "seeds", "accuracy", "macro-F1", "recon. MSE", "PSNR dB", "fit s", "params"):
        view.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
    for row in block1.itertuples():
        view.add_row(row.model, str(row.seeds), mean_std(row.accuracy_mean, row.accuracy_std, seeds=row.seeds),
                     mean_std(row.macro_f1_mean, row.macro_f1_std, seeds=row.seeds),
                     mean_std(row.mse_mean, row.mse_std, 4, seeds=row.seeds),
                     "" if row.psnr_mean != row.psnr_mean else f"{row.psnr_mean:.1f}",
                     f"{row.fit_seconds:.0f}", count(row.n_params))
    out_console.print(view)
    if transfer.empty:
        return
    fractions = sorted(transfer["fraction"].unique())
    view = Table(title="Block 2 transfer: test accuracy, mean ± std over seeds, by share of "
                       "block-2 training images", title_justify="left")
    view.add_column("arm", no_wrap=True)
    for f in fractions:
        view.add_column(f"{f:g} ({int(transfer.loc[transfer.fraction == f, 'n_train'].max()):,} img)",
                        justify="right", no_wrap=True)
    view.add_column("trainable", justify="right")
    for arm, rows in transfer.groupby("arm", sort=False):
        cells = {r.fraction: mean_std(r.accuracy_mean, r.accuracy_std, seeds=r.seeds) for r in rows.itertuples()}
        view.add_row(arm, *(cells.get(f, "") for f in fractions), count(rows["n_trainable"].max()))
    out_console.print(view)
    for preset, rows in transfer[(transfer.arm == "cnn_finetune") & transfer.gain_mean.notna()].groupby(
            "preset", sort=False):
        gains = [f"{r.fraction:g}: {gain_points(r)} points "
                 f"({r.gain_seeds:.0f} seed{'s' if r.gain_seeds != 1 else ''})"
                 for r in rows.sort_values("fraction").itertuples()]
        prefix = f" ({preset} preset)" if transfer.preset.nunique() > 1 else ""
        out_console.print(f"Fine-tuned transfer (cnn_finetune) against scratch{prefix}, test accuracy "
                          "paired by seed: " + "; ".join(gains))
