"""What runs one job, in whatever process an executor chose: the thread budget, the study's
own steps (named by the job), and the finished run folder handed back as bytes.

A worker never writes into the study's ``--out``: it builds the run in a private temporary
folder and returns the files; the driver alone writes them, atomically.
"""

from __future__ import annotations

import importlib
import os
import socket
import tempfile
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

from studybench.errors import StudybenchError
from studybench.pipeline.jobs import Budget, Event, Inputs, Job, RunFiles

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def budget_environment(budget: Budget) -> dict[str, str]:
    """Environment variables a fresh worker process needs before it imports torch or NumPy."""
    env = {}
    if budget.threads is not None:
        env.update({name: str(budget.threads) for name in THREAD_VARIABLES})
    if budget.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = budget.gpu
    return env


def _restore_environment(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def apply_budget(budget: Budget) -> Callable[[], None]:
    """Hold this process to ``budget.threads``: torch's intra-op pool, the BLAS/OpenMP pools
    already loaded, and the variables read by anything loaded later. Two runs side by side
    on two cores with two threads each were measured 5-15x slower (oversubscription).
    Returns a function that puts the previous settings back."""
    saved = {name: os.environ.get(name) for name in budget_environment(budget)}
    os.environ.update(budget_environment(budget))
    restores = [lambda: _restore_environment(saved)]
    if budget.threads is not None:
        import torch
        from threadpoolctl import threadpool_limits

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(budget.threads)
        limits = threadpool_limits(budget.threads)
        restores += [lambda: torch.set_num_threads(torch_threads), limits.restore_original_limits]

    def restore() -> None:
        for undo in reversed(restores):
            undo()

    return restore


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _runner(name: str) -> Callable:
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


def _read_files(folder: Path) -> RunFiles:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_job(job: Job, inputs: Inputs, budget: Budget, on_event: Callable[[Event], None]) -> Event:
    """Execute ``job`` within ``budget``; return its ``finished`` event (with the run's files)
    or a ``failed`` one (with a one-line error and the traceback). Never raises for a
    problem of the job itself, so one bad run cannot stop a grid."""
    from studybench import memo
    from studybench.records import environment, write_json

    on_event(Event("started", job.run_id, {"pid": os.getpid(), "host": socket.gethostname()}))
    # other workers on this machine may need the same TF-IDF or token ids: share them on disk
    memo.share_on_disk(budget.executor == "ray" or budget.workers > 1)
    try:
        with ExitStack() as stack:
            from joblib import parallel_config

            # scikit-learn's n_jobs=None now means this many (GridSearchCV's folds): the budget,
            # or every core for a serial run left at the defaults
            stack.enter_context(parallel_config(n_jobs=budget.threads or _cores()))
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="studybench-run-")))
            _runner(job.runner)(job, inputs, folder,
                                on_epoch=lambda row: on_event(Event("epoch", job.run_id, row)))
            env = environment()
            env["argv"] = job.context.get("argv") or env["argv"]  # the driver's command line
            env["execution"] = {**asdict(budget), "host": socket.gethostname(), "pid": os.getpid()}
            write_json(folder / "environment.json", env)
            return Event("finished", job.run_id, _read_files(folder))
    except StudybenchError as exc:
        return Event("failed", job.run_id, {"error": str(exc), "traceback": None})
    except Exception as exc:  # a bug or a library's refusal: one line for the grid, the rest kept
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return Event("failed", job.run_id, {"error": f"{type(exc).__name__}: {first}",
                                            "traceback": traceback.format_exc()})
