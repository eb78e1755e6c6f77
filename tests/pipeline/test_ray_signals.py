"""``ray.init`` replaces the driver's SIGTERM handler with ``sys.exit(15)``; the Ray executor
puts the command's own back, so ``--ray`` runs end like the others on a signal (exit 143 and
the interrupted line). Ray itself is not started here: its ``init`` is replaced by one that
does to the handlers what the real one does."""

from __future__ import annotations

import signal
import sys

import pytest

ray = pytest.importorskip("ray")


def test_the_command_keeps_its_signal_handlers_after_ray_starts(monkeypatch):
    from studybench.errors import stop_on_signals
    from studybench.pipeline.raycluster import RayExecutor

    def ray_like_init(**kwargs):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))  # as ray.init does

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", ray_like_init)
    monkeypatch.setattr(ray, "remote", lambda function: function)
    monkeypatch.setattr("ray.util.queue.Queue", lambda **kwargs: None)
    monkeypatch.setattr(RayExecutor, "_resources", lambda self: None)
    try:
        stop_on_signals()
        ours = signal.getsignal(signal.SIGTERM)
        RayExecutor("local").start()
        assert signal.getsignal(signal.SIGTERM) is ours
        assert signal.getsignal(signal.SIGINT) is ours
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
