"""Preparation shared by the runs of one process, keyed by content.

Runs of one grid repeat work on the same inputs: ``tfidf_logreg`` and ``tfidf_linear_svm``
fit the same TF-IDF on the same training songs (tuned presets: about 9 s per feature set
on tcc), neural models with the same sequence settings encode the same songs. Each such
step asks :func:`remember` with a key built by :func:`key` from *what it depends on* (its
unfitted settings and the data itself, hashed by joblib, the hashing scikit-learn's
``Pipeline(memory=...)`` uses), so a changed setting or another split is a new entry and
a result can never be reused for the wrong input. Values stay in this process's memory
(a worker keeps them between its jobs); the least recently used are dropped first.

``STUDYBENCH_PREP_CACHE=0`` turns it off (for measuring what it saves).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 12  # a TF-IDF matrix of tcc's training part is ~30 MB; 12 keep a seed's grid
_store: OrderedDict[str, Any] = OrderedDict()
stats = {"hits": 0, "misses": 0}


def enabled() -> bool:
    return os.environ.get("STUDYBENCH_PREP_CACHE", "1") != "0"


def key(*parts: Any) -> str:
    """A content hash of ``parts`` (settings, estimators, frames, arrays)."""
    import joblib

    return joblib.hash(parts)


def remember(name: str, make: Callable[[], T]) -> T:
    """The value stored under ``name``, made by ``make()`` the first time."""
    if not enabled():
        return make()
    if name in _store:
        stats["hits"] += 1
        _store.move_to_end(name)
        return _store[name]
    stats["misses"] += 1
    value = make()
    _store[name] = value
    while len(_store) > MAX_ENTRIES:
        _store.popitem(last=False)
    return value


def clear() -> None:
    _store.clear()
    stats.update(hits=0, misses=0)
