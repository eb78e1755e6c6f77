"""``--ray auto|local|ADDRESS``: jobs as Ray tasks, on this machine or a cluster.

No shared file system is assumed. Prepared data goes into Ray's object store once (one
``ray.put`` per payload) and each worker process keeps what it fetched for its next
jobs; a transfer arm's block-1 source runs travel as file bytes with the job; a finished
run comes back as bytes and the driver writes it. Training checkpoints stay on the
worker's node (``$STUDYBENCH_CACHE/checkpoints``), so a rerun that lands on the same node
resumes there. Each task asks Ray for ``threads`` CPUs (Ray also sets OMP_NUM_THREADS) and
for ``gpus_per_run`` GPUs where the cluster has GPUs, so several runs share a node's GPUs.

Ray is imported only here, and this module only when ``--ray`` is given.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import OrderedDict
from pathlib import Path

from studybench.errors import StudybenchError
from studybench.pipeline.executors import Executor
from studybench.pipeline.jobs import Budget, Event, Inputs

HELD_PAYLOADS = 8  # prepared-data objects a Ray worker process keeps between tasks
_held: OrderedDict = OrderedDict()  # in each Ray worker process: payload key -> value


def _node_cache() -> Path:
    return Path(os.environ.get("STUDYBENCH_CACHE") or Path.home() / ".cache" / "studybench")


def _fetch(refs: dict) -> dict:
    """This task's payload values: from this process's memory, else from the object store."""
    import ray

    values = {}
    for key, ref in refs.items():
        if key not in _held:
            _held[key] = ray.get(ref)
            while len(_held) > HELD_PAYLOADS:
                _held.popitem(last=False)
        _held.move_to_end(key)
        values[key] = _held[key]
    return values


def ray_task(job, boxed_refs: list, sources: dict, budget: Budget, queue) -> Event:
    """The body of every Ray task: one job, run like any other worker runs it."""
    from dataclasses import replace

    from studybench.pipeline.worker import apply_budget, run_job

    budget = replace(budget, gpu=os.environ.get("CUDA_VISIBLE_DEVICES") or None)  # Ray's choice
    apply_budget(budget)
    checkpoint = _node_cache() / "checkpoints" / f"{job.run_id}.ckpt"
    inputs = Inputs(_fetch(boxed_refs[0]), sources, checkpoint)

    def send(event: Event) -> None:
        try:
            queue.put_nowait(event)
        except Exception:  # a full or lost progress queue must not fail the run
            pass

    return run_job(job, inputs, budget, send)


class RayExecutor(Executor):
    """Jobs as Ray tasks with ``threads`` CPUs (and ``gpus_per_run`` GPUs) each."""

    name = "ray"
    checkpoints_in_out = False  # workers may be other machines

    def __init__(self, address: str, threads: int = 1, gpus_per_run: float | None = None):
        self.address, self.threads, self.gpus_per_run = address, threads, gpus_per_run
        self.refs: dict[str, object] = {}
        self.pending: dict = {}
        self.owns = False
        self.checked = 0.0
        self.cluster = f"{address}, not connected yet"

    def start(self) -> None:
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise StudybenchError("--ray needs Ray: `pip install ray`") from None
        if not ray.is_initialized():
            address = None if self.address == "auto" else self.address
            # ray.init swaps the driver's SIGTERM handler for sys.exit(15): keep the command's own
            # (exit 143 with "interrupted: N of M runs finished", the executor cancelled first)
            handlers = ({sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
                        if threading.current_thread() is threading.main_thread() else {})
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise StudybenchError(f"--ray {self.address}: cannot start or reach Ray "
                                      f"({str(exc).splitlines()[0][:200]})") from None
            finally:
                for sig, handler in handlers.items():
                    if handler is not None:
                        signal.signal(sig, handler)
            self.owns = True
        self._resources()
        self.queue = Queue(actor_options={"num_cpus": 0})
        self.remote = ray.remote(ray_task)

    def _resources(self) -> None:
        """Slots from the cluster's CPUs (nodes may join while a grid runs)."""
        import ray

        resources = ray.cluster_resources()
        if self.gpus_per_run is None:
            self.gpus_per_run = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        self.slots = max(1, int(resources.get("CPU", 1) // self.threads))
        self.cluster = (f"{len(ray.nodes())} node(s), {resources.get('CPU', 0):g} CPUs, "
                        f"{resources.get('GPU', 0):g} GPUs")
        self.checked = time.monotonic()

    def describe(self) -> str:
        gpus = f", {self.gpus_per_run:g} GPU each" if self.gpus_per_run else ""
        return f"ray ({self.cluster}): {self.slots} run(s) at once, {self.threads} thread(s){gpus}"

    def submit(self, job, payloads, sources, checkpoint) -> None:
        import ray

        for key in job.inputs:
            if key not in self.refs:
                self.refs[key] = ray.put(payloads[key])
        budget = Budget("ray", self.slots, self.threads)
        ref = self.remote.options(num_cpus=self.threads, num_gpus=self.gpus_per_run, max_retries=0,
                                  name=job.run_id).remote(
            job, [{k: self.refs[k] for k in job.inputs}], sources, budget, self.queue)
        self.pending[ref] = job

    def _drain(self, deliver) -> None:
        try:
            events = self.queue.get_nowait_batch(self.queue.qsize())
        except Exception:
            events = []
        for event in events:
            deliver(event)

    def wait(self, deliver, timeout: float = 0.5) -> None:
        import ray
        from ray.exceptions import RayTaskError, TaskCancelledError

        self._drain(deliver)
        if time.monotonic() - self.checked > 10:
            self._resources()
        if not self.pending:
            return
        ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        self._drain(deliver)  # the epoch events of a job that just ended come before its end
        for ref in ready:
            job = self.pending.pop(ref)
            try:
                deliver(ray.get(ref))
            except (RayTaskError, TaskCancelledError) as exc:
                deliver(Event("failed", job.run_id, {"error": f"Ray task failed: {str(exc).splitlines()[0][:300]}",
                                                     "traceback": str(exc)}))
            except Exception as exc:  # the worker or its node died: the run is lost, not wrong
                deliver(Event("lost", job.run_id, {"error": f"{type(exc).__name__}: "
                                                            f"{str(exc).splitlines()[0][:300]}",
                                                   "traceback": None}))

    def forget(self, keys: set[str]) -> None:
        for key in keys:
            self.refs.pop(key, None)  # the object store frees what nothing references

    def close(self, cancel: bool = False) -> None:
        import ray

        if not ray.is_initialized():
            return
        if cancel:
            for ref in self.pending:
                ray.cancel(ref, force=True)
        self.pending.clear()
        self.refs.clear()
        try:
            ray.kill(self.queue.actor)
        except Exception:  # already gone with its cluster
            pass
        if self.owns:
            ray.shutdown()
            self.owns = False
