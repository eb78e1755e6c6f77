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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from studybench.console import (
    err_console,
    log,
    out_console,
    print_image_tables,
    print_lyrics,
    run_progress,
    user_errors,
)

app = typer.Typer(
    help="Honest, reproducible comparisons of the model families of a two-part deep-learning study.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
run_app = typer.Typer(help="Train and test every model x feature set x seed of a study.",
                      no_args_is_help=True)
app.add_typer(run_app, name="run")


def _overrides(sets: list[str], config: Optional[Path]) -> dict:
    from studybench.config import load_yaml_overrides, parse_assignments

    merged = load_yaml_overrides(config) if config else {}
    merged.update(parse_assignments(sets))
    return merged


# Options both `run` commands take.
PresetOption = Annotated[str, typer.Option(help="seed: the study's settings; tuned: the good default.")]
ConfigOption = Annotated[Optional[Path], typer.Option(help="YAML file of settings to override (before --set).")]
MlflowOption = Annotated[bool, typer.Option(
    "--mlflow", help="Also log every run to MLflow, in a SQLite store inside --out "
                     "(see it with: mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db).")]
MlflowUriOption = Annotated[Optional[str], typer.Option(help="Log to this MLflow tracking URI instead (implies --mlflow).")]


WorkersOption = Annotated[str, typer.Option(
    help="Runs at once on this machine, each in its own process: a number, or auto (one per core, "
         "one thread each, at most one per 3 GiB of memory; a single run left to do runs here on "
         "every core). 1: one at a time, in this process.")]
ThreadsOption = Annotated[Optional[int], typer.Option(
    help="Threads per run (torch, BLAS/OpenMP, scikit-learn n_jobs). Default: the cores divided "
         "among the workers; workers x threads may not exceed the cores.")]
RayOption = Annotated[Optional[str], typer.Option(
    help="Run on Ray instead: auto (join the Ray instance started on this machine with `ray start`, "
         "or start one), local (a fresh one) or a cluster address such as 10.0.0.5:6379. Workers need "
         "no shared disk: data and results travel through Ray, and only this command writes --out.")]
GpusOption = Annotated[Optional[float], typer.Option(
    help="With --workers: how many of this machine's GPUs to share among the workers (default: every "
         "GPU torch sees, handed out in turn). With --ray: the GPU share each run asks for (default 1 "
         "where the cluster has GPUs; 0.5 lets two runs share one).")]


@contextmanager
def _execution(workers: str, threads: Optional[int], ray: Optional[str], gpus: Optional[float]):
    """The run functions' executor keywords from the command line; an executor made here
    (Ray, or chosen GPUs) is closed when the command ends."""
    from studybench.errors import StudybenchError
    from studybench.pipeline.executors import check_execution, make_executor

    check_execution(workers, threads, ray)  # before any data is read
    if gpus is not None and not ray and gpus != int(gpus):
        raise StudybenchError(f"--gpus {gpus:g}: a share of a GPU needs --ray; local workers take whole GPUs")
    if not ray and gpus is None:
        yield {"workers": workers, "threads": threads}
        return
    executor = make_executor(workers, threads, ray, gpus=None if ray or gpus is None else int(gpus),
                             gpus_per_run=gpus if ray else None)
    try:
        yield {"executor": executor}
    finally:
        executor.close()


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
    features: Annotated[Optional[str], typer.Option(help="Comma-separated feature sets: lyrics, lyrics+artist (default: both where the file names artists, else lyrics).")] = None,
    split: Annotated[Optional[str], typer.Option(help="artist (no artist in two parts; the default when the file names artists), random (song level, artists leak: the study's; the default without artists) or file (test = --test-data; the default with it).")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds; each changes the split and the model's randomness.")] = "0,1,2",
    preset: PresetOption = "tuned",
    set_: Annotated[list[str], typer.Option("--set", help="Override a setting, e.g. split.test_size=0.25 or model.C=2 (repeatable).")] = [],
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Output folder: one folder per run plus results.csv. Finished runs are reused.")] = Path("runs/lyrics"),
    mlflow: MlflowOption = False,
    mlflow_uri: MlflowUriOption = None,
    workers: WorkersOption = "auto",
    threads: ThreadsOption = None,
    ray: RayOption = None,
    gpus: GpusOption = None,
) -> None:
    """Train and test every (model x features x seed) on lyrics; print test accuracy and macro-F1."""
    from studybench.studies.lyrics import run_lyrics

    with user_errors():
        with _execution(workers, threads, ray, gpus) as execution, run_progress() as progress, \
                _grid_failures() as failed:
            failed.result = run_lyrics(data, test_data, models, features, split, seeds, preset,
                                       _overrides(set_, config), out, progress, log=log,
                                       tracker=_tracker(mlflow, mlflow_uri, out, "studybench-lyrics"),
                                       **execution)
        print_lyrics(failed.result, out)
        _write_report(out)
        failed.reraise()


class _GridOutcome:
    """The tables of a grid and, when some runs failed, the error to end with (exit 1)."""

    result = None
    error = None

    def reraise(self) -> None:
        if self.error is not None:
            raise self.error


@contextmanager
def _grid_failures():
    """Runs that failed leave the others' tables to print and the report to write first."""
    from studybench.pipeline.driver import StudyFailed

    outcome = _GridOutcome()
    try:
        yield outcome
    except StudyFailed as exc:
        outcome.result, outcome.error = exc.result, exc


def _write_report(out: Path) -> None:
    """The HTML and Markdown report of everything in ``out`` (rebuilt from the run folders)."""
    from studybench.reporting.report import build_report

    with user_errors():
        page = build_report(out)
    out_console.print(f"report: {page} (and report.md)")


@run_app.command("images")
def run_images_command(
    data: Annotated[Optional[Path], typer.Option(help="CIFAR-10/100 folder (official python pickles) or a folder of images per class. Left out: CIFAR is downloaded into the cache.")] = None,
    dataset: Annotated[str, typer.Option(help="auto (from the folder), cifar10, cifar100 or folder.")] = "auto",
    models: Annotated[Optional[str], typer.Option(help="Comma-separated block-1 models (default: all; see `studybench list`).")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds; each changes the validation split, the fractions and the initialisation.")] = "0,1,2",
    draws: Annotated[Optional[str], typer.Option(help="Comma-separated class-block draws (values of data.block_seed: which classes go into each block), run as one grid; each draw is its own study, and the report pools the transfer gains over them. Default: data.block_seed (0).")] = None,
    preset: PresetOption = "tuned",
    set_: Annotated[list[str], typer.Option("--set", help="Override a setting, e.g. data.blocks=2, data.train_fraction=0.1, transfer.fractions=0.1,1.0, transfer.arms=scratch,cnn_finetune, train.epochs=5 (repeatable).")] = [],
    config: ConfigOption = None,
    cache: Annotated[Optional[Path], typer.Option(help="Download cache (default $STUDYBENCH_CACHE or ~/.cache/studybench).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder: one folder per run plus results.csv. Finished runs are reused.")] = Path("runs/images"),
    mlflow: MlflowOption = False,
    mlflow_uri: MlflowUriOption = None,
    workers: WorkersOption = "auto",
    threads: ThreadsOption = None,
    ray: RayOption = None,
    gpus: GpusOption = None,
) -> None:
    """Train block-1 models on the first class block, then every transfer arm at every
    training fraction on the second; print block-1 test metrics and the transfer table."""
    from studybench.studies.images import run_images

    with user_errors():
        with _execution(workers, threads, ray, gpus) as execution, run_progress() as progress, \
                _grid_failures() as failed:
            failed.result = run_images(data, dataset, models, seeds, preset, _overrides(set_, config),
                                       out, cache, progress, log=log,
                                       tracker=_tracker(mlflow, mlflow_uri, out, "studybench-images"),
                                       draws=draws, **execution)
        print_image_tables(*failed.result)
        out_console.print(f"runs and results.csv in {out}")
        _write_report(out)
        failed.reraise()


@app.command()
def tune(
    model: Annotated[str, typer.Argument(help="The lyrics model to tune (see `studybench list`; its search space with --params).")],
    data: Annotated[Path, typer.Option(help="Labelled lyrics CSV, as for `run lyrics`.")],
    features: Annotated[str, typer.Option(help="One feature set: lyrics or lyrics+artist.")] = "lyrics",
    split: Annotated[Optional[str], typer.Option(help="artist, random or file, as for `run lyrics` (default: artist where the file names artists).")] = None,
    test_data: Annotated[Optional[Path], typer.Option(help="Separate labelled test file (--split file); only reported, never used to choose.")] = None,
    seed: Annotated[int, typer.Option(help="The split's and the search's seed.")] = 0,
    trials: Annotated[int, typer.Option(help="Optuna trials (the preset is run as well, as the one to beat).")] = 30,
    preset: PresetOption = "tuned",
    set_: Annotated[list[str], typer.Option("--set", help="Fix a setting that is not searched (repeatable).")] = [],
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Output folder: a run folder per trial, trials.csv and best.yaml. Finished trials are reused.")] = Path("runs/tune"),
    no_prune: Annotated[bool, typer.Option("--no-prune", help="Never stop a neural trial early for being below the median of earlier ones.")] = False,
    workers: WorkersOption = "auto",
    threads: ThreadsOption = None,
    ray: RayOption = None,
) -> None:
    """Search MODEL's declared parameter space with Optuna (TPE, seeded) on validation macro-F1.

    Every trial is a run folder; the best parameters go to OUT/best.yaml, which
    `studybench run lyrics --config` accepts. The test score of each trial is shown, never used."""
    from studybench.studies.tune import tune_lyrics

    with user_errors():
        with _execution(workers, threads, ray, None) as execution, run_progress() as progress:
            result = tune_lyrics(data, model, features, split, seed, trials, preset, _overrides(set_, config), out,
                                 test_data, progress=progress, log=log, prune=not no_prune, **execution)
    table = Table("trial", "state", "val macro-F1", "test macro-F1", "epochs", "params",
                  title=f"{model}: trials by validation macro-F1", title_justify="left")
    ranked = result.trials.sort_values("val_macro_f1", ascending=False, na_position="last")
    for row in ranked.head(10).to_dict("records"):
        params = ", ".join(f"{k}={_short(row[k])}" for k in result.best if k in row and row[k] == row[k]) \
            or "(the preset's own)"
        table.add_row(str(row["trial"]), row["state"], _score(row.get("val_macro_f1")),
                      _score(row.get("test_macro_f1")), _score(row.get("epochs"), "{:.0f}"), escape(params))
    out_console.print(table)
    out_console.print(f"best validation macro-F1 {result.best_value:.4f} (preset {result.baseline_value:.4f}); "
                      f"all trials in {out / 'trials.csv'}; best parameters in {result.yaml}")


def _score(value, form: str = "{:.4f}") -> str:
    return "" if value is None or value != value else form.format(value)


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@app.command()
def report(
    runs_dir: Annotated[Path, typer.Argument(help="A study's --out folder (or a folder holding several).")],
    out: Annotated[Optional[Path], typer.Option(help="Where report.html, report.md and figures/ go (default: RUNS_DIR).")] = None,
    readme: Annotated[Optional[Path], typer.Option(help="Also rewrite this README's results section (between <!-- results:start --> and <!-- results:end -->) from the runs.")] = None,
    readme_section: Annotated[str, typer.Option(help="The README section to rewrite: NAME between <!-- NAME:start --> and <!-- NAME:end -->.")] = "results",
) -> None:
    """Build report.html (figures embedded) and report.md from run folders, without retraining."""
    from studybench.reporting.report import build_report, check_readme, update_readme

    with user_errors():
        if readme is not None:
            check_readme(readme, readme_section)  # before anything is written
        page = build_report(runs_dir, out)
        if readme is not None:
            update_readme(readme, runs_dir, readme_section)
    out_console.print(f"report: {page} (and report.md)" + (f"; results section of {readme} rewritten" if readme else ""))


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (OUT/runs/<run id>).")],
    data: Annotated[Path, typer.Option(help="Labelled lyrics CSV in any supported schema.")],
    set_: Annotated[list[str], typer.Option("--set", help="Override how the file is read, e.g. data.columns.text=body.")] = [],
) -> None:
    """Score a saved run's model on another labelled file; print the metrics as JSON."""
    from studybench.studies.lyrics import evaluate_run

    with user_errors():
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

    with user_errors():
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
    with user_errors():
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
    """Serve bundles over HTTP: a web page at /, JSON endpoints, and the OpenAPI schema at /docs.

    SIGTERM or Ctrl-C shuts the server down cleanly (requests in flight finish) and exits 0:
    stopping is how a server ends. Every other command exits 143 / 130 on those signals."""
    from studybench.serve import check_address, create_app

    with user_errors():
        check_address(host, port)
        app_ = create_app(bundles)
    import uvicorn

    from studybench.errors import Interrupted

    out_console.print(f"studybench serving {len(bundles)} model(s) at http://{host}:{port}/ (Ctrl-C stops)")
    try:
        uvicorn.run(app_, host=host, port=port, log_level="warning")
    except Interrupted as exc:  # uvicorn finished the requests in flight, then passed the signal on
        err_console.print(f"stopped by {exc.name}: the server shut down cleanly")
        raise typer.Exit(0) from None


# The classical models and the fastest neural one keep the demo under 2 minutes on 2 cores.
DEMO_MODELS = "majority,tfidf_logreg,tfidf_linear_svm,decision_tree,embedding_bag"
# The image half: every image model and transfer arm, small networks, a short budget.
DEMO_IMAGE_SETTINGS = {"model.widths": "8,16,32", "train.epochs": 6, "train.batch_size": 64,
                       "transfer.fractions": "0.25,1.0"}


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder for the demo's runs.")] = Path("runs/demo"),
    workers: WorkersOption = "auto",
    threads: ThreadsOption = None,
    ray: RayOption = None,
) -> None:
    """Run both studies on built-in synthetic demo data (about 90 seconds on 2 cores)."""
    from studybench.data.demo import demo_lyrics_path
    from studybench.data.demo_images import demo_images
    from studybench.records import check_out_folder
    from studybench.studies.images import run_images
    from studybench.studies.lyrics import run_lyrics

    with user_errors(), _execution(workers, threads, ray, None) as execution:
        check_out_folder(out)
        for split in ("artist", "random"):
            with run_progress() as progress:
                table = run_lyrics(demo_lyrics_path(), models=DEMO_MODELS, split=split, seeds="0,1,2",
                                   preset="tuned", out=out / "lyrics", progress=progress, log=log, **execution)
            print_lyrics(table, out / "lyrics")
        out_console.print("The demo corpus is synthetic (see studybench.data.demo): compare the "
                          "artist split with the random one to see how much artist leakage inflates.")
        with run_progress() as progress:
            block1, transfer = run_images(demo_images(n_train=120, n_test=40), seeds="0,1", preset="tuned",
                                          overrides=DEMO_IMAGE_SETTINGS, out=out / "images",
                                          progress=progress, log=log, **execution)
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
            if spec.space:
                shown = ", ".join(f"{k} {d[0]} {d[1:] if d[0] != 'choice' else d[1]}" for k, d in spec.space.items())
                out_console.print(f"[bold]{name}[/] \\[tune searches] {escape(shown)}", highlight=False)
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
    """Console entry point. SIGTERM and SIGINT stop every command with exit 143 / 130 and a
    one-line message (`serve` excepted: uvicorn shuts the server down cleanly, exit 0)."""
    from studybench.errors import Interrupted, stop_on_signals

    stop_on_signals()
    try:
        app()
    except Interrupted as exc:  # outside a study (printing, listing): the same line and exit code
        err_console.print(exc.message(), highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
