"""The run folder is the record: atomic writes, environment capture, run ids.

Nothing is ever half-written. A file is written to a temporary name in the same
folder and renamed; a run is built in a temporary folder and renamed into place
when complete, so a run folder that exists is a finished run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from studybench.errors import StudybenchError

PACKAGES = ("studybench", "numpy", "pandas", "scikit-learn", "scipy", "skops", "torch", "stopwordsiso")


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive lock held on ``path`` (created if missing) for the ``with`` block, across
    processes of this machine (no-op without fcntl: not POSIX)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_input_text(path: str | Path, what: str) -> str:
    """The text of a file someone named (a config, a README, a record): missing, a folder, not
    UTF-8 or unreadable is a one-line error naming the file and ``what`` it should be."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudybenchError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise StudybenchError(f"{path}: is a folder, expected a {what}") from None
    except UnicodeDecodeError:
        raise StudybenchError(f"{path}: not a readable {what} (not UTF-8 text)") from None
    except OSError as exc:
        raise StudybenchError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_record(path: str | Path, what: str = "record", keys: tuple[str, ...] = ()) -> dict:
    """A JSON object written by studybench (``config.json``, ``bundle.json``, ``model.json``),
    read from a folder that may be damaged or foreign: missing, unreadable, not JSON, not an
    object or without one of ``keys`` is a one-line error naming the file."""
    path = Path(path)
    try:
        data = json.loads(read_input_text(path, what))
    except ValueError as exc:
        raise StudybenchError(f"{path}: not a readable {what} (invalid JSON: {exc})") from None
    if not isinstance(data, dict):
        raise StudybenchError(f"{path}: not a readable {what} (a JSON {type(data).__name__}, not an object)")
    missing = [k for k in keys if k not in data]
    if missing:
        raise StudybenchError(f"{path}: not a complete {what} (no {missing[0]!r})")
    return data


def check_out_folder(out: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output folder that cannot be one: an existing file, or a
    path under a file. Nothing is created here."""
    out = Path(out)
    for place in (out, *out.parents):
        if place.exists():
            if not place.is_dir():
                raise StudybenchError(f"{option} {out}: not a folder ({place} is a file)")
            if not os.access(place, os.W_OK | os.X_OK):
                raise StudybenchError(f"{option} {out}: not writable ({place})")
            break
    return out


@contextlib.contextmanager
def complete_description(path: str | Path, what: str = "model") -> Iterator[None]:
    """Reading a saved model's description inside this block: any failure but a
    :class:`StudybenchError` (a missing key, a wrong type: a damaged file fails in many ways)
    becomes one line naming ``path``."""
    try:
        yield
    except StudybenchError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise StudybenchError(f"{path}: not a complete {what} description "
                              f"({type(exc).__name__}: {str(exc)[:120]})") from None


def read_model_json(path: str | Path, version: int, what: str, kind: str | None = None) -> dict:
    """A saved model's ``model.json``; unreadable, of another format version (or of another
    ``kind``) is a one-line error naming ``what`` ("model", "image model")."""
    meta = read_record(path, f"{what} description")
    if meta.get("format_version") != version or (kind is not None and meta.get("kind") != kind):
        raise StudybenchError(f"{path}: {what} format {meta.get('format_version')} is not supported "
                              f"(this studybench reads {version})")
    return meta


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False))


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file: runs on different data never share an id."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def config_hash(config: dict) -> str:
    """A short, stable hash of a JSON-ready config."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]


def git_commit() -> dict[str, Any]:
    """The commit of the studybench source, if it runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return {"commit": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def environment() -> dict[str, Any]:
    """Versions and hardware, saved with every run (read from metadata: nothing is imported)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        # BLAS and torch reductions sum in a thread-dependent order: an lbfgs fit on 1 thread and
        # on 2 can end a few thousandths apart, so the thread settings are part of "same machine".
        "threads": {**{k: os.environ.get(k) for k in THREAD_VARIABLES},
                    "torch": sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None},
        "packages": versions,
        "git": git_commit(),
        "argv": sys.argv,
    }


class RunWriter:
    """Builds one run in ``<final>.partial`` and renames it to ``<final>`` when complete."""

    def __init__(self, final: Path):
        self.final = Path(final)
        self.tmp = self.final.with_name(self.final.name + ".partial")

    def __enter__(self) -> Path:
        if self.tmp.exists():
            shutil.rmtree(self.tmp)  # left by a crash: a partial run is never resumed from
        self.tmp.mkdir(parents=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.final)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def command_line(argv: list[str] | tuple[str, ...]) -> str:
    """A command line as a user types it: the program shown as ``studybench`` whether it ran as
    the installed entry point (``/path/.venv/bin/studybench``) or as ``python -m studybench.cli``
    (whose ``argv[0]`` is the module's file)."""
    import shlex

    argv = list(argv)
    if argv:
        program = Path(argv[0])
        if program.name == "studybench" or (program.parent.name == "studybench"
                                            and program.name in ("cli.py", "__main__.py")):
            argv[0] = "studybench"
    return shlex.join(argv)


def record_plan(out: str | Path, run_ids: list[str]) -> None:
    """Add this command and the runs it will make to ``out/plan.json``, so that a report can
    name the runs an interrupted study has not finished yet."""
    from datetime import datetime, timezone

    path = Path(out) / "plan.json"
    try:
        plan = read_json(path) if path.is_file() else {"commands": []}
    except (OSError, ValueError):
        plan = {"commands": []}  # a damaged plan is rebuilt from this command on
    command = command_line(sys.argv)
    entries = [e for e in plan.get("commands", []) if e.get("run_ids") != run_ids]
    entries.append({"command": command, "run_ids": run_ids,
                    "planned": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    write_json(path, {"commands": entries})

