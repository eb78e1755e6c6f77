"""The one exception type a user should ever see.

Anything raised as :class:`StudybenchError` is a problem with the user's input
(a file, a column, a key, a value). The CLI prints its message on one line and
exits with code 2; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class StudybenchError(Exception):
    """A problem with the user's input; the message names the file, row or key."""

    exit_code = 2


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached a command: it stops at once, finished runs stay recorded, the
    current run's checkpoint stays for the rerun, and the exit code is 128 + the signal (130,
    143), as shells expect. A BaseException, like KeyboardInterrupt, so that no ``except
    Exception`` (a run's failure handling, a library's) swallows it; not a KeyboardInterrupt,
    which Lightning turns into ``sys.exit(1)``. The driver fills in ``done`` and ``total``."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum
        self.done: int | None = None
        self.total: int | None = None

    @property
    def name(self) -> str:
        import signal

        return signal.Signals(self.signum).name

    def message(self) -> str:
        name = self.name
        if self.total is None:
            return f"interrupted: finished runs are kept; rerun the same command to resume ({name})"
        return f"interrupted: {self.done} of {self.total} runs finished; rerun the same command to resume ({name})"


def stop_on_signals() -> None:
    """Make SIGTERM and SIGINT raise :class:`Interrupted` in the main thread (once: a second
    signal gets the default behaviour, so a stuck clean-up can still be ended)."""
    import signal

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
