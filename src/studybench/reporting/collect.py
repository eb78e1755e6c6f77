"""Read run folders for a report: nothing is retrained and no model code is imported.

A report covers every ``runs/`` folder under the directory it is given (a study's
``--out``, or a parent such as ``runs/demo`` holding ``lyrics/`` and ``images/``).
A folder that lacks a file is named in :attr:`Collected.problems` and skipped; an
interrupted run (``<run>.partial``) and a planned run that never finished are
listed too, so a reader knows what the numbers leave out. A run id is a hash of
everything the run depends on, so a run met again in a second ``runs/`` folder (one
study's output copied beside another's) is counted once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from studybench.runfolder import Run, is_finished_name, read_run

FAILURES = "failures.json"  # written by the driver (studybench.pipeline.driver): run id -> error


@dataclass
class Collected:
    """Every run under a directory, split by study, and what could not be read."""

    root: Path
    lyrics: list[Run] = field(default_factory=list)
    images: list[Run] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "<run>: no metrics.json", ...
    interrupted: list[str] = field(default_factory=list)  # a checkpoint or <run>.partial left behind
    missing: list[str] = field(default_factory=list)  # planned by a command, never finished
    failed: dict[str, str] = field(default_factory=dict)  # run id -> its error (failures.json)
    duplicates: list[str] = field(default_factory=list)  # a run id met again in another runs/ folder
    commands: list[str] = field(default_factory=list)  # the command lines that made the runs
    planned: bool = False  # a plan.json was found (so unfinished runs can be named)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _runs_dirs(root: Path, depth: int = 3) -> list[Path]:
    if (root / "runs").is_dir():
        return [root / "runs"]
    if depth == 0:
        return []
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found += _runs_dirs(child, depth - 1)
    return found


def collect(root: str | Path) -> Collected:
    """Every run folder under ``root``; unreadable ones become :attr:`Collected.problems`."""
    root = Path(root)
    result = Collected(root)
    finished: set[str] = set()
    for runs in _runs_dirs(root):
        for folder in sorted(p for p in runs.iterdir() if p.is_dir()):
            if folder.name.endswith(".partial"):
                result.interrupted.append(folder.name[: -len(".partial")])
                continue
            if not is_finished_name(folder.name):
                continue
            if folder.name in finished:  # the same run copied into two --out folders: count it once
                result.duplicates.append(folder.name)
                continue
            try:
                run = read_run(folder)
            except ValueError as exc:
                result.problems.append(f"{folder.name}: {exc}")
                continue
            finished.add(run.run_id)
            (result.images if run.study == "images" else result.lyrics).append(run)
        checkpoints = runs.parent / "checkpoints"
        if checkpoints.is_dir():  # training stopped mid-way; the same command resumes it
            result.interrupted += [p.name[: -len(".ckpt")] for p in sorted(checkpoints.glob("*.ckpt"))]
        plan = runs.parent / "plan.json"
        if plan.is_file():
            result.planned = True
            try:
                entries = _read_json(plan).get("commands", [])
            except (OSError, ValueError):
                entries = []
            for entry in entries:
                result.commands.append(entry.get("command", ""))
                result.missing += entry.get("run_ids", [])
        failures = runs.parent / FAILURES
        if failures.is_file():
            try:
                recorded = _read_json(failures)
            except (OSError, ValueError):
                recorded = {}
            if isinstance(recorded, dict):
                result.failed.update({k: str((v or {}).get("error", "")) if isinstance(v, dict) else str(v)
                                      for k, v in recorded.items()})
    # after every folder is read: a run planned in one --out folder may have finished in another
    result.failed = {k: v for k, v in result.failed.items() if k not in finished}
    result.missing = sorted(set(result.missing) - finished - set(result.failed))
    result.commands = list(dict.fromkeys(c for c in result.commands if c))
    return result
