"""Executors: where the jobs of a plan run. One small interface, three engines:

- :class:`SerialExecutor`: one job at a time in this process (the library's default);
- :class:`~studybench.pipeline.local.LocalPool`: ``--workers N`` processes on this machine;
- :class:`~studybench.pipeline.raycluster.RayExecutor`: ``--ray auto|local|ADDRESS``, a Ray
  instance or cluster (imported only when asked for).

The driver (:mod:`studybench.pipeline.driver`) hands a job to :meth:`Executor.submit` with
the payload values it names and its source runs' files, then calls :meth:`Executor.wait`,
which delivers events (started, epoch, finished, failed, lost) as they come.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studybench.errors import StudybenchError
from studybench.pipeline.jobs import Budget, Event, Inputs, Job, RunFiles


def machine_cores() -> int:
    """The cores this process may use (its CPU affinity, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


WORKER_MEMORY = 3 * 1024**3  # bytes a worker may need: a local worker of the tuned lyrics grid
# on tcc peaked at 3.0 GB resident (2.8 GiB; the CNNs' batched prediction), benchmarks/RESULTS.md


def memory_slots() -> int:
    """How many workers this machine's memory holds (four fifths of it, WORKER_MEMORY each)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: no limit from here
        return 1 << 16
    return max(1, int(total * 0.8 // WORKER_MEMORY))


class Executor:
    """Runs jobs; ``slots`` of them at once, each within ``threads`` threads."""

    name = "executor"
    slots = 1
    threads: int | None = None
    checkpoints_in_out = True  # whether training checkpoints may go to the driver's --out

    def start(self) -> None:
        """Acquire workers (called once, before the first job; not for a grid with nothing to do)."""

    def submit(self, job: Job, payloads: dict[str, Any], sources: dict[str, RunFiles],
               checkpoint: Path | None) -> None:
        raise NotImplementedError

    def wait(self, deliver: Callable[[Event], None], timeout: float = 0.5) -> None:
        """Deliver the events that arrive within ``timeout`` seconds (at least one job's end,
        when one ends in that time)."""
        raise NotImplementedError

    def forget(self, keys: set[str]) -> None:
        """Payloads no later job of this plan needs: workers may free them."""

    def close(self, cancel: bool = False) -> None:
        """Release the workers; ``cancel`` stops jobs still running (an interrupted study)."""

    def describe(self) -> str:
        return f"{self.name}: {self.slots} run(s) at once, {self.threads or 'default'} thread(s) each"

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(cancel=exc_type is not None)


class SerialExecutor(Executor):
    """Today's behaviour: one job at a time, in this process, with its thread settings
    (``threads`` None leaves torch and BLAS at their defaults, every core)."""

    name = "serial"

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self.budget = Budget("serial", 1, threads)
        self.queue: list[tuple[Job, Inputs]] = []
        self.restore = None  # puts this process's thread settings back (see close)

    def start(self) -> None:
        from studybench.pipeline.worker import apply_budget

        if self.restore is None:
            self.restore = apply_budget(self.budget)

    def submit(self, job, payloads, sources, checkpoint) -> None:
        self.queue.append((job, Inputs({k: payloads[k] for k in job.inputs}, sources, checkpoint)))

    def wait(self, deliver, timeout: float = 0.5) -> None:
        from studybench.pipeline.worker import run_job

        if self.queue:
            job, inputs = self.queue.pop(0)
            deliver(run_job(job, inputs, self.budget, deliver))

    def close(self, cancel: bool = False) -> None:
        """Put this process's thread settings back as they were before :meth:`start`."""
        self.queue.clear()
        if self.restore is not None:
            self.restore()
            self.restore = None


def check_execution(workers: int | str | None, threads: int | None, ray: str | None) -> tuple[int, int | None]:
    """``(workers, threads)`` checked against each other and this machine's cores, before any
    data is read: what ``--workers``, ``--threads`` and ``--ray`` may be. With several workers
    ``threads`` defaults to the cores divided among them; one worker keeps None (as is)."""
    cores = machine_cores()
    if threads is not None and threads < 1:
        raise StudybenchError(f"--threads {threads}: expected 1 or more")
    if ray:
        if workers not in (None, 1, "1", "auto"):
            raise StudybenchError("--ray and --workers exclude each other: a Ray cluster schedules "
                                  "by its own CPUs (use --threads to size each run)")
        return 1, threads
    if workers in (None, "auto"):
        workers = cores
    try:
        workers = int(workers)
    except ValueError:
        raise StudybenchError(f"--workers {workers}: expected a whole number or auto") from None
    if workers < 1:
        raise StudybenchError(f"--workers {workers}: expected 1 or more (or auto)")
    if workers > 1:
        threads = threads or max(1, cores // workers)
        if workers * threads > cores:
            raise StudybenchError(f"--workers {workers} x --threads {threads} exceeds this machine's "
                                  f"{cores} cores; runs side by side would slow each other down")
    return workers, threads


def make_executor(workers: int | str | None = 1, threads: int | None = None, ray: str | None = None,
                  gpus: int | None = None, gpus_per_run: float | None = None) -> Executor:
    """The executor for ``--workers`` / ``--threads`` / ``--ray`` / ``--gpus``.

    ``workers``: 1 (serial, in this process), N (a pool of N processes), or ``"auto"``
    (one worker per core, one thread each: measured fastest for a grid on 2 cores, see
    benchmarks/RESULTS.md). ``threads``: per run; by default the cores divided among the
    workers (serial: left as is). ``ray``: ``auto`` joins a running local Ray instance or
    starts one, ``local`` always starts a fresh one, anything else is a cluster address.
    ``gpus``: GPUs of this machine to share among local workers (default: all that torch
    sees); ``gpus_per_run``: the GPU share a Ray job asks for (default 1 where the cluster
    has GPUs, else 0)."""
    workers, threads = check_execution(workers, threads, ray)
    if ray:
        from studybench.pipeline.raycluster import RayExecutor

        return RayExecutor(ray, threads or 1, gpus_per_run)
    if workers == 1:
        return SerialExecutor(threads)
    from studybench.pipeline.local import LocalPool

    return LocalPool(workers, threads, gpu_slots(gpus))


def gpu_slots(gpus: int | None) -> list[str] | None:
    """CUDA device ids to hand out to local workers in turn (None where there is no GPU)."""
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count()
    if gpus < 0:
        raise StudybenchError(f"--gpus {gpus}: expected 0 or more")
    return [str(i) for i in range(gpus)] or None
