"""Model bundles: a finished run's model as a self-contained folder to predict with.

``export_bundle(run_dir, out)`` writes::

    out/bundle.json          format version, study, model, features, preset, classes,
                             the run's resolved config (cleaning for lyrics), test metrics
    out/model.safetensors    neural weights (+ model.json: vocabulary, artists, parameters)
    out/model.skops          or a classical pipeline, loaded with an explicit type list
    out/README.md            the model card: what it is, how it was tested, its numbers

Image normalisation lives inside the network's weights, the text encoding in
``model.json`` or the pipeline, so a bundle needs nothing else. :func:`load_bundle`
checks the format version first and refuses an incompatible bundle by name.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studybench.errors import StudybenchError
from studybench.records import check_out_folder, read_record, write_json, write_text
from studybench.runfolder import ARTIFACT_FILES, expand_files, upgrade_metrics

BUNDLE_VERSION = 1


def _run_config(run_dir: Path) -> tuple[dict, dict]:
    if not (run_dir / "config.json").is_file():
        raise StudybenchError(f"{run_dir}: not a finished run folder (no config.json)")
    config = read_record(run_dir / "config.json", "run record")
    metrics_path = run_dir / "metrics.json"
    metrics = read_record(metrics_path, "run record")
    try:
        return config, upgrade_metrics(metrics, config)
    except (TypeError, ValueError, AttributeError) as exc:
        raise StudybenchError(f"{metrics_path}: metrics of an unknown shape ({exc})") from None


def export_bundle(run_dir: str | Path, out: str | Path) -> Path:
    """Copy a finished run's model, its preprocessing and a model card into ``out``."""
    run_dir, out = Path(run_dir), Path(out)
    if not run_dir.is_dir():
        raise StudybenchError(f"{run_dir}: no such run folder")
    config, metrics = _run_config(run_dir)
    kind = config.get("artifact", {}).get("kind")
    if kind not in ARTIFACT_FILES:
        raise StudybenchError(f"{run_dir}: no exportable model (artifact kind {kind!r})")
    if config.get("task") == "reconstruction":
        raise StudybenchError(f"{run_dir}: an autoencoder reconstructs images; export a classifier run")
    missing = [name for name in expand_files(run_dir, ARTIFACT_FILES[kind]) if not (run_dir / name).is_file()]
    if missing:
        raise StudybenchError(f"{run_dir / missing[0]}: missing; the run's model cannot be exported")
    check_out_folder(out)
    if out.exists() and any(out.iterdir()):
        raise StudybenchError(f"--out {out}: exists and is not empty; choose a new folder")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in expand_files(run_dir, ARTIFACT_FILES[kind]):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run_dir / name, staging / name)
    study = config.get("study", "lyrics")
    test = metrics.get("test", {})
    meta = {
        "format_version": BUNDLE_VERSION, "study": study, "kind": kind,
        "artifact": ARTIFACT_FILES[kind][-1], "model": config.get("model") if study == "lyrics" else
        metrics.get("model"), "features": config.get("features", "images"), "preset": config.get("preset"),
        "seed": config.get("seed"), "classes": config.get("classes"), "run_id": run_dir.name,
        "config": config.get("config", {}), "test": {k: test[k] for k in ("accuracy", "macro_f1") if k in test},
        "protocol": _protocol(config, metrics), "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(staging / "bundle.json", meta)
    write_text(staging / "README.md", _model_card(meta, config, metrics))
    if out.exists():
        out.rmdir()
    staging.rename(out)
    return out


def _protocol(config: dict, metrics: dict) -> dict[str, Any]:
    sizes = metrics.get("sizes", {})
    if config.get("study") == "images":
        return {"block": config.get("block"), "block_classes": config.get("block_classes"),
                "stage": metrics.get("stage"), "fraction": metrics.get("fraction"), "sizes": sizes,
                "dataset": config.get("images", {}).get("dataset")}
    data = config.get("data") or {}
    return {"split": metrics.get("split"), "sizes": sizes, "data": Path(data.get("path", "")).name,
            "data_sha256": data.get("sha256"), "rows": data.get("rows")}


def _model_card(meta: dict, config: dict, metrics: dict) -> str:
    test, protocol = meta["test"], meta["protocol"]
    lines = [f"# {meta['model']} ({meta['features']}, {meta['preset']} preset)", "",
             f"A studybench model bundle exported from run `{meta['run_id']}` "
             f"(bundle format {meta['format_version']}).", "", "## Test metrics", ""]
    lines += [f"- {name.replace('_', '-')}: {value:.4f}" for name, value in test.items()] or ["- none recorded"]
    lines += ["", "## How it was tested", ""]
    if meta["study"] == "lyrics":
        lines += [f"- data: `{protocol['data']}` ({protocol.get('rows')} rows, SHA-256 {str(protocol.get('data_sha256'))[:12]}…)",
                  f"- split: {protocol['split']} (train / validation / test sizes: "
                  f"{protocol['sizes'].get('train')} / {protocol['sizes'].get('val')} / {protocol['sizes'].get('test')})",
                  f"- seed: {meta['seed']}; genres: {', '.join(meta['classes'])}",
                  "- input: raw lyrics, cleaned as in training (settings in bundle.json `config.clean`)"
                  + ("; an artist name is used when given (unknown artists are handled)"
                     if meta["features"] == "lyrics+artist" else "")]
    else:
        lines += [f"- {protocol.get('dataset')} block {protocol.get('block')} ({protocol.get('stage')}), "
                  f"{len(meta['classes'])} classes: {', '.join(meta['classes'])}",
                  f"- share of the block's training images: {protocol.get('fraction')}; sizes: {protocol.get('sizes')}",
                  f"- seed: {meta['seed']}; input: RGB images, resized to the training size"]
    lines += ["", "## Use", "", "```sh", "studybench predict path/to/this/bundle INPUT --top-k 3", "```", "",
              "Only load bundles you trust: the classical models are stored with skops and loaded with an "
              "explicit list of allowed types; neural weights are safetensors.", ""]
    return "\n".join(lines)


@dataclass
class Bundle:
    """A loaded bundle: ``predict(...)`` returns class scores in ``classes`` order."""

    path: Path
    meta: dict
    model: Any

    @property
    def study(self) -> str:
        return self.meta["study"]

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def image_size(self) -> int:
        return int(getattr(self.model, "image_size_", 32))

    def predict_lyrics(self, texts: list[str], artists: list[str] | None = None,
                       languages: list[str] | None = None) -> tuple[np.ndarray, str]:
        """Scores ``[N, classes]`` for raw lyrics (cleaned as in training) and their kind
        (``probability``, or ``score`` for a model without probabilities)."""
        from studybench.config import CleaningConfig, from_dict
        from studybench.data.cleaning import clean_text

        if self.study != "lyrics":
            raise StudybenchError(f"{self.path}: an {self.study} model; give it images")
        clean = from_dict(CleaningConfig, self.meta.get("config", {}).get("clean", {}))
        languages = languages or [""] * len(texts)
        cleaned = [clean_text(t, lang or clean.default_language, clean) for t, lang in zip(texts, languages)]
        frame = pd.DataFrame({"row": range(1, len(texts) + 1), "text": cleaned,
                              "artist": [a or "" for a in (artists or [""] * len(texts))],
                              "language": [lang or clean.default_language for lang in languages],
                              "song": [""] * len(texts), "label": [""] * len(texts)})
        return self.model.scores(frame)

    def predict_images(self, images) -> tuple[np.ndarray, str]:
        """Probabilities ``[N, classes]`` for uint8 images ``[N, 3, H, W]``."""
        import torch

        from studybench.data.images import ImageSet

        if self.study != "images":
            raise StudybenchError(f"{self.path}: a lyrics model; give it lyrics")
        labels = torch.zeros(len(images), dtype=torch.long)  # unused: scoring needs no labels
        return self.model.scores(ImageSet(images, labels, tuple(self.classes)))


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder; a missing, damaged or incompatible bundle is a clear error."""
    path = Path(path)
    if not path.is_dir():
        raise StudybenchError(f"{path}: no such bundle folder")
    if not (path / "bundle.json").is_file():
        raise StudybenchError(f"{path}: not a studybench bundle (no bundle.json; `studybench export RUN_DIR --out DIR` makes one)")
    meta = read_record(path / "bundle.json", "bundle description")
    version = meta.get("format_version")
    if version != BUNDLE_VERSION:
        raise StudybenchError(f"{path}: bundle format {version} is not supported by this studybench "
                              f"(it reads format {BUNDLE_VERSION}); export the run again")
    kind = meta.get("kind")
    if kind not in ARTIFACT_FILES:
        raise StudybenchError(f"{path}: unknown model kind {kind!r} in bundle.json")
    from studybench.models.artifacts import load_model

    model = load_model(kind, path / ARTIFACT_FILES[kind][-1])
    classes = meta.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        raise StudybenchError(f"{path / 'bundle.json'}: no 'classes' list of class names")
    if meta.get("study") not in ("lyrics", "images"):
        raise StudybenchError(f"{path / 'bundle.json'}: 'study' is {meta.get('study')!r}, not lyrics or images")
    if list(getattr(model, "classes_", classes)) != classes:
        raise StudybenchError(f"{path / 'bundle.json'}: its 'classes' differ from the model's")
    return Bundle(path, meta, model)
