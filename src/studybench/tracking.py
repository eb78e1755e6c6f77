"""MLflow as an optional sink beside the run folders (which stay the record).

A finished run folder is copied into MLflow: its resolved parameters, per-epoch
metrics (``step`` = epoch), final test metrics, tags and every file as an
artifact. Without a URI the store is SQLite inside the study's output folder, so
``mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db`` shows the study. A run
is logged once (found again by its ``studybench.run_id`` tag), so rerunning a
study logs only what is new. MLflow is imported only when tracking is asked for.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd

from studybench.errors import StudybenchError
from studybench.runfolder import read_run

LOCAL = "local"  # the value of a bare --mlflow


def _flatten(data: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return flat


class MlflowTracker:
    """Logs finished run folders to an MLflow tracking store."""

    def __init__(self, uri: str | None, out: str | Path, experiment: str):
        for name in ("mlflow", "alembic", "sqlalchemy"):
            logging.getLogger(name).setLevel(logging.WARNING)  # no migration chatter on first use
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise StudybenchError("--mlflow needs MLflow: `pip install mlflow`") from None
        out = Path(out).resolve()
        out.mkdir(parents=True, exist_ok=True)
        self.uri = f"sqlite:///{out / 'mlflow.db'}" if uri in (None, "", LOCAL) else uri
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(
                experiment, artifact_location=(out / "mlartifacts").as_uri())
        except Exception as exc:  # MLflow raises many kinds; the user needs the URI and the reason
            raise StudybenchError(f"--mlflow {self.uri}: cannot open the tracking store "
                                  f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None

    def _logged(self, run_id: str) -> bool:
        hits = self.client.search_runs([self.experiment_id], f"tags.`studybench.run_id` = '{run_id}'",
                                       max_results=1)
        return bool(hits)

    def log_run(self, folder: str | Path) -> bool:
        """Copy one finished run folder into MLflow; False if it was logged before."""
        from mlflow.entities import Metric, Param, RunTag

        folder = Path(folder)
        run_id = folder.name
        if self._logged(run_id):
            return False
        run = read_run(folder)
        config, metrics = run.config, run.metrics
        tags = {"studybench.run_id": run_id, "studybench.study": run.study,
                "model": str(metrics.get("model")), "preset": str(metrics.get("preset")),
                "seed": str(metrics.get("seed"))}
        for key in ("features", "split", "stage", "arm", "fraction"):
            if metrics.get(key) is not None:
                tags[key] = str(metrics[key])
        run = self.client.create_run(self.experiment_id, run_name=run_id, tags=tags)
        rid = run.info.run_id
        params = {**_flatten(config.get("params", {}), "model."), **_flatten(config.get("config", {}), "run.")}
        params = [Param(k[:250], v[:6000]) for k, v in params.items()]
        values = []
        if (folder / "history.csv").is_file():
            history = pd.read_csv(folder / "history.csv")
            for row in history.to_dict("records"):
                step = int(row.pop("epoch"))
                values += [Metric(k, float(v), 0, step) for k, v in row.items()
                           if isinstance(v, (int, float)) and math.isfinite(v)]
        test = metrics.get("test", {})
        values += [Metric(f"test_{k}", float(v), 0, 0) for k, v in test.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        values += [Metric(k, float(metrics[k]), 0, 0) for k in ("fit_seconds", "predict_seconds", "n_params")
                   if isinstance(metrics.get(k), (int, float))]
        self.client.log_batch(rid, tags=[RunTag(k, v) for k, v in tags.items()])
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params ...
            self.client.log_batch(rid, params=params[start:start + 100])
        for start in range(0, len(values), 1000):  # ... and 1,000 metrics per batch
            self.client.log_batch(rid, metrics=values[start:start + 1000])
        self.client.log_artifacts(rid, str(folder))
        self.client.set_terminated(rid)
        return True
