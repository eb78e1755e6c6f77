"""``--workers N``: a pool of N worker processes on this machine.

Each worker is a fresh (spawned) Python process with its own thread budget, set in its
environment before it imports torch or NumPy, and its own GPU where there are GPUs. It
keeps the payloads it has been sent (a cleaned corpus, a split, an image block), so jobs
that share prepared data receive it once per worker. Workers are started when the first
job needs one, and a worker that dies mid-job (killed, out of memory) costs that job
only: the driver hears ``lost`` and a new worker takes its place.

Messages are pickled by this package on both ends of a private pipe between a parent
and the children it spawned; nothing from outside is unpickled.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from studybench.pipeline.executors import Executor
from studybench.pipeline.jobs import Budget, Event, Inputs, Job


def _send(conn: Connection, message) -> None:
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def exit_with_parent(parent: int, poll: float = 1.0) -> None:
    """End this process the moment its parent ``parent`` (the driver) is gone, even mid-job.

    A driver killed outright (``kill -9``, the out-of-memory killer) cannot stop its workers,
    and a worker only notices at its next message, so it went on training its run to the end:
    an orphan that a rerun of the same command would race on the same run folder. On Linux the
    kernel kills the worker with its parent (``PR_SET_PDEATHSIG``); everywhere a watchdog thread
    also checks the parent every ``poll`` seconds. Either way the worker dies as ``close(cancel=True)``
    kills it: the checkpoint of its last finished epoch stays for the rerun."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass  # no prctl here: the watchdog alone

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    if os.getppid() != parent:  # gone before the death signal was armed
        os._exit(1)
    threading.Thread(target=watch, name="studybench-parent-watch", daemon=True).start()


def worker_main(conn: Connection, budget: Budget, parent: int) -> None:
    """A worker's life: receive payloads and jobs, send events, until told to stop (or until
    its driver, process ``parent``, is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the driver decides
    exit_with_parent(parent)
    from studybench.pipeline.worker import apply_budget, budget_environment, run_job

    os.environ.update(budget_environment(budget))  # before torch or NumPy start their pools
    apply_budget(budget)
    payloads: dict = {}
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the driver is gone
        kind = message[0]
        if kind == "stop":
            return
        if kind == "payload":
            payloads[message[1]] = message[2]
        elif kind == "forget":
            for key in message[1]:
                payloads.pop(key, None)
        elif kind == "job":
            job, sources, checkpoint = message[1:]
            inputs = Inputs({k: payloads[k] for k in job.inputs}, sources, checkpoint)
            outcome = run_job(job, inputs, budget, lambda event: _send(conn, event))
            _send(conn, outcome)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    budget: Budget
    held: set[str] = field(default_factory=set)  # payload keys this worker has
    job: Job | None = None


class LocalPool(Executor):
    """N spawned worker processes, ``threads`` threads each, GPUs handed out in turn."""

    name = "local"

    def __init__(self, workers: int, threads: int, gpus: list[str] | None = None):
        self.slots, self.threads, self.gpus = workers, threads, gpus
        self.context = multiprocessing.get_context("spawn")  # no forked torch or thread pools
        self.workers: list[_Worker] = []
        self.started = 0

    def describe(self) -> str:
        gpus = f", GPUs {','.join(self.gpus)} shared in turn" if self.gpus else ""
        return f"local: {self.slots} worker processes, {self.threads} thread(s) each{gpus}"

    def _spawn(self) -> _Worker:
        gpu = self.gpus[self.started % len(self.gpus)] if self.gpus else None
        budget = Budget("local", self.slots, self.threads, gpu)
        self.started += 1
        parent, child = self.context.Pipe()
        process = self.context.Process(target=worker_main, args=(child, budget, os.getpid()), daemon=True,
                                       name=f"studybench-worker-{self.started}")
        process.start()
        child.close()
        worker = _Worker(process, parent, budget)
        self.workers.append(worker)
        return worker

    def submit(self, job, payloads, sources, checkpoint) -> None:
        for worker in [w for w in self.workers if w.job is None and not w.process.is_alive()]:
            self._drop(worker)  # died between jobs (killed from outside): replaced below
        idle = [w for w in self.workers if w.job is None]
        worker = idle[0] if idle else self._spawn()
        try:
            self._hand(worker, job, payloads, sources, checkpoint)
        except OSError:  # it died just now: a fresh worker takes the job
            self._drop(worker)
            self._hand(self._spawn(), job, payloads, sources, checkpoint)

    def _hand(self, worker: _Worker, job, payloads, sources, checkpoint) -> None:
        for key in job.inputs:
            if key not in worker.held:
                _send(worker.conn, ("payload", key, payloads[key]))
                worker.held.add(key)
        _send(worker.conn, ("job", job, sources, checkpoint))
        worker.job = job

    def _drop(self, worker: _Worker) -> None:
        self.workers.remove(worker)
        worker.process.join(timeout=5)
        worker.conn.close()

    def wait(self, deliver, timeout: float = 0.5) -> None:
        busy = [w for w in self.workers if w.job is not None]
        if not busy:
            return
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        for worker in busy:
            if worker.conn not in ready and worker.process.sentinel not in ready:
                continue
            try:
                while worker.job is not None and worker.conn.poll():
                    event: Event = pickle.loads(worker.conn.recv_bytes())
                    if event.kind in ("finished", "failed"):
                        worker.job = None
                    deliver(event)
            except (EOFError, OSError):
                pass  # the pipe closed: the worker died; handled below
            if worker.job is not None and not worker.process.is_alive():
                worker.process.join()
                code = worker.process.exitcode
                reason = f"killed by signal {-code}" if code and code < 0 else f"exit code {code}"
                job, worker.job = worker.job, None
                self._drop(worker)
                deliver(Event("lost", job.run_id, {
                    "error": f"worker process {worker.process.pid} died mid-run ({reason})",
                    "traceback": None}))

    def forget(self, keys: set[str]) -> None:
        for worker in self.workers:
            dropped = worker.held & keys
            if dropped and worker.job is None:
                _send(worker.conn, ("forget", sorted(dropped)))
                worker.held -= dropped

    def close(self, cancel: bool = False) -> None:
        for worker in self.workers:
            if cancel and worker.job is not None:
                # SIGKILL: the checkpoint of its last finished epoch stays for the rerun (Lightning
                # takes SIGTERM as the end of training, and a finished fit deletes its checkpoint)
                worker.process.kill()
            else:
                try:
                    _send(worker.conn, ("stop",))
                except OSError:
                    pass
        for worker in self.workers:
            worker.process.join(timeout=30)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self.workers = []

