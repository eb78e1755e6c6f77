"""The ``studybench`` command.

The issue's error paths, ``--help``, ``list`` and ``evaluate`` run as a user runs
them: in a subprocess. Every input problem must end with exit code 2, one
``error: …`` line on stderr that names the problem, and no traceback; a failing
command must leave an existing output folder untouched. Each subprocess pays
about 2 s of imports (4 s where skops loads a model), so the module fixture
starts them all at once and the tests read their results; further paths run
in-process with typer's CliRunner.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows
from typer.testing import CliRunner

from studybench import registry
from studybench.cli import app
from studybench.studies.lyrics import run_lyrics

FAST = ["--models", "majority", "--features", "lyrics", "--seeds", "0", "--preset", "seed"]
_SCRIPT = Path(sys.executable).with_name("studybench")  # the venv's console script
STUDYBENCH = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "studybench.cli"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "studybench.cli", *args]


# case -> (the --data file, what must appear on the single error line); argv is built in the fixture
ERROR_CASES = {
    "no_lyrics_column": ("nolyrics.csv", ["nolyrics.csv", "no lyrics column", "Artist, Song, Genre"]),
    "empty_file": ("empty.csv", ["empty.csv", "empty file"]),
    "binary_file": ("binary.csv", ["binary.csv", "not a UTF-8 text CSV"]),
    "malformed_row": ("malformed.csv", ["malformed.csv", "malformed CSV", "line 3", "6 fields"]),
    "unknown_model": ("good.csv", ["tfidf_logrg", "did you mean tfidf_logreg"]),
    "unknown_set_key": ("good.csv", ["split.nope", "unknown key"]),
    "bad_set_value": ("good.csv", ["split.test_size", "expected float", "abc"]),
}
EXTRA_ARGS = {  # a second --models replaces FAST's: typer keeps the last
    "unknown_model": ["--models", "tfidf_logrg"],
    "unknown_set_key": ["--set", "split.nope=1"],
    "bad_set_value": ["--set", "split.test_size=abc"],
}


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS")}
    env["NO_COLOR"] = "1"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Input files, an existing finished output folder, and every command's result."""
    root = tmp_path_factory.mktemp("cli")
    good = write_rows(root / "good.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows())
    unseen = write_rows(root / "unseen.csv", KAGGLE_TRAIN_HEADER,
                        kaggle_train_rows(per_class=3, artist_prefix="Unseen"))
    write_rows(root / "nolyrics.csv", ["Artist", "Song", "Genre"], [["A", "S", "Rock"]])
    (root / "empty.csv").write_bytes(b"")
    (root / "binary.csv").write_bytes(random.Random(0).randbytes(4000) + b"\x00" * 16 + b"\xff\xfe\x00\x81" * 100)
    (root / "malformed.csv").write_text("Artist,Song,Genre,Language,Lyrics\nA,S,Pop,en,fine\n"
                                       "B,T,Rock,en,too,many\nC,U,Jazz,en,fine again\n")

    out = root / "out"  # a finished study the failing commands must not touch
    run_lyrics(good, out=out, models="majority", features="lyrics", seeds="0", preset="seed")
    (run_dir,) = (out / "runs").iterdir()

    commands = {name: _cli("run", "lyrics", "--data", str(root / data), "--out", str(out), *FAST,
                           *EXTRA_ARGS.get(name, []))
                for name, (data, _) in ERROR_CASES.items()}
    commands["help"] = [*STUDYBENCH, "--help"]
    commands["run_help"] = [*STUDYBENCH, "run", "lyrics", "--help"]
    commands["list"] = [*STUDYBENCH, "list"]
    commands["evaluate"] = _cli("evaluate", str(run_dir), "--data", str(unseen))

    before = _snapshot(out)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(_run, argv, root) for name, argv in commands.items()}
        results = {name: f.result() for name, f in futures.items()}
    return {"root": root, "out": out, "before": before, "after": _snapshot(out), "run_dir": run_dir,
            "results": results, "unseen": unseen}


def _error_line(result: subprocess.CompletedProcess) -> str:
    """The one message line on stderr (the progress bar's own line aside)."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and "━" not in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_input_errors_exit_2_with_one_line_and_no_traceback(cli, case):
    result = cli["results"][case]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2, result.stderr
    line = _error_line(result)
    for needle in ERROR_CASES[case][1]:
        assert needle in line, (needle, line)
    assert result.stdout == ""


def test_failing_commands_leave_the_existing_output_untouched(cli):
    assert cli["before"], "the fixture should have produced a finished run"
    assert "results.csv" in cli["before"]
    assert cli["after"] == cli["before"]  # same files, same bytes, same mtimes
    assert not any(name.endswith(".partial") for name in cli["after"])


def test_help_shows_the_commands(cli):
    result = cli["results"]["help"]
    assert result.returncode == 0, result.stderr
    for command in ("run", "evaluate", "list", "demo"):
        assert command in result.stdout


def test_run_lyrics_help_shows_the_options(cli):
    result = cli["results"]["run_help"]
    assert result.returncode == 0, result.stderr
    for option in ("--data", "--models", "--features", "--split", "--seeds", "--preset", "--set", "--out"):
        assert option in result.stdout


@pytest.mark.parametrize("argv", [[], ["run", "lyrics"], ["run", "images"], ["demo"]],
                         ids=["studybench", "run-lyrics", "run-images", "demo"])
def test_help_imports_neither_ray_nor_the_training_stack(argv):
    # --help must answer at once: Ray, torch, Lightning, scikit-learn and MLflow load only
    # when a command uses them (Ray alone takes about a second to import here).
    code = ("import sys; from typer.testing import CliRunner; from studybench.cli import app; "
            f"r = CliRunner().invoke(app, {argv + ['--help']!r}); assert r.exit_code == 0, r.output; "
            "print(' '.join(m for m in ('ray', 'torch', 'lightning', 'sklearn', 'mlflow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == []


def test_list_shows_every_model_and_schema(cli):
    result = cli["results"]["list"]
    assert result.returncode == 0, result.stderr
    for name in registry.names():
        assert name in result.stdout
    for schema in ("kaggle_train", "kaggle_test", "tcc_ceds", "tcc_ceds_mendeley", "mlgc_sample"):
        assert schema in result.stdout


def test_evaluate_prints_json_metrics(cli):
    result = cli["results"]["evaluate"]
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["run_id"] == cli["run_dir"].name
    assert payload["model"] == "majority"
    metrics = payload["metrics"]
    assert payload["accuracy"] == metrics["accuracy"]
    assert payload["macro_f1"] == metrics["macro_f1"]
    assert metrics["n"] == 9  # 3 genres x 3 songs
    # the majority model predicts one genre for every song: accuracy = its share (1/3)
    assert payload["accuracy"] == pytest.approx(1 / 3)
    assert payload["data"]["path"] == str(cli["unseen"])


# --------------------------------------------------------------------------- in-process paths

runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        result.exception
    return result


def test_in_process_errors(cli, tmp_path):
    root, out = cli["root"], cli["out"]
    ambiguous = write_rows(tmp_path / "ambiguous.csv", ["Artist", "Song", "Year", "Genre", "Language", "Lyrics"],
                           [["A", "S", "2000", "Rock", "en", "guitar road"]])
    cases = {
        "missing.csv: file not found": ["run", "lyrics", "--data", str(tmp_path / "missing.csv"), "--out", str(out)],
        "data.schema=NAME": ["run", "lyrics", "--data", str(ambiguous), "--out", str(out), *FAST],
        "--set model.nope: unknown key for majority": ["run", "lyrics", "--data", str(root / "good.csv"),
                                                       "--out", str(out), *FAST, "--set", "model.nope=1"],
        "not a studybench run folder": ["evaluate", str(root), "--data", str(cli["unseen"])],
        "missing.yaml: config file not found": ["run", "lyrics", "--data", str(root / "good.csv"),
                                                "--config", str(tmp_path / "missing.yaml")],
    }
    before = _snapshot(out)
    for needle, args in cases.items():
        result = _invoke(*args)
        assert result.exit_code == 2, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip() and "━" not in line]
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    assert _snapshot(out) == before


def test_list_params_shows_each_preset():
    result = _invoke("list", "--params")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())  # long lines wrap at the console width
    for name in registry.names():
        for preset in registry.get(name).presets:
            start = text.index(f"{name} [{preset}] ")
            params = registry.get(name).resolve(preset)
            block = text[start:start + 600]
            for field in ("C", "max_depth", "artist_dropout"):
                if hasattr(params, field):
                    assert f"{field}={getattr(params, field)}" in block, (name, preset, field)


def test_successful_run_prints_the_table_and_writes_results(cli, tmp_path):
    out = tmp_path / "out"
    result = _invoke("run", "lyrics", "--data", str(cli["root"] / "good.csv"), "--out", str(out),
                     "--models", "majority,tfidf_logreg", "--features", "lyrics", "--seeds", "0,1",
                     "--preset", "seed", "--split", "random")
    assert result.exit_code == 0, result.stderr
    table_lines = [x for x in result.stdout.splitlines() if "majority" in x or "tfidf_logreg" in x]
    assert len(table_lines) == 2
    assert all(" 2 " in x for x in table_lines)  # two seeds each
    assert "macro-F1" in result.stdout and f"runs and results.csv in {out}" in result.stdout.replace("\n", "")
    lines = (out / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + 4  # header + 2 models x 2 seeds
    assert len(list((out / "runs").iterdir())) == 4


def test_second_split_into_the_same_out_prints_the_split_comparison(cli, tmp_path):
    out = tmp_path / "out"
    args = ["run", "lyrics", "--data", str(cli["root"] / "good.csv"), "--out", str(out),
            "--models", "majority,tfidf_logreg", "--features", "lyrics", "--seeds", "0", "--preset", "seed"]
    first = _invoke(*args, "--split", "random")
    assert first.exit_code == 0 and "by split" not in first.stdout  # one split so far: nothing to compare
    second = _invoke(*args, "--split", "artist")
    assert second.exit_code == 0, second.stderr
    comparison = second.stdout[second.stdout.index("by split"):]
    header = next(line for line in comparison.splitlines() if "┃ model" in line)
    assert "artist" in header and "random" in header
    rows = [line for line in comparison.splitlines() if "tfidf_logreg" in line]
    import re
    assert len(rows) == 1 and len(re.findall(r"\d\.\d{3}", rows[0])) == 2  # a macro-F1 per split


def test_one_seed_is_printed_as_its_score_alone_not_with_a_zero_spread():
    """A single seed has no spread: "0.331", never "0.331 ± 0.000" (which reads as a measured zero)."""
    import pandas as pd

    from studybench.reporting.sections import _std
    from studybench.results import mean_std

    assert mean_std(0.3312, 0.0, seeds=1) == "0.331"
    assert mean_std(0.3312, 0.0123, seeds=3) == "0.331 ± 0.012"
    assert mean_std(float("nan"), 0.0) == ""
    assert mean_std(0.3312, _std(pd.Series([0.3312]))) == "0.331"
    assert mean_std(0.5, _std(pd.Series([0.4, 0.6]))) == "0.500 ± 0.141"


def test_one_seed_transfer_gain_is_printed_without_a_zero_spread(capsys):
    """The console's transfer line says "+0.0 points (1 seed)" for one seed, not "+0.0 ± 0.0"."""
    import pandas as pd

    from studybench.console import print_image_tables
    from studybench.results import summarize_images

    rows = [{"study": "images", "stage": "transfer", "model": f"transfer:{arm}", "arm": arm, "task": "classification",
             "preset": "tuned", "fraction": 0.1, "seed": seed, "accuracy": accuracy, "macro_f1": accuracy,
             "mse": None, "psnr": None, "fit_seconds": 1.0, "n_params": 10, "n_trainable": 10, "n_train": 100}
            for seed, accuracy in ((0, 0.70), (1, 0.72)) for arm in ("scratch",)]
    rows += [{**rows[0], "model": "transfer:cnn_finetune", "arm": "cnn_finetune", "accuracy": 0.75}]
    block1, transfer = summarize_images(pd.DataFrame(rows))
    print_image_tables(block1, transfer)
    line = " ".join(capsys.readouterr().out.split()).split("paired by seed: ")[1]
    assert line == "0.1: +5.0 points (1 seed)"  # paired with seed 0's scratch alone
