"""The ``studybench`` command: thin wrappers over public Python functions.

Every input problem is reported on one line (``error: …``) with exit code 2 and
no traceback; a traceback means a bug in studybench.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from studybench.errors import StudybenchError

app = typer.Typer(
    help="Honest, reproducible comparisons of the model families of a two-part deep-learning study.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
run_app = typer.Typer(help="Train and test every model x feature set x seed of a study.",
                      no_args_is_help=True)
app.add_typer(run_app, name="run")

# Pipes and files get a width that fits the tables; a terminal keeps its own.
out_console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)


@contextmanager
def _user_errors():
    """Turn input problems into one line on stderr and exit code 2."""
    try:
        yield
    except StudybenchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: finished runs are kept; rerun the same command to continue")
        raise typer.Exit(130) from None


def _overrides(sets: list[str], config: Optional[Path]) -> dict:
    from studybench.config import load_yaml_overrides, parse_assignments

    merged = load_yaml_overrides(config) if config else {}
    merged.update(parse_assignments(sets))
    return merged


def _log(message: str) -> None:
    err_console.print(message, highlight=False, soft_wrap=True)


@contextmanager
def _progress():
    """A progress bar over runs, shown from the first run on (not for input errors)."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err_console)
    task = None

    def update(run_id: str, done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("runs", total=total)
        bar.update(task, completed=done, total=total, description=run_id or "done")

    try:
        yield update
    finally:
        if task is not None:  # never started: print nothing, not even a blank line
            bar.stop()


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
        cells += [str(row.seeds), f"{row.accuracy_mean:.3f} ± {row.accuracy_std:.3f}",
                  f"{row.macro_f1_mean:.3f} ± {row.macro_f1_std:.3f}", f"{row.fit_seconds:.1f}",
                  _count(row.n_params)]
        view.add_row(*cells)
    out_console.print(view)


def _count(n) -> str:
    """12345 -> 12.3k; missing -> empty."""
    if n != n or n is None:
        return ""
    n = float(n)
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else f"{n:.0f}"


# Options both `run` commands take.
PresetOption = Annotated[str, typer.Option(help="seed: the study's settings; tuned: the good default.")]
ConfigOption = Annotated[Optional[Path], typer.Option(help="YAML file of settings to override (before --set).")]
MlflowOption = Annotated[bool, typer.Option(
    "--mlflow", help="Also log every run to MLflow, in a SQLite store inside --out "
                     "(see it with: mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db).")]
MlflowUriOption = Annotated[Optional[str], typer.Option(help="Log to this MLflow tracking URI instead (implies --mlflow).")]


def _tracker(enabled: bool, uri: Optional[str], out: Path, experiment: str):
    if not enabled and uri is None:
        return None  # MLflow is not even imported
    from studybench.tracking import MlflowTracker

    return MlflowTracker(uri, out, experiment)


@run_app.command("lyrics")
def run_lyrics_command(
    data: Annotated[Path, typer.Option(help="Labelled lyrics CSV (Kaggle train/test, tcc_ceds, mlgc, or mapped with --set data.columns.*).")],
    test_data: Annotated[Optional[Path], typer.Option(help="Separate labelled test file; implies --split file.")] = None,
    models: Annotated[Optional[str], typer.Option(help="Comma-separated model names (default: every lyrics model; see `studybench list`).")] = None,
    features: Annotated[str, typer.Option(help="Comma-separated feature sets: lyrics, lyrics+artist.")] = "lyrics,lyrics+artist",
    split: Annotated[Optional[str], typer.Option(help="random (song level, artists leak), artist (no artist in two parts) or file (test = --test-data).")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds; each changes the split and the model's randomness.")] = "0,1,2",
    preset: PresetOption = "tuned",
    set_: Annotated[list[str], typer.Option("--set", help="Override a setting, e.g. split.test_size=0.25 or model.C=2 (repeatable).")] = [],
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Output folder: one folder per run plus results.csv. Finished runs are reused.")] = Path("runs/lyrics"),
    mlflow: MlflowOption = False,
    mlflow_uri: MlflowUriOption = None,
) -> None:
    """Train and test every (model x features x seed) on lyrics; print test accuracy and macro-F1."""
    from studybench.studies.lyrics import run_lyrics

    with _user_errors(), _progress() as progress:
        table = run_lyrics(data, test_data, models, features, split, seeds, preset,
                           _overrides(set_, config), out, progress, log=_log,
                           tracker=_tracker(mlflow, mlflow_uri, out, "studybench-lyrics"))
    _print_lyrics(table, out)
    _write_report(out)


def _write_report(out: Path) -> None:
    """The HTML and Markdown report of everything in ``out`` (rebuilt from the run folders)."""
    from studybench.reporting.report import build_report

    with _user_errors():
        page = build_report(out)
    out_console.print(f"report: {page} (and report.md)")


def _print_lyrics(table, out: Path) -> None:
    split, preset = (", ".join(table[k].unique()) for k in ("split", "preset"))
    print_table(table, f"Lyrics → genre: test metrics, mean ± std over seeds "
                       f"(split: {split}; preset: {preset})")
    _print_split_comparison(table, out)
    out_console.print(f"runs and results.csv in {out}")


def _print_split_comparison(table, out: Path) -> None:
    """Where ``out`` also holds these models under another split, show macro-F1 side by side."""
    import pandas as pd

    from studybench.studies.results import collect_results, summarize

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


@run_app.command("images")
def run_images_command(
    data: Annotated[Optional[Path], typer.Option(help="CIFAR-10/100 folder (official python pickles) or a folder of images per class. Left out: CIFAR is downloaded into the cache.")] = None,
    dataset: Annotated[str, typer.Option(help="auto (from the folder), cifar10, cifar100 or folder.")] = "auto",
    models: Annotated[Optional[str], typer.Option(help="Comma-separated block-1 models (default: all; see `studybench list`).")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds; each changes the validation split, the fractions and the initialisation.")] = "0,1,2",
    preset: PresetOption = "tuned",
    set_: Annotated[list[str], typer.Option("--set", help="Override a setting, e.g. data.blocks=2, data.train_fraction=0.1, transfer.fractions=0.1,1.0, transfer.arms=scratch,cnn_finetune, train.epochs=5 (repeatable).")] = [],
    config: ConfigOption = None,
    cache: Annotated[Optional[Path], typer.Option(help="Download cache (default $STUDYBENCH_CACHE or ~/.cache/studybench).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder: one folder per run plus results.csv. Finished runs are reused.")] = Path("runs/images"),
    mlflow: MlflowOption = False,
    mlflow_uri: MlflowUriOption = None,
) -> None:
    """Train block-1 models on the first class block, then every transfer arm at every
    training fraction on the second; print block-1 test metrics and the transfer table."""
    from studybench.studies.images import run_images

    with _user_errors(), _progress() as progress:
        block1, transfer = run_images(data, dataset, models, seeds, preset, _overrides(set_, config),
                                      out, cache, progress, log=_log,
                                      tracker=_tracker(mlflow, mlflow_uri, out, "studybench-images"))
    print_image_tables(block1, transfer)
    out_console.print(f"runs and results.csv in {out}")
    _write_report(out)


def _mean_std(mean, std, digits: int = 3) -> str:
    return "" if mean != mean else f"{mean:.{digits}f} ± {std:.{digits}f}"


def print_image_tables(block1, transfer) -> None:
    """Block-1 test metrics per model; block-2 test accuracy per arm x training fraction."""
    view = Table(title="Block 1: test metrics, mean ± std over seeds (reconstruction for the autoencoder)",
                 title_justify="left")
    for name in ("model", "seeds", "accuracy", "macro-F1", "recon. MSE", "PSNR dB", "fit s", "params"):
        view.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
    for row in block1.itertuples():
        view.add_row(row.model, str(row.seeds), _mean_std(row.accuracy_mean, row.accuracy_std),
                     _mean_std(row.macro_f1_mean, row.macro_f1_std), _mean_std(row.mse_mean, row.mse_std, 4),
                     "" if row.psnr_mean != row.psnr_mean else f"{row.psnr_mean:.1f}",
                     f"{row.fit_seconds:.0f}", _count(row.n_params))
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
        cells = {r.fraction: _mean_std(r.accuracy_mean, r.accuracy_std) for r in rows.itertuples()}
        view.add_row(arm, *(cells.get(f, "") for f in fractions), _count(rows["n_trainable"].max()))
    out_console.print(view)
    scratch = transfer[transfer.arm == "scratch"].set_index("fraction")["accuracy_mean"]
    tuned = transfer[transfer.arm == "cnn_finetune"].set_index("fraction")["accuracy_mean"]
    gains = [f"{f:g}: {100 * (tuned[f] - scratch[f]):+.1f} points" for f in fractions
             if f in scratch.index and f in tuned.index]
    if gains:
        out_console.print("Fine-tuned transfer (cnn_finetune) against scratch, test accuracy: " + "; ".join(gains))


@app.command()
def report(
    runs_dir: Annotated[Path, typer.Argument(help="A study's --out folder (or a folder holding several).")],
    out: Annotated[Optional[Path], typer.Option(help="Where report.html, report.md and figures/ go (default: RUNS_DIR).")] = None,
    readme: Annotated[Optional[Path], typer.Option(help="Also rewrite this README's results section (between <!-- results:start --> and <!-- results:end -->) from the runs.")] = None,
) -> None:
    """Build report.html (figures embedded) and report.md from run folders, without retraining."""
    from studybench.reporting.report import build_report, update_readme

    with _user_errors():
        page = build_report(runs_dir, out)
        if readme is not None:
            update_readme(readme, runs_dir)
    out_console.print(f"report: {page} (and report.md)" + (f"; results section of {readme} rewritten" if readme else ""))


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (OUT/runs/<run id>).")],
    data: Annotated[Path, typer.Option(help="Labelled lyrics CSV in any supported schema.")],
    set_: Annotated[list[str], typer.Option("--set", help="Override how the file is read, e.g. data.columns.text=body.")] = [],
) -> None:
    """Score a saved run's model on another labelled file; print the metrics as JSON."""
    from studybench.studies.lyrics import evaluate_run

    with _user_errors():
        result = evaluate_run(run_dir, data, _overrides(set_, None))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (OUT/runs/<run id>).")],
    out: Annotated[Path, typer.Option(help="New folder for the bundle.")],
) -> None:
    """Export a run's model as a self-contained bundle (weights, preprocessing, classes, model card)."""
    from studybench.bundles import export_bundle

    with _user_errors():
        folder = export_bundle(run_dir, out)
    out_console.print(f"bundle: {folder} (model card: {folder / 'README.md'})")


@app.command("predict")
def predict_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder made by `studybench export`.")],
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Lyrics: text files (one song each), CSV files (one song per row) or - for stdin. Images: image files or folders.")] = None,
    top_k: Annotated[int, typer.Option(help="How many classes to show per input.")] = 3,
    output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    text_column: Annotated[Optional[str], typer.Option(help="CSV column with the lyrics (default: lyrics/lyric/text).")] = None,
    artist_column: Annotated[Optional[str], typer.Option(help="CSV column with the artist (default: artist/artist_name, if present).")] = None,
    artist: Annotated[Optional[str], typer.Option(help="The artist of every song read from text files or stdin.")] = None,
    batch_size: Annotated[int, typer.Option(help="Inputs scored at once.")] = 256,
) -> None:
    """Predict with a bundle: the top classes and their probabilities for each input."""
    from studybench.bundles import load_bundle
    from studybench.predict import predict

    if output not in ("table", "json", "csv"):
        err_console.print(f"[bold red]error:[/] --format {output}: expected table, json or csv")
        raise typer.Exit(2)
    with _user_errors():
        loaded = load_bundle(bundle)
        bar = Progress(TextColumn("[bold]predicting"), BarColumn(), MofNCompleteColumn(), console=err_console,
                       transient=True, disable=not err_console.is_terminal)
        with bar:
            task = bar.add_task("predict", total=None)
            names, results, kind = predict(loaded, list(inputs or []), top_k, batch_size, text_column,
                                           artist_column, artist,
                                           progress=lambda done, total: bar.update(task, completed=done, total=total))
    if output == "json":
        json.dump([{"input": n, "predictions": [{"class": c, kind: round(p, 6)} for c, p in r]}
                   for n, r in zip(names, results)], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif output == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        k = len(results[0]) if results else 0
        writer.writerow(["input"] + [f"{col}_{i + 1}" for i in range(k) for col in ("class", kind)])
        for name, row in zip(names, results):
            writer.writerow([name] + [v for c, p in row for v in (c, f"{p:.6f}")])
    else:
        view = Table(title=f"{loaded.meta['model']} ({loaded.meta['features']}): top {top_k} "
                           f"{'probabilities' if kind == 'probability' else 'scores'}", title_justify="left")
        view.add_column("input")
        for i in range(len(results[0]) if results else 0):
            view.add_column(f"#{i + 1}")
        for name, row in zip(names, results):
            view.add_row(name, *(f"{c} {p:.3f}" for c, p in row))
        out_console.print(view)


@app.command()
def serve(
    bundles: Annotated[list[Path], typer.Argument(help="One or more bundle folders (`studybench export`).")],
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve bundles over HTTP: a web page at /, JSON endpoints, and the OpenAPI schema at /docs."""
    from studybench.serve import create_app

    with _user_errors():
        app_ = create_app(bundles)
    import uvicorn

    out_console.print(f"studybench serving {len(bundles)} model(s) at http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(app_, host=host, port=port, log_level="warning")


# The classical models and the fastest neural one keep the demo under 2 minutes on 2 cores.
DEMO_MODELS = "majority,tfidf_logreg,tfidf_linear_svm,decision_tree,embedding_bag"
# The image half: every image model and transfer arm, small networks, a short budget.
DEMO_IMAGE_SETTINGS = {"model.widths": "8,16,32", "train.epochs": 6, "train.batch_size": 64,
                       "transfer.fractions": "0.25,1.0"}


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder for the demo's runs.")] = Path("runs/demo"),
) -> None:
    """Run both studies on built-in synthetic demo data (about 2 minutes on 2 cores)."""
    from studybench.data.demo import demo_lyrics_path
    from studybench.data.demo_images import demo_images
    from studybench.studies.images import run_images
    from studybench.studies.lyrics import run_lyrics

    with _user_errors():
        for split in ("artist", "random"):
            with _progress() as progress:
                table = run_lyrics(demo_lyrics_path(), models=DEMO_MODELS, split=split, seeds="0,1,2",
                                   preset="tuned",
                                   out=out / "lyrics", progress=progress, log=_log)
            _print_lyrics(table, out / "lyrics")
        out_console.print("The demo corpus is synthetic (see studybench.data.demo): compare the "
                          "artist split with the random one to see how much artist leakage inflates.")
        with _progress() as progress:
            block1, transfer = run_images(demo_images(n_train=120, n_test=40), seeds="0,1", preset="tuned",
                                          overrides=DEMO_IMAGE_SETTINGS, out=out / "images",
                                          progress=progress, log=_log)
        print_image_tables(block1, transfer)
    out_console.print("The demo images are synthetic patterns (see studybench.data.demo_images); "
                      f"runs and results.csv in {out}")
    _write_report(out)


@app.command("list")
def list_command(
    params: Annotated[bool, typer.Option("--params", help="Also show every model's parameters per preset.")] = False,
) -> None:
    """Show the studies, model names, presets, feature sets and input schemas."""
    import dataclasses

    from studybench import registry
    from studybench.data.lyrics import SCHEMAS

    view = Table(title="Models (studybench run <study> --models a,b)", title_justify="left")
    for column in ("study", "name", "family", "presets", "what it is"):
        view.add_column(column)
    for name in registry.names():
        spec = registry.get(name)
        view.add_row(spec.study, name, spec.family, ", ".join(spec.presets), spec.summary)
    out_console.print(view)
    if params:
        for name in registry.names():
            spec = registry.get(name)
            for preset in spec.presets:
                values = dataclasses.asdict(spec.resolve(preset))
                shown = ", ".join(f"{k}={v}" for k, v in values.items()) or "(none)"
                out_console.print(f"[bold]{name}[/] \\[{preset}] {escape(shown)}", highlight=False)
    out_console.print("Feature sets (lyrics): lyrics, lyrics+artist")
    out_console.print("Splits: random, artist, file     Presets: seed (the study), tuned (default)")
    schemas = Table(title="Lyrics file schemas (detected from the header)", title_justify="left")
    schemas.add_column("schema")
    schemas.add_column("columns")
    schemas.add_column("what")
    for schema in SCHEMAS.values():
        schemas.add_row(schema.name, ", ".join(schema.required), schema.description)
    out_console.print(schemas)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
