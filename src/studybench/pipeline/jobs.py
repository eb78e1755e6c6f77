"""What the run pipeline moves around: planned jobs, what a worker gets with one, and the
events it sends back. Everything here pickles, so a job can go to another process or
another machine as it is; nothing here imports torch or a study."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RunFiles = dict[str, bytes]  # a finished run folder: relative path -> content


@dataclass(frozen=True)
class DataRef:
    """The input data a job reads, as given on the command line, and its content digest
    (SHA-256): workers receive the data itself through the executor, never the path."""

    path: str
    digest: str


@dataclass(frozen=True)
class Job:
    """One run of a study, fully described before anything executes.

    ``record`` is what the run id hashes (study, model, feature set or arm, preset, seed,
    resolved parameters and configuration, data digests, sources) and the start of the
    run's ``config.json``; the other fields name parts of it for the driver and workers."""

    run_id: str
    study: str  # lyrics | images
    runner: str  # "module:function" that executes the job in a worker (see worker.run_job)
    model: str  # registry name, or transfer:<arm>
    variant: str | None  # the feature set (lyrics) or the transfer arm (images)
    preset: str
    seed: int
    record: dict[str, Any]
    data: DataRef | None
    inputs: tuple[str, ...] = ()  # payload keys: prepared data the worker needs (see Plan.payloads)
    sources: dict[str, str] = field(default_factory=dict)  # role -> run id in this plan or an
    # absolute path to a finished run folder (the block-1 models a transfer arm starts from)
    cost: float = 1.0  # relative size (e.g. epochs x images), so a pool starts the largest first
    params: Any = None  # the model's resolved parameter dataclass (its JSON form is in record)
    settings: Any = None  # the study's resolved configuration dataclass
    context: dict[str, Any] = field(default_factory=dict)  # facts for config.json, not hashed

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Run ids of this plan that must finish before this job can start."""
        return tuple(v for v in self.sources.values() if not Path(v).is_absolute())


@dataclass
class Plan:
    """A study's jobs and the prepared data they share.

    ``payloads`` maps a content key (data digest, split settings, seed, ...) to a function
    that computes the value: the driver calls each once, before the first run starts, for
    the runs left to do, and the executor hands the value to every worker that runs such a
    job (once per worker process)."""

    study: str
    jobs: list[Job]
    payloads: dict[str, Callable[[], Any]] = field(default_factory=dict)


@dataclass
class Inputs:
    """What a worker receives with a job: the payload values it names, the files of its
    source runs (role -> {file name: bytes}) and where to keep its training checkpoint."""

    payloads: dict[str, Any]
    sources: dict[str, RunFiles]
    checkpoint: Path | None


@dataclass(frozen=True)
class Budget:
    """The share of a machine one run may use, recorded in its ``environment.json``."""

    executor: str  # serial | local | ray
    workers: int  # runs at once on this machine (serial, local) or slots in the cluster (ray)
    threads: int | None  # torch, BLAS/OpenMP and scikit-learn n_jobs; None: leave the defaults
    gpu: str | None = None  # CUDA_VISIBLE_DEVICES for the run; None: untouched


@dataclass
class Event:
    """Something that happened to a job: started, epoch, finished, failed or lost (its
    worker died). ``data``: the pid and host (started), the epoch's metrics (epoch), the run
    files (finished), the one-line error and a traceback (failed, lost)."""

    kind: str
    run_id: str
    data: Any = None
