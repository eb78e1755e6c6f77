"""A battery of bad inputs across every command: each must end with exit code 2, one
``error: …`` line that names the file, key or value, no traceback, and every file that
existed before byte-identical afterwards (nothing half-written, nothing planned).

Each case is a function that builds its damaged input inside ``tmp`` (copying what it
damages from the module's fixture) and returns the command line, the bytes for stdin (or
None) and what the error line must contain. Add a case for every new kind of bad input.
The cases run in-process (typer's CliRunner): ``uvicorn.run`` is replaced so that a
missing check fails the test instead of serving.
"""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_cifar, write_rows
from typer.testing import CliRunner

from studybench.cli import app

RUN = ["--models", "majority", "--features", "lyrics", "--seeds", "0", "--preset", "seed"]
CASES: dict = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Good inputs and finished records the cases damage copies of."""
    from studybench.bundles import export_bundle
    from studybench.studies.lyrics import run_lyrics

    root = tmp_path_factory.mktemp("made")
    good = write_rows(root / "good.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows())
    out = root / "out"
    run_lyrics(good, out=out, models="tfidf_logreg,embedding_bag", features="lyrics", seeds="0",
               preset="seed", split="artist", overrides={"train.epochs": 1})
    runs = {p.name.split(".")[0]: p for p in (out / "runs").iterdir()}
    export_bundle(runs["tfidf_logreg"], root / "bundle-classic")
    export_bundle(runs["embedding_bag"], root / "bundle-neural")
    images = root / "images"
    for c, colour in enumerate([(200, 10, 10), (10, 200, 10)]):
        (images / f"class{c}").mkdir(parents=True)
        for i in range(3):
            _png(images / f"class{c}" / f"{i}.png", colour)
    return {"root": root, "good": good, "out": out, "runs": runs,
            "classic": root / "bundle-classic", "neural": root / "bundle-neural", "images": images}


def _png(path: Path, colour=(10, 200, 30), size: int = 32) -> Path:
    from PIL import Image

    Image.new("RGB", (size, size), colour).save(path)
    return path


def _copy(source: Path, tmp: Path, name: str | None = None) -> Path:
    target = tmp / (name or source.name)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return target


def _lyrics(tmp: Path, rows, header=KAGGLE_TRAIN_HEADER, name: str = "data.csv") -> str:
    return str(write_rows(tmp / name, header, rows))


def _blues(rows):
    """Rows whose jazz songs are labelled Blues, a genre the fixture's training never saw."""
    return [r[:2] + ["Blues" if r[2] == "Jazz" else r[2]] + r[3:] for r in rows]


def _out_with_runs(made, tmp) -> str:
    return str(_copy(made["out"], tmp, "out"))


# ------------------------------------------------------------------ run lyrics: the data file

@case
def data_missing(made, tmp):
    return ["run", "lyrics", "--data", str(tmp / "missing.csv"), "--out", str(tmp / "o"), *RUN], None, \
        ["missing.csv", "not found"]


@case
def data_is_a_folder(made, tmp):
    return ["run", "lyrics", "--data", str(tmp), "--out", str(tmp / "o"), *RUN], None, [tmp.name, "folder"]


@case
def data_empty(made, tmp):
    (tmp / "empty.csv").write_bytes(b"")
    return ["run", "lyrics", "--data", str(tmp / "empty.csv"), *RUN], None, ["empty.csv", "empty"]


@case
def data_header_only(made, tmp):
    data = _lyrics(tmp, [])
    return ["run", "lyrics", "--data", data, *RUN], None, ["data.csv", "no data rows"]


@case
def data_binary(made, tmp):
    (tmp / "b.csv").write_bytes(bytes(range(256)) * 40)
    return ["run", "lyrics", "--data", str(tmp / "b.csv"), *RUN], None, ["b.csv"]


@case
def data_gzip_corrupt_body(made, tmp):
    body = gzip.compress(made["good"].read_bytes())
    damaged = body[:30] + bytes(b ^ 0x5A for b in body[30:200]) + body[200:]
    (tmp / "d.csv.gz").write_bytes(damaged)
    return ["run", "lyrics", "--data", str(tmp / "d.csv.gz"), *RUN], None, ["d.csv.gz"]


@case
def data_gzip_truncated(made, tmp):
    (tmp / "t.csv.gz").write_bytes(gzip.compress(made["good"].read_bytes())[:-40])
    return ["run", "lyrics", "--data", str(tmp / "t.csv.gz"), *RUN], None, ["t.csv.gz"]


@case
def data_gzip_not_gzip(made, tmp):
    (tmp / "n.csv.gz").write_bytes(made["good"].read_bytes())
    return ["run", "lyrics", "--data", str(tmp / "n.csv.gz"), *RUN], None, ["n.csv.gz"]


@case
def data_row_with_extra_fields(made, tmp):
    (tmp / "m.csv").write_text("Artist,Song,Genre,Language,Lyrics\nA,S,Pop,en,fine\nB,T,Rock,en,too,many\n")
    return ["run", "lyrics", "--data", str(tmp / "m.csv"), *RUN], None, ["m.csv", "line 3"]


@case
def data_no_genre_column(made, tmp):
    data = _lyrics(tmp, [r[:2] + r[3:] for r in kaggle_train_rows()], ["Artist", "Song", "Language", "Lyrics"])
    return ["run", "lyrics", "--data", data, *RUN], None, ["data.csv", "no genre column"]


@case
def data_no_lyrics_column(made, tmp):
    data = _lyrics(tmp, [r[:4] for r in kaggle_train_rows()], ["Artist", "Song", "Genre", "Language"])
    return ["run", "lyrics", "--data", data, *RUN], None, ["data.csv", "no lyrics column"]


@case
def data_mapped_column_absent(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--set", "data.columns.text=body"], None, \
        ["good.csv", "'body'"]


@case
def data_one_genre(made, tmp):
    data = _lyrics(tmp, kaggle_train_rows(per_class=12, genres=("rock",)))
    return ["run", "lyrics", "--data", data, *RUN], None, ["data.csv", "one genre", "rock"]


@case
def data_two_disagreeing_genre_columns(made, tmp):
    rows = [r + [("Jazz" if r[2] == "Rock" else r[2])] for r in kaggle_train_rows()]
    data = _lyrics(tmp, rows, KAGGLE_TRAIN_HEADER + ["genre"])
    return ["run", "lyrics", "--data", data, *RUN], None, ["data.csv", "Genre", "genre"]


@case
def data_duplicate_genre_header(made, tmp):
    rows = [r + [("Jazz" if r[2] == "Rock" else r[2])] for r in kaggle_train_rows()]
    data = _lyrics(tmp, rows, KAGGLE_TRAIN_HEADER + ["Genre"])
    return ["run", "lyrics", "--data", data, *RUN], None, ["data.csv", "Genre"]


@case
def data_all_lyrics_empty(made, tmp):
    data = _lyrics(tmp, [r[:4] + ["   "] for r in kaggle_train_rows()])
    return ["run", "lyrics", "--data", data, *RUN], None, ["data.csv", "no songs left"]


@case
def data_artist_features_without_artist(made, tmp):
    rows = [[str(i), "en", r[2], r[4]] for i, r in enumerate(kaggle_train_rows())]
    data = _lyrics(tmp, rows, ["textid", "Language", "Genre", "Lyrics"])
    return ["run", "lyrics", "--data", data, "--features", "lyrics+artist", "--models", "majority",
            "--seeds", "0"], None, ["data.csv", "artist column"]


@case
def unknown_genre_in_the_test_file(made, tmp):
    test = _lyrics(tmp, _blues(kaggle_train_rows(per_class=3, artist_prefix="T")), name="test.csv")
    return ["run", "lyrics", "--data", str(made["good"]), "--test-data", test, "--out",
            _out_with_runs(made, tmp), *RUN], None, ["test.csv", "blues"]


@case
def missing_test_file(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), "--test-data", str(tmp / "nope.csv"), *RUN], None, \
        ["nope.csv"]


@case
def split_too_small_for_test_size(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), "--out", _out_with_runs(made, tmp), *RUN,
            "--set", "split.test_size=0.001"], None, ["split.test_size"]


# ------------------------------------------------------------------ run lyrics: options and settings

@case
def out_is_a_file(made, tmp):
    (tmp / "taken").write_text("mine")
    return ["run", "lyrics", "--data", str(made["good"]), "--out", str(tmp / "taken"), *RUN], None, \
        ["taken", "not a folder"]


@case
def out_under_a_file(made, tmp):
    (tmp / "taken").write_text("mine")
    return ["run", "lyrics", "--data", str(made["good"]), "--out", str(tmp / "taken" / "sub"), *RUN], None, \
        ["taken", "not a folder"]


@case
def config_missing(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), "--config", str(tmp / "c.yaml"), *RUN], None, \
        ["c.yaml", "not found"]


@case
def config_is_a_folder(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), "--config", str(tmp), *RUN], None, [tmp.name]


@case
def config_binary(made, tmp):
    (tmp / "c.yaml").write_bytes(bytes(range(256)))
    return ["run", "lyrics", "--data", str(made["good"]), "--config", str(tmp / "c.yaml"), *RUN], None, \
        ["c.yaml"]


@case
def config_not_yaml(made, tmp):
    (tmp / "c.yaml").write_text("split: [unclosed\n")
    return ["run", "lyrics", "--data", str(made["good"]), "--config", str(tmp / "c.yaml"), *RUN], None, \
        ["c.yaml", "YAML"]


@case
def config_a_list(made, tmp):
    (tmp / "c.yaml").write_text("- a\n- b\n")
    return ["run", "lyrics", "--data", str(made["good"]), "--config", str(tmp / "c.yaml"), *RUN], None, \
        ["c.yaml", "mapping"]


@case
def config_unknown_key(made, tmp):
    (tmp / "c.yaml").write_text("split:\n  nope: 1\n")
    return ["run", "lyrics", "--data", str(made["good"]), "--config", str(tmp / "c.yaml"), *RUN], None, \
        ["split.nope"]


@case
def set_without_equals(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--set", "split.test_size"], None, \
        ["split.test_size"]


@case
def set_bad_type(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--set", "split.test_size=abc"], None, \
        ["split.test_size", "abc"]


@case
def set_test_size_above_one(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--set", "split.test_size=1.5"], None, \
        ["split.test_size", "1.5"]


@case
def set_val_size_zero(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--set", "split.val_size=0"], None, \
        ["split.val_size"]


@case
def set_epochs_negative(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), "--models", "embedding_bag", "--features", "lyrics",
            "--seeds", "0", "--set", "train.epochs=-3"], None, ["train.epochs", "-3"]


@case
def set_batch_size_zero(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), "--models", "embedding_bag", "--features", "lyrics",
            "--seeds", "0", "--set", "train.batch_size=0"], None, ["train.batch_size"]


@case
def set_learning_rate_negative(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), "--models", "embedding_bag", "--features", "lyrics",
            "--seeds", "0", "--set", "train.lr=-0.1"], None, ["train.lr"]


@case
def set_precision_unknown(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), "--models", "embedding_bag", "--features", "lyrics",
            "--seeds", "0", "--set", "train.precision=fp16"], None, ["train.precision=fp16", "auto"]


@case
def set_schedule_unknown(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), "--models", "embedding_bag", "--features", "lyrics",
            "--seeds", "0", "--set", "train.schedule=cosine"], None, ["train.schedule=cosine", "onecycle"]


@case
def seeds_not_numbers(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--seeds", "a,b"], None, ["--seeds", "a"]


@case
def seeds_negative(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--seeds", "-1"], None, ["--seeds", "-1"]


@case
def seeds_empty(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--seeds", ","], None, ["--seeds"]


@case
def models_unknown(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--models", "lstmm"], None, ["lstmm"]


@case
def models_of_the_other_study(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--models", "cnn_basic"], None, ["cnn_basic"]


@case
def features_unknown(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--features", "artist"], None, ["artist"]


@case
def preset_unknown(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--preset", "fast"], None, ["fast"]


@case
def split_unknown(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--split", "genre"], None, ["genre"]


@case
def split_file_without_test_data(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--split", "file"], None, ["--test-data"]


@case
def workers_zero(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--workers", "0"], None, ["--workers"]


@case
def workers_not_a_number(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--workers", "many"], None, ["--workers", "many"]


@case
def threads_zero(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--threads", "0"], None, ["--threads"]


@case
def threads_beyond_the_cores(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--workers", "2", "--threads", "512"], None, \
        ["--threads"]


@case
def gpu_share_without_ray(made, tmp):
    return ["run", "lyrics", "--data", str(made["good"]), *RUN, "--gpus", "0.5"], None, ["--gpus"]


# ------------------------------------------------------------------ run images

def _images_args(data: str, *extra: str) -> list[str]:
    return ["run", "images", "--data", data, "--models", "cnn_basic", "--seeds", "0", "--preset", "seed",
            "--set", "train.epochs=1", *extra]


@case
def images_missing_folder(made, tmp):
    return _images_args(str(tmp / "none")), None, ["none"]


@case
def images_empty_folder(made, tmp):
    (tmp / "empty").mkdir()
    return _images_args(str(tmp / "empty")), None, ["empty"]


@case
def images_one_class(made, tmp):
    folder = _copy(made["images"], tmp)
    shutil.rmtree(folder / "class1")
    return _images_args(str(folder)), None, ["images", "one class"]


@case
def images_unreadable_image(made, tmp):
    folder = _copy(made["images"], tmp)
    (folder / "class0" / "9.png").write_bytes(b"not a png at all")
    return _images_args(str(folder)), None, ["9.png"]


@case
def images_cifar_pickle_garbage(made, tmp):
    folder = write_cifar(tmp, n_train=2, n_test=1)
    (folder / "data_batch_3").write_bytes(b"\x80\x02garbage")
    return _images_args(str(tmp)), None, ["data_batch_3"]


@case
def images_cifar_pickle_with_code(made, tmp):
    folder = write_cifar(tmp, n_train=2, n_test=1)
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": np.zeros(3), b"go": print}, protocol=2))
    return _images_args(str(tmp)), None, ["data_batch_2"]


@case
def images_cifar_batch_missing(made, tmp):
    folder = write_cifar(tmp, n_train=2, n_test=1)
    (folder / "test_batch").unlink()
    return _images_args(str(tmp)), None, ["test_batch"]


@case
def images_unknown_dataset(made, tmp):
    return _images_args(str(made["images"]), "--dataset", "imagenet"), None, ["imagenet"]


@case
def images_fraction_out_of_range(made, tmp):
    return _images_args(str(made["images"]), "--set", "transfer.fractions=0,1.5"), None, ["transfer.fractions"]


@case
def images_draws_not_numbers(made, tmp):
    return _images_args(str(made["images"]), "--draws", "0,one"), None, ["--draws", "one"]


@case
def images_draws_repeated(made, tmp):
    return _images_args(str(made["images"]), "--draws", "1,1"), None, ["--draws", "1 given twice"]


@case
def images_draws_beside_block_seed(made, tmp):
    return _images_args(str(made["images"]), "--draws", "0,1", "--set", "data.block_seed=2"), None, \
        ["--draws", "data.block_seed"]


@case
def images_lyrics_model(made, tmp):
    return ["run", "images", "--data", str(made["images"]), "--models", "lstm"], None, ["lstm"]


@case
def images_out_is_a_file(made, tmp):
    (tmp / "taken").write_text("mine")
    return _images_args(str(made["images"]), "--out", str(tmp / "taken")), None, ["taken", "not a folder"]


@case
def demo_out_is_a_file(made, tmp):
    (tmp / "taken").write_text("mine")
    return ["demo", "--out", str(tmp / "taken")], None, ["taken", "not a folder"]


# ------------------------------------------------------------------ report

@case
def report_missing_folder(made, tmp):
    return ["report", str(tmp / "nothing")], None, ["nothing"]


@case
def report_of_a_file(made, tmp):
    (tmp / "f.txt").write_text("x")
    return ["report", str(tmp / "f.txt")], None, ["f.txt"]


@case
def report_out_is_a_file(made, tmp):
    (tmp / "taken").write_text("mine")
    return ["report", _out_with_runs(made, tmp), "--out", str(tmp / "taken")], None, ["taken", "not a folder"]


@case
def report_readme_without_markers(made, tmp):
    (tmp / "README.md").write_text("# no markers here\n")
    return ["report", _out_with_runs(made, tmp), "--out", str(tmp / "r"), "--readme", str(tmp / "README.md")], \
        None, ["README.md"]


# ------------------------------------------------------------------ evaluate and export

def _run_copy(made, tmp, model: str = "tfidf_logreg") -> Path:
    return _copy(made["runs"][model], tmp, "run")


@case
def evaluate_not_a_run(made, tmp):
    return ["evaluate", str(tmp), "--data", str(made["good"])], None, [tmp.name, "run folder"]


@case
def evaluate_config_not_json(made, tmp):
    run = _run_copy(made, tmp)
    (run / "config.json").write_text("{broken")
    return ["evaluate", str(run), "--data", str(made["good"])], None, ["config.json"]


@case
def evaluate_config_a_list(made, tmp):
    run = _run_copy(made, tmp)
    (run / "config.json").write_text("[1, 2]")
    return ["evaluate", str(run), "--data", str(made["good"])], None, ["config.json"]


@case
def evaluate_model_file_missing(made, tmp):
    run = _run_copy(made, tmp)
    (run / "model.skops").unlink()
    return ["evaluate", str(run), "--data", str(made["good"])], None, ["model.skops"]


@case
def evaluate_model_file_garbage(made, tmp):
    run = _run_copy(made, tmp, "embedding_bag")
    (run / "model.safetensors").write_bytes(b"\x00" * 64)
    return ["evaluate", str(run), "--data", str(made["good"])], None, ["model.safetensors"]


@case
def evaluate_data_with_unknown_genre(made, tmp):
    data = _lyrics(tmp, _blues(kaggle_train_rows(per_class=2)))
    return ["evaluate", str(made["runs"]["tfidf_logreg"]), "--data", data], None, ["data.csv", "blues"]


@case
def export_model_file_missing(made, tmp):
    run = _run_copy(made, tmp)
    (run / "model.skops").unlink()
    return ["export", str(run), "--out", str(tmp / "b")], None, ["model.skops"]


@case
def export_config_not_json(made, tmp):
    run = _run_copy(made, tmp)
    (run / "config.json").write_bytes(b"\xff\xfe")
    return ["export", str(run), "--out", str(tmp / "b")], None, ["config.json"]


@case
def export_out_is_a_file(made, tmp):
    (tmp / "taken").write_text("mine")
    return ["export", str(made["runs"]["tfidf_logreg"]), "--out", str(tmp / "taken")], None, ["taken"]


@case
def export_out_is_a_full_folder(made, tmp):
    (tmp / "full").mkdir()
    (tmp / "full" / "keep.txt").write_text("mine")
    return ["export", str(made["runs"]["tfidf_logreg"]), "--out", str(tmp / "full")], None, ["full"]


# ------------------------------------------------------------------ predict and serve

def _bundle(made, tmp, kind: str = "classic") -> Path:
    return _copy(made[kind], tmp, "bundle")


def _text(tmp: Path) -> str:
    (tmp / "song.txt").write_text("guitar thunder highway engine storm steel love night")
    return str(tmp / "song.txt")


@case
def predict_bundle_missing(made, tmp):
    return ["predict", str(tmp / "nobundle"), _text(tmp)], None, ["nobundle"]


@case
def predict_bundle_json_not_json(made, tmp):
    bundle = _bundle(made, tmp)
    (bundle / "bundle.json").write_text("{")
    return ["predict", str(bundle), _text(tmp)], None, ["bundle.json"]


@case
def predict_bundle_json_a_list(made, tmp):
    bundle = _bundle(made, tmp)
    (bundle / "bundle.json").write_text("[]")
    return ["predict", str(bundle), _text(tmp)], None, ["bundle.json"]


@case
def predict_bundle_json_without_classes(made, tmp):
    bundle = _bundle(made, tmp)
    meta = json.loads((bundle / "bundle.json").read_text())
    meta.pop("classes")
    (bundle / "bundle.json").write_text(json.dumps(meta))
    return ["predict", str(bundle), _text(tmp)], None, ["bundle.json", "classes"]


@case
def predict_safetensors_truncated(made, tmp):
    bundle = _bundle(made, tmp, "neural")
    weights = next(bundle.rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    return ["predict", str(bundle), _text(tmp)], None, [weights.name]


@case
def predict_safetensors_garbage(made, tmp):
    bundle = _bundle(made, tmp, "neural")
    weights = next(bundle.rglob("*.safetensors"))
    weights.write_bytes(b"\xff" * 500)
    return ["predict", str(bundle), _text(tmp)], None, [weights.name]


@case
def predict_skops_garbage(made, tmp):
    bundle = _bundle(made, tmp)
    model = next(bundle.rglob("*.skops"))
    model.write_bytes(b"PK\x03\x04 not a zip")
    return ["predict", str(bundle), _text(tmp)], None, [model.name]


@case
def predict_stdin_not_utf8(made, tmp):
    return ["predict", str(made["classic"]), "-"], b"\xff\xfe\xfa lyrics", ["stdin", "UTF-8"]


@case
def predict_stdin_empty(made, tmp):
    return ["predict", str(made["classic"]), "-"], b"", ["stdin", "empty"]


@case
def predict_text_file_not_utf8(made, tmp):
    (tmp / "s.txt").write_bytes(b"\xff\xfe\xfa")
    return ["predict", str(made["classic"]), str(tmp / "s.txt")], None, ["s.txt", "UTF-8"]


@case
def predict_input_missing(made, tmp):
    return ["predict", str(made["classic"]), str(tmp / "gone.txt")], None, ["gone.txt"]


@case
def predict_csv_without_text_column(made, tmp):
    (tmp / "in.csv").write_text("title,year\nA,2000\n")
    return ["predict", str(made["classic"]), str(tmp / "in.csv")], None, ["in.csv", "lyrics column"]


@case
def predict_csv_named_column_absent(made, tmp):
    (tmp / "in.csv").write_text("lyrics\nla la\n")
    return ["predict", str(made["classic"]), str(tmp / "in.csv"), "--text-column", "body"], None, ["body"]


@case
def predict_batch_size_zero(made, tmp):
    return ["predict", str(made["classic"]), _text(tmp), "--batch-size", "0"], None, ["--batch-size", "0"]


@case
def predict_top_k_negative(made, tmp):
    return ["predict", str(made["classic"]), _text(tmp), "--top-k", "-1"], None, ["--top-k", "-1"]


@case
def predict_top_k_zero(made, tmp):
    return ["predict", str(made["classic"]), _text(tmp), "--top-k", "0"], None, ["--top-k", "0"]


@case
def predict_format_unknown(made, tmp):
    return ["predict", str(made["classic"]), _text(tmp), "--format", "xml"], None, ["--format", "xml"]


@case
def predict_image_bundle_given_text(made, tmp):
    return ["predict", str(made["classic"]), str(made["images"] / "class0" / "0.png")], None, ["0.png", "UTF-8"]


@case
def serve_port_out_of_range(made, tmp):
    return ["serve", str(made["classic"]), "--port", "70000"], None, ["--port", "70000"]


@case
def serve_port_negative(made, tmp):
    return ["serve", str(made["classic"]), "--port", "-5"], None, ["--port", "-5"]


@case
def serve_port_in_use(made, tmp):
    return ["serve", str(made["classic"]), "--port", "{busy}"], None, ["--port", "in use"]


@case
def serve_bundle_missing(made, tmp):
    return ["serve", str(tmp / "nobundle")], None, ["nobundle"]


@case
def serve_bundle_damaged(made, tmp):
    bundle = _bundle(made, tmp)
    (bundle / "bundle.json").write_text("null")
    return ["serve", str(bundle)], None, ["bundle.json"]


# ------------------------------------------------------------------ the runner

def _snapshot(*folders: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_changes(made, tmp_path, monkeypatch, name):
    import uvicorn

    def refuse(*args, **kwargs):
        raise AssertionError("serve got past its checks and would have served")

    monkeypatch.setattr(uvicorn, "run", refuse)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)  # a default --out lands here, where the snapshot sees it
    argv, stdin, needles = CASES[name](made, tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        argv = [a.replace("{busy}", str(busy.getsockname()[1])) for a in argv]
        before = _snapshot(tmp_path, made["root"])
        result = CliRunner().invoke(app, argv, input=stdin)
        after = _snapshot(tmp_path, made["root"])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{type(result.exception).__name__}: {result.exception}"
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr  # notes (what was read) may precede
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert after == before, sorted(set(after) ^ set(before)) or "a file changed"


def test_the_battery_is_large():
    assert len(CASES) >= 60
