"""Bundles: export a tiny run, reload it in a fresh process, and get exactly the run's own
saved test predictions; format checks and input errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows
from typer.testing import CliRunner

from studybench.bundles import export_bundle, load_bundle
from studybench.cli import app
from studybench.errors import StudybenchError
from studybench.studies.lyrics import run_lyrics


@pytest.fixture(scope="module")
def lyrics_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle")
    data = write_rows(tmp / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=16))
    out = tmp / "out"
    # ensemble: its default members nb_logreg, sentence_encoder, pretrained_embedding, tfidf_linear_svm, tfidf_logreg
    run_lyrics(data, models="tfidf_logreg,tfidf_linear_svm,embedding_bag,nb_logreg,ensemble", features="lyrics,lyrics+artist",
               split="artist", seeds="0", overrides={"train.epochs": 3}, out=out)
    return data, out


@pytest.mark.parametrize("model, features", [("tfidf_logreg", "lyrics"), ("embedding_bag", "lyrics+artist"),
                                             ("tfidf_linear_svm", "lyrics+artist"), ("nb_logreg", "lyrics+artist"),
                                             ("sentence_encoder", "lyrics"), ("ensemble", "lyrics+artist")])
def test_bundle_in_a_fresh_process_reproduces_the_run(lyrics_runs, tmp_path, model, features):
    data, out = lyrics_runs
    run = next((out / "runs").glob(f"{model}.{features}.tuned.artist.s0-*"))
    bundle = export_bundle(run, tmp_path / "bundle")
    assert {p.name for p in bundle.iterdir()} >= {"bundle.json", "README.md"}
    card = (bundle / "README.md").read_text()
    saved = pd.read_csv(run / "predictions.csv")
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"{metrics['test']['macro_f1']:.4f}" in card and "artist" in card
    source = pd.read_csv(data)
    test_rows = source.iloc[saved["row"] - 1]  # the run's test songs, raw, with their artists
    test_rows.to_csv(tmp_path / "test.csv", index=False)
    classes = json.loads((bundle / "bundle.json").read_text())["classes"]
    result = subprocess.run([sys.executable, "-m", "studybench.cli", "predict", str(bundle), str(tmp_path / "test.csv"),
                             "--format", "csv", "--top-k", str(len(classes))],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    predicted = pd.read_csv(io.StringIO(result.stdout))
    assert predicted["class_1"].tolist() == saved["predicted"].tolist()
    kind = "probability" if model != "tfidf_linear_svm" else "score"
    for i, row in predicted.iterrows():  # every class's score, to the 6 printed decimals
        got = {row[f"class_{j + 1}"]: row[f"{kind}_{j + 1}"] for j in range(len(classes))}
        expected = {c: saved.loc[i, f"score:{c}"] for c in classes}
        assert got == pytest.approx(expected, abs=2e-6)


def test_image_bundle_reproduces_the_run_in_a_fresh_process(tmp_path):
    from studybench.data.demo_images import demo_images
    from studybench.studies.images import run_images

    run_images(demo_images(n_train=10, n_test=4), models="cnn_basic", seeds="0", out=tmp_path / "out",
               overrides={"model.widths": "4,8,8", "train.epochs": 2, "transfer.arms": "cnn_finetune",
                          "transfer.fractions": "1"})
    run = next((tmp_path / "out" / "runs").glob("cnn_finetune.tuned.b2.f1.s0-*"))
    bundle = export_bundle(run, tmp_path / "bundle")
    code = f"""
import json, numpy as np
from studybench.bundles import load_bundle
from studybench.config import ImagesConfig
from studybench.data.demo_images import demo_images
from studybench.studies.images import make_blocks
bundle = load_bundle({str(bundle)!r})
block = make_blocks(demo_images(n_train=10, n_test=4), ImagesConfig())[1]
scores, kind = bundle.predict_images(block.test.images)
print(json.dumps(scores.tolist()))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    scores = np.array(json.loads(result.stdout))
    saved = pd.read_csv(run / "predictions.csv")
    classes = json.loads((bundle / "bundle.json").read_text())["classes"]
    assert np.allclose(scores, saved[[f"score:{c}" for c in classes]].to_numpy(), atol=1e-6)
    assert (scores.argmax(1) == saved["predicted"].to_numpy()).all()


def test_incompatible_or_missing_bundles_are_clear_errors(lyrics_runs, tmp_path):
    _, out = lyrics_runs
    run = next((out / "runs").glob("tfidf_logreg.lyrics.tuned.artist.s0-*"))
    bundle = export_bundle(run, tmp_path / "b")
    meta = json.loads((bundle / "bundle.json").read_text())
    (bundle / "bundle.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(StudybenchError, match="bundle format 99 is not supported"):
        load_bundle(bundle)
    with pytest.raises(StudybenchError, match="not a studybench bundle"):
        load_bundle(tmp_path)
    with pytest.raises(StudybenchError, match="exists and is not empty"):
        export_bundle(run, bundle)
    with pytest.raises(StudybenchError, match="not a finished run folder"):
        export_bundle(tmp_path, tmp_path / "c")


def test_predict_cli_inputs_and_errors(lyrics_runs, tmp_path):
    _, out = lyrics_runs
    bundle = export_bundle(next((out / "runs").glob("embedding_bag.lyrics+artist.tuned.artist.s0-*")),
                           tmp_path / "b")
    runner = CliRunner()
    song = tmp_path / "song.txt"
    song.write_text("Guitar thunder on the highway,\nengine storm and steel!\n")
    result = runner.invoke(app, ["predict", str(bundle), str(song), "--format", "json", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["input"] == "song.txt" and len(rows[0]["predictions"]) == 2
    assert sum(p["probability"] for p in rows[0]["predictions"]) <= 1 + 1e-6
    result = runner.invoke(app, ["predict", str(bundle), "-"], input="dance party glitter summer kiss")
    assert result.exit_code == 0 and "stdin" in result.output
    for args, message in [
        ([str(tmp_path / "nothere.txt")], "nothere.txt: no such file"),
        (["-"], "stdin: empty lyrics"),
        ([str(song), "--format", "xml"], "--format xml: expected table, json or csv"),
    ]:
        result = runner.invoke(app, ["predict", str(bundle), *args], input="  ")
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    result = runner.invoke(app, ["predict", str(bundle), str(tmp_path / "bad.txt")])
    assert result.exit_code == 2 and "bad.txt: not UTF-8 text" in result.output
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["predict", str(bundle), str(tmp_path / "cols.csv")])
    assert result.exit_code == 2 and "no lyrics column" in result.output


def test_the_service_serves_the_families_beyond_the_study(lyrics_runs, tmp_path):
    """An ensemble and a sentence-encoder bundle answer /predict/lyrics as they predict."""
    from fastapi.testclient import TestClient

    from studybench.serve import create_app

    _, out = lyrics_runs
    paths = [export_bundle(next((out / "runs").glob(f"{model}.lyrics+artist.tuned.artist.s0-*")), tmp_path / model)
             for model in ("ensemble", "sentence_encoder")]
    client = TestClient(create_app(paths), raise_server_exceptions=False)
    assert {m["name"] for m in client.get("/models").json()} == {"ensemble", "sentence_encoder"}
    lyrics = "guitar thunder highway engine storm steel"
    for path in paths:
        answer = client.post("/predict/lyrics", json={"lyrics": lyrics, "artist": "Someone New",
                                                      "model": path.name, "top_k": 3})
        assert answer.status_code == 200, answer.text
        scores, _ = load_bundle(path).predict_lyrics([lyrics], ["Someone New"])
        served = {p["label"]: p["probability"] for p in answer.json()["predictions"]}
        classes = json.loads((path / "bundle.json").read_text())["classes"]
        assert served == pytest.approx(dict(zip(classes, scores[0].tolist())), abs=1e-6)
