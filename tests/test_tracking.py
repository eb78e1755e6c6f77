"""MLflow tracking: a tiny study logged to the default SQLite store in --out and read back
through the MLflow client; reruns log nothing twice; without --mlflow, no MLflow import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows
from typer.testing import CliRunner

from studybench.cli import app

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow")
    data = write_rows(tmp / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=10))
    out = tmp / "out"
    args = ["run", "lyrics", "--data", str(data), "--models", "majority,embedding_bag", "--features",
            "lyrics", "--seeds", "0,1", "--set", "train.epochs=3", "--out", str(out), "--mlflow"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, args


def _runs(out):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("studybench-lyrics")
    return client, client.search_runs([experiment.experiment_id], max_results=100)


def test_every_run_is_logged_with_params_metrics_and_artifacts(tracked):
    out, _ = tracked
    client, runs = _runs(out)
    folders = sorted(p.name for p in (out / "runs").iterdir())
    assert sorted(r.data.tags["studybench.run_id"] for r in runs) == folders
    for run in runs:
        folder = out / "runs" / run.data.tags["studybench.run_id"]
        metrics = json.loads((folder / "metrics.json").read_text())
        assert run.data.metrics["test_macro_f1"] == pytest.approx(metrics["test"]["macro_f1"])
        assert run.data.tags["model"] == metrics["model"] and run.info.status == "FINISHED"
        assert "run.split.kind" in run.data.params
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.json", "config.json"} <= artifacts
        if metrics["model"] == "embedding_bag":
            history = client.get_metric_history(run.info.run_id, "val_loss")
            assert [m.step for m in history] == [1, 2, 3]  # one point per epoch
            assert run.data.params["model.train.epochs"] == "3"


def test_rerun_logs_nothing_twice(tracked):
    out, args = tracked
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    _, runs = _runs(out)
    assert len(runs) == 4


def test_without_the_flag_mlflow_is_not_imported(tmp_path):
    data = write_rows(tmp_path / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=10))
    code = ("import sys; from typer.testing import CliRunner; from studybench.cli import app; "
            f"r = CliRunner().invoke(app, ['run', 'lyrics', '--data', {str(data)!r}, '--models', 'majority', "
            f"'--seeds', '0', '--out', {str(tmp_path / 'o')!r}]); assert r.exit_code == 0, r.output; "
            "assert 'mlflow' not in sys.modules, 'mlflow imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "o" / "mlflow.db").exists()


def test_a_bad_tracking_uri_is_one_line(tmp_path):
    data = write_rows(tmp_path / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=10))
    result = CliRunner().invoke(app, ["run", "lyrics", "--data", str(data), "--models", "majority",
                                      "--out", str(tmp_path / "o"), "--mlflow-uri", "nosuchscheme://x"])
    assert result.exit_code == 2 and "--mlflow nosuchscheme://x: cannot open the tracking store" in result.output
