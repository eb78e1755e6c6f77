"""Preparation shared by the runs of a grid, keyed by content.

Runs of one grid repeat work on the same inputs: ``tfidf_logreg`` and ``tfidf_linear_svm``
fit the same TF-IDF on the same training songs (tuned presets: about 9 s per feature set
on tcc), neural models with the same sequence settings encode the same songs. Each such
step asks :func:`remember` with a key built by :func:`key` from *what it depends on* (its
unfitted settings and the data itself, hashed by joblib, the hashing scikit-learn's
``Pipeline(memory=...)`` uses), so a changed setting or another split is a new entry and
a result can never be reused for the wrong input.

Two layers:

- **memory**: values stay in this process (a worker keeps them between its jobs); the least
  recently used are dropped first.
- **disk, across the workers of a machine**: where several workers run a grid
  (``--workers N``, ``--ray``), a step that says how to store its value (a :class:`Codec`)
  also goes to ``$STUDYBENCH_CACHE/prep/<key>`` (default ``~/.cache/studybench/prep``), so
  the worker that fits a TF-IDF first saves it and the others load it instead of fitting
  it again. A worker making an entry holds a lock on it, so another one needing the same
  entry waits for it rather than doing the work twice. Entries are written under a
  temporary name and renamed, stored without pickle (skops with a trusted-type list for
  scikit-learn objects, ``.npz``/safetensors for arrays, JSON for tokenizers), and the
  least recently used are removed beyond ``STUDYBENCH_PREP_CACHE_GB`` (default 8). The
  folder is node-local: Ray nodes on other machines each keep their own.

``STUDYBENCH_PREP_CACHE=0`` turns both layers off (for measuring what they save).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 12  # a TF-IDF matrix of tcc's training part is ~30 MB; 12 keep a seed's grid
_store: OrderedDict[str, Any] = OrderedDict()
stats = {"hits": 0, "misses": 0, "disk_hits": 0, "disk_writes": 0}
_shared = {"on": False}


class Codec(Generic[T]):
    """How one kind of value is written into, and read back from, a folder of its own."""

    def __init__(self, save: Callable[[T, Path], None], load: Callable[[Path], T]):
        self.save, self.load = save, load


def enabled() -> bool:
    return os.environ.get("STUDYBENCH_PREP_CACHE", "1") != "0"


def share_on_disk(on: bool) -> None:
    """Whether this process also shares entries through the machine's disk cache (the
    worker turns it on when other workers of the same grid may need the same entries)."""
    _shared["on"] = on


def disk_folder() -> Path:
    root = os.environ.get("STUDYBENCH_CACHE") or Path.home() / ".cache" / "studybench"
    return Path(root) / "prep"


def _limit_bytes() -> int:
    return int(float(os.environ.get("STUDYBENCH_PREP_CACHE_GB", "8")) * 2**30)


def key(*parts: Any) -> str:
    """A content hash of ``parts`` (settings, estimators, frames, arrays)."""
    import joblib

    return joblib.hash(parts)


def _keep(name: str, value: Any) -> None:
    _store[name] = value
    while len(_store) > MAX_ENTRIES:
        _store.popitem(last=False)


def _load(entry: Path, codec: Codec[T]) -> tuple[bool, T | None]:
    if not entry.is_dir():
        return False, None
    try:
        value = codec.load(entry)
    except Exception:  # damaged or from an incompatible version: made again below
        shutil.rmtree(entry, ignore_errors=True)
        return False, None
    os.utime(entry)  # recently used: pruned last
    return True, value


def _save(entry: Path, codec: Codec[T], value: T) -> None:
    tmp = entry.with_name(f"{entry.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        codec.save(value, tmp)
        os.replace(tmp, entry)
    except OSError:  # a full or read-only disk: the value is still returned, only not shared
        shutil.rmtree(tmp, ignore_errors=True)
        return
    stats["disk_writes"] += 1
    _prune(entry.parent, keep=entry)


def _prune(folder: Path, keep: Path) -> None:
    """Remove the least recently used entries beyond the size limit."""
    entries = []
    for entry in folder.iterdir():
        if entry.is_dir() and ".tmp-" not in entry.name:
            with contextlib.suppress(OSError):
                size = sum(f.stat().st_size for f in entry.iterdir())
                entries.append((entry.stat().st_mtime, size, entry))
    total, limit = sum(size for _, size, _ in entries), _limit_bytes()
    for _, size, entry in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if entry != keep:
            shutil.rmtree(entry, ignore_errors=True)
            (folder / f"{entry.name}.lock").unlink(missing_ok=True)
            total -= size


def remember(name: str, make: Callable[[], T], codec: Codec[T] | None = None) -> T:
    """The value stored under ``name``, made by ``make()`` the first time (in this process,
    or with ``codec`` and a shared cache, on this machine)."""
    if not enabled():
        return make()
    if name in _store:
        stats["hits"] += 1
        _store.move_to_end(name)
        return _store[name]
    if codec is None or not _shared["on"]:
        stats["misses"] += 1
        value = make()
        _keep(name, value)
        return value
    folder = disk_folder()
    entry = folder / name
    from studybench.records import file_lock

    with file_lock(folder / f"{name}.lock"):  # another worker making it: wait, then load it
        found, value = _load(entry, codec)
        if found:
            stats["disk_hits"] += 1
        else:
            stats["misses"] += 1
            value = make()
            _save(entry, codec, value)
    _keep(name, value)
    return value


def clear() -> None:
    _store.clear()
    stats.update(hits=0, misses=0, disk_hits=0, disk_writes=0)
