"""The one driver of every study: skip finished runs, record the plan, hand jobs to an
executor, write what comes back, keep ``results.csv`` current, record failures.

Only the driver writes into ``--out``. A finished run arrives as bytes and is written in
``<run>.partial``, then renamed; every shared file (``plan.json``, ``results.csv``,
``failures.json``) is rewritten under a lock on ``--out``, so two commands on one folder
never interleave their writes. A job that fails is recorded with its one-line error and
the others go on; a job whose worker died is tried again once, then left for the rerun.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from studybench.errors import Interrupted, StudybenchError
from studybench.pipeline.executors import Executor
from studybench.pipeline.jobs import Event, Job, Plan, RunFiles
from studybench.records import RunWriter, file_lock, read_json, record_plan, write_csv, write_json
from studybench.runfolder import artifact_files, collect_results, expand_files

FAILURES = "failures.json"


class StudyFailed(StudybenchError):
    """Some runs of a study failed; the others finished and are recorded. Exit code 1."""

    exit_code = 1

    def __init__(self, message: str, failed: dict[str, str]):
        super().__init__(message)
        self.failed = failed
        self.result = None  # the caller's tables of what did finish


@dataclass
class Running:
    job: Job
    started: float
    epoch: int = 0
    max_epochs: int = 0
    text: str = ""  # the last epoch's metric, for the display
    stage: str = "epochs"  # what epoch / max_epochs count: epochs, or a preparation step's units


@dataclass
class GridStatus:
    """Where a grid stands, for a progress display."""

    total: int
    executor: str
    skipped: int = 0  # finished before this command
    finished: int = 0  # finished by this command
    failed: dict[str, str] = field(default_factory=dict)
    running: dict[str, Running] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.skipped + self.finished + len(self.failed)

    def remaining_seconds(self) -> float | None:
        """Wall-clock estimate of the rest: this command's pace so far (None before a run ends)."""
        if not self.finished:
            return None
        return (time.monotonic() - self.started) / self.finished * (self.total - self.done)


Progress = Callable[[Event, GridStatus], None]


def locked(out: Path):
    """An exclusive lock on ``out`` while shared files are rewritten."""
    return file_lock(out / ".studybench.lock")


def _write_run(runs: Path, run_id: str, files: RunFiles) -> bool:
    """Write a finished run atomically; False if the folder exists (another attempt won)."""
    final = runs / run_id
    if final.is_dir():
        return False
    with RunWriter(final) as tmp:
        for name, content in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    return True


def _source_files(folder: Path) -> RunFiles:
    """A finished run's ``config.json`` and model files, to send to a job that starts from it."""
    if not (folder / "config.json").is_file():
        raise StudybenchError(f"{folder}: not a finished run folder (no config.json)")
    config = read_json(folder / "config.json")
    names = expand_files(folder, ("config.json", *artifact_files(config)))
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise StudybenchError(f"{folder}: the run's {missing[0]} is missing")
    # and what a run that combines others reads: its test metrics and its validation scores
    names += [n for n in ("metrics.json", "val_predictions.csv") if (folder / n).is_file()]
    return {name: (folder / name).read_bytes() for name in names}


def read_failures(out: Path) -> dict[str, dict]:
    path = Path(out) / FAILURES
    try:
        data = read_json(path) if path.is_file() else {}
    except (OSError, ValueError):
        data = {}
    return data if isinstance(data, dict) else {}


def _record_failures(out: Path, failed: dict[str, dict], finished: set[str]) -> None:
    """Add this command's failures to ``failures.json``; drop runs that have now finished."""
    with locked(out):
        known = {k: v for k, v in read_failures(out).items() if k not in finished}
        known.update(failed)
        if known or (out / FAILURES).exists():
            write_json(out / FAILURES, known)


def execute_plan(plan: Plan, out: str | Path, executor: Executor, progress: Progress | None = None,
                 tracker=None, retries: int = 1, log: Callable[[str], None] | None = None) -> list[str]:
    """Run every job of ``plan`` not finished in ``out`` on ``executor``; return the plan's
    run ids in order. Raises :class:`StudyFailed` naming the runs that failed (after every
    other run has finished and ``results.csv`` is written)."""
    out = Path(out)
    runs = out / "runs"
    argv = list(sys.argv)
    todo = [replace(job, context={**job.context, "argv": argv}) for job in plan.jobs
            if not (runs / job.run_id).is_dir()]
    # Runs that others start from go first (in plan order), then the largest: the grid ends
    # sooner when no worker is left alone with a long run at the end (plan order among equals).
    sources = {ref for job in todo for ref in job.depends_on}
    todo.sort(key=lambda job: (0, 0) if job.run_id in sources else (1, -job.cost))
    # Prepared data first (each seed's split, each class block): a split that cannot be made
    # is an input error, reported before any run starts or any record is touched.
    payloads: dict[str, Any] = {}
    for key in dict.fromkeys(key for job in todo for key in job.inputs):
        payloads[key] = plan.payloads[key]()
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StudybenchError(f"--out {out}: not a folder") from None
    except PermissionError:
        raise StudybenchError(f"--out {out}: not writable") from None
    run_ids = [job.run_id for job in plan.jobs]
    with locked(out):
        record_plan(out, run_ids)
    status = GridStatus(len(plan.jobs), executor.describe(), skipped=len(plan.jobs) - len(todo))

    def emit(event: Event) -> None:
        if progress:
            progress(event, status)

    if tracker:
        for run_id in run_ids:
            if (runs / run_id).is_dir():
                tracker.log_run(runs / run_id)  # finished earlier; logged unless it was then
    emit(Event("planned", ""))
    attempts: dict[str, int] = {}
    failures: dict[str, dict] = {}
    needed = {key for job in todo for key in job.inputs}

    def fail(job: Job, error: str, detail: str | None = None) -> None:
        status.running.pop(job.run_id, None)
        status.failed[job.run_id] = error
        failures[job.run_id] = {"error": error, "traceback": detail, "command": " ".join(argv),
                                "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        emit(Event("failed", job.run_id, {"error": error}))

    def deliver(event: Event) -> None:
        current = status.running.get(event.run_id)
        if current is None:
            return  # a late event of a job already settled
        if event.kind == "epoch" and "prepare" in (event.data or {}):  # a long preparation step
            row = event.data
            current.stage, current.text = str(row["prepare"]), ""
            current.epoch, current.max_epochs = int(row.get("done", 0)), int(row.get("total", 0))
        elif event.kind == "epoch":
            row = event.data or {}
            current.stage = "epochs"
            current.epoch, current.max_epochs = int(row.get("epoch", 0)), int(row.get("max_epochs", 0))
            metric = next((k for k in ("val_macro_f1", "val_accuracy", "val_psnr") if k in row), None)
            current.text = f"{metric.replace('_', ' ')} {row[metric]:.3f}" if metric else ""
        elif event.kind == "finished":
            with locked(out):
                written = _write_run(runs, event.run_id, event.data)
                if written:
                    write_csv(out / "results.csv", collect_results(out))  # current if interrupted
            status.running.pop(event.run_id)
            status.finished += 1
            if written and tracker:
                tracker.log_run(runs / event.run_id)
            event = Event("finished", event.run_id)  # the bytes are written; don't pass them on
        elif event.kind == "failed":
            fail(current.job, event.data["error"], event.data.get("traceback"))
            return
        elif event.kind == "lost":
            attempts[event.run_id] = attempts.get(event.run_id, 0) + 1
            status.running.pop(event.run_id)
            if attempts[event.run_id] <= retries:
                todo.insert(0, current.job)  # tried again first; it may resume from its checkpoint
                if log:
                    log(f"{event.run_id}: {event.data['error']}; trying it again")
            else:
                fail(current.job, event.data["error"] + "; rerun the same command to try it again")
                return
        emit(event)

    def dispatch(job: Job) -> None:
        sources = {role: _source_files(Path(ref) if Path(ref).is_absolute() else runs / ref)
                   for role, ref in job.sources.items()}
        checkpoint = out / "checkpoints" / f"{job.run_id}.ckpt" if executor.checkpoints_in_out else None
        executor.submit(job, payloads, sources, checkpoint)
        status.running[job.run_id] = Running(job, time.monotonic())
        emit(Event("dispatched", job.run_id))

    if todo:
        executor.start()
        status.executor = executor.describe()
        if log:
            log(f"{len(todo)} of {len(plan.jobs)} runs to do; {status.executor}")
    try:
        while todo or status.running:
            for job in list(todo):
                if len(status.running) >= executor.slots:
                    break
                broken = [d for d in job.depends_on if d in status.failed]
                if broken:
                    todo.remove(job)
                    fail(job, f"its source run {broken[0]} failed")
                    continue
                if all((runs / d).is_dir() for d in job.depends_on):
                    todo.remove(job)
                    dispatch(job)
            if not status.running:
                for job in list(todo):  # waiting on runs that will never finish here
                    todo.remove(job)
                    fail(job, "its source runs did not finish")
                break
            executor.wait(deliver)
            left = {key for job in todo for key in job.inputs} | {
                key for r in status.running.values() for key in r.job.inputs}
            if needed - left:
                executor.forget(needed - left)
                for key in needed - left:
                    payloads.pop(key, None)
                needed = left
    except BaseException as exc:
        executor.close(cancel=True)
        if isinstance(exc, Interrupted):  # for its message: "N of M runs finished"
            exc.done, exc.total = status.skipped + status.finished, status.total
        raise
    finally:
        _record_failures(out, failures, {r for r in run_ids if (runs / r).is_dir()})
    emit(Event("done", ""))
    with locked(out):
        write_csv(out / "results.csv", collect_results(out))
    if status.failed:
        names = "; ".join(f"{run_id} ({error})" for run_id, error in list(status.failed.items())[:5])
        more = f" and {len(status.failed) - 5} more" if len(status.failed) > 5 else ""
        raise StudyFailed(f"{len(status.failed)} of {len(plan.jobs)} runs failed: {names}{more}; details in "
                          f"{out / FAILURES}; the other runs are recorded", dict(status.failed))
    return run_ids


def run_plan(plan: Plan, out: str | Path, summarize: Callable, executor: Executor | None = None,
             workers: int | str = 1, threads: int | None = None, ray: str | None = None,
             gpus: int | None = None, progress: Progress | None = None, tracker=None,
             log: Callable[[str], None] | None = None):
    """:func:`execute_plan` on ``executor``, or on one made from ``workers``/``threads``/``ray``
    (closed at the end); returns ``summarize`` of this plan's finished runs. With
    ``workers="auto"`` a grid with one run left to do runs here, with every core."""
    from studybench.pipeline.executors import machine_cores, make_executor, memory_slots

    owned = executor is None
    if owned:
        if workers == "auto" and not ray:
            runs = Path(out) / "runs"
            left = sum(not (runs / job.run_id).is_dir() for job in plan.jobs)
            workers = max(1, min(machine_cores(), left, memory_slots()))
        executor = make_executor(workers, threads, ray, gpus)
    try:
        try:
            run_ids = execute_plan(plan, out, executor, progress, tracker, log=log)
        except StudyFailed as exc:
            finished = [job.run_id for job in plan.jobs if (Path(out) / "runs" / job.run_id).is_dir()]
            exc.result = summarize(collect_results(out, finished))
            raise
    finally:
        if owned:
            executor.close()
    return summarize(collect_results(out, run_ids))
