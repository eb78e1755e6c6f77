"""Download of the official CIFAR archives into a cache folder, checksum first.

The archive is written to a temporary name, its MD5 (the checksum the CIFAR page
publishes) compared with the expected one, and only then renamed and unpacked
with tarfile's ``data`` filter (no absolute paths, links out of the folder or
device files). A bad checksum deletes the download and says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from studybench.errors import StudybenchError

CHUNK = 1 << 20  # bytes read per step


def cache_dir(cache: str | Path | None = None) -> Path:
    """``cache``, else ``$STUDYBENCH_CACHE``, else ``~/.cache/studybench``."""
    if cache:
        return Path(cache)
    return Path(os.environ.get("STUDYBENCH_CACHE") or Path.home() / ".cache" / "studybench")


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, target: Path, md5: str, progress=None) -> Path:
    """Fetch ``url`` to ``target`` unless a file with checksum ``md5`` is already there.

    ``progress(done_bytes, total_bytes)`` is called as data arrives."""
    if target.is_file() and md5sum(target) == md5:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total, done = int(response.headers.get("Content-Length") or 0), 0
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise StudybenchError(f"{url}: download failed ({reason})") from None
    found = md5sum(partial)
    if found != md5:
        partial.unlink()
        raise StudybenchError(f"{url}: checksum mismatch (MD5 {found}, expected {md5}); "
                              f"the download was deleted, try again")
    os.replace(partial, target)
    return target


def unpack(archive: Path, into: Path) -> None:
    """Unpack a .tar.gz safely into ``into`` (first into a temporary folder, then renamed)."""
    staging = into.with_name(into.name + ".unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StudybenchError(f"{archive}: corrupt archive ({exc})") from None
    into.mkdir(parents=True, exist_ok=True)
    for item in staging.iterdir():
        destination = into / item.name
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(item, destination)
    staging.rmdir()


def fetch_cifar(layout, cache: str | Path | None = None, progress=None) -> Path:
    """The unpacked folder of a CIFAR archive (``layout`` from :mod:`studybench.data.images`)
    in the cache, downloaded and checked first when it is not there yet."""
    root = cache_dir(cache) / layout.name
    folder = root / layout.folder
    if (folder / layout.meta).is_file():
        return folder
    archive = download(layout.url, root / Path(layout.url).name, layout.md5, progress)
    unpack(archive, root)
    if not (folder / layout.meta).is_file():
        raise StudybenchError(f"{archive}: unpacked, but holds no {layout.folder}/{layout.meta}")
    return folder
