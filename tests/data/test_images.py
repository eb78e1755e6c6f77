"""Image data: both CIFAR pickle layouts, the restricted unpickler, image folders,
downloads from a local server, class blocks and stratified fractions."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import pytest
import torch
from conftest import write_cifar

from studybench.data import images as im
from studybench.data.download import fetch_cifar
from studybench.errors import StudybenchError


def test_reads_cifar10_layout(tmp_path):
    write_cifar(tmp_path, "cifar10", n_train=10, n_test=4)
    data = im.load_images(tmp_path)  # found inside the folder given
    assert data.name == "cifar10"
    assert data.train.images.shape == (100, 3, 32, 32) and data.train.images.dtype == torch.uint8
    assert data.test.images.shape == (40, 3, 32, 32)
    assert data.train.classes[:2] == ("class0", "class1")
    assert torch.bincount(data.train.labels).tolist() == [10] * 10
    # R, G, B planes: class 0 has its cast in the red plane
    red = data.train.images[data.train.labels == 0][:, 0].float().mean()
    green = data.train.images[data.train.labels == 0][:, 1].float().mean()
    assert red > green + 40


def test_reads_cifar100_layout_with_fine_labels(tmp_path):
    folder = write_cifar(tmp_path, "cifar100", n_train=3, n_test=2, n_classes=20)
    data = im.load_images(folder)  # or the archive folder itself
    assert data.name == "cifar100" and len(data.train.classes) == 20
    assert data.train.classes[19] == "fine19"
    assert len(data.train) == 60 and len(data.test) == 40
    assert data.train.labels.max() == 19  # fine, not coarse, labels


def test_python3_pickles_are_read_too(tmp_path):
    write_cifar(tmp_path, "cifar10", n_train=5, n_test=1, protocol=4)
    assert len(im.load_images(tmp_path).train) == 50


class Exploit:
    """Unpickling this calls os.system: the classic malicious pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code(tmp_path):
    folder = write_cifar(tmp_path, "cifar10", n_train=2, n_test=1)
    marker = tmp_path / "pwned"
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": Exploit(marker)}, protocol=2))
    with pytest.raises(StudybenchError, match=r"batches.meta: not a CIFAR pickle \(refused to load posix.system"):
        im.load_images(tmp_path)
    assert not marker.exists()  # nothing ran
    # the same pickle would run code through the standard unpickler: the test is real
    pickle.loads((folder / "batches.meta").read_bytes())
    assert marker.exists()


def test_truncated_pickle_is_a_clear_error(tmp_path):
    folder = write_cifar(tmp_path, "cifar10", n_train=2, n_test=1)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StudybenchError, match=r"data_batch_3: truncated or corrupt pickle"):
        im.load_images(tmp_path)


def test_wrong_shapes_and_labels_are_named(tmp_path):
    folder = write_cifar(tmp_path, "cifar10", n_train=2, n_test=1)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}))
    with pytest.raises(StudybenchError, match=r"test_batch: 'data' is not a uint8 array"):
        im.load_images(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}))
    with pytest.raises(StudybenchError, match=r"test_batch: a label is outside 0..9"):
        im.load_images(tmp_path)


def test_missing_folder_and_wrong_dataset(tmp_path):
    with pytest.raises(StudybenchError, match="nowhere: no such folder"):
        im.load_images(tmp_path / "nowhere")
    write_cifar(tmp_path, "cifar10", n_train=2, n_test=1)
    with pytest.raises(StudybenchError, match=r"no cifar-100-python/meta here"):
        im.load_images(tmp_path, "cifar100")
    with pytest.raises(StudybenchError, match="unknown dataset 'imagenet'"):
        im.load_images(tmp_path, "imagenet")


def _png(path, colour, size=8):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)


def test_image_folder_per_class_resized(tmp_path):
    for i in range(3):
        _png(tmp_path / "imgs" / "cat" / f"{i}.png", (200, 10, 10))
        _png(tmp_path / "imgs" / "dog" / f"{i}.png", (10, 10, 200), size=40)
    (tmp_path / "imgs" / "dog" / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored
    data = im.load_images(tmp_path / "imgs")
    assert data.name == "folder" and data.test is None
    assert data.train.classes == ("cat", "dog") and data.train.images.shape == (6, 3, 32, 32)
    assert data.train.images[0, 0, 0, 0] == 200 and data.train.images[3, 2, 5, 5] == 200


def test_image_folder_with_train_and_test(tmp_path):
    for split in ("train", "test"):
        for name, colour in (("a", (1, 2, 3)), ("b", (4, 5, 6))):
            _png(tmp_path / split / name / "x.png", colour)
    data = im.load_images(tmp_path, size=8)
    assert len(data.train) == 2 and len(data.test) == 2 and data.test.images.shape[-1] == 8


def test_non_image_file_is_named(tmp_path):
    _png(tmp_path / "cat" / "0.png", (1, 1, 1))
    _png(tmp_path / "dog" / "0.png", (2, 2, 2))
    (tmp_path / "cat" / "notes.txt").write_text("not a picture")
    with pytest.raises(StudybenchError, match=r"cat/notes.txt: not a readable image"):
        im.load_images(tmp_path)


# --------------------------------------------------------------------------- downloads


def _archive(tmp_path) -> bytes:
    """A .tar.gz of a small CIFAR-10 folder, as the official archive is laid out."""
    folder = write_cifar(tmp_path / "src", "cifar10", n_train=2, n_test=1)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over ``tmp_path / "www"``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


def test_download_verifies_unpacks_and_caches(tmp_path, server):
    url, root = server
    payload = _archive(tmp_path)
    (root / "cifar-10-python.tar.gz").write_bytes(payload)
    layout = dataclasses.replace(im.LAYOUTS["cifar10"], url=f"{url}/cifar-10-python.tar.gz",
                                 md5=hashlib.md5(payload).hexdigest())
    seen = []
    folder = fetch_cifar(layout, tmp_path / "cache", progress=lambda done, total: seen.append((done, total)))
    assert folder == tmp_path / "cache" / "cifar10" / "cifar-10-batches-py"
    assert seen[-1] == (len(payload), len(payload))
    assert len(im.read_cifar(folder, "cifar10").train) == 20
    (root / "cifar-10-python.tar.gz").unlink()  # the server has nothing now: the cache serves
    assert fetch_cifar(layout, tmp_path / "cache") == folder


def test_download_with_bad_checksum_is_refused_and_deleted(tmp_path, server):
    url, root = server
    (root / "cifar-10-python.tar.gz").write_bytes(_archive(tmp_path))
    layout = dataclasses.replace(im.LAYOUTS["cifar10"], url=f"{url}/cifar-10-python.tar.gz", md5="0" * 32)
    with pytest.raises(StudybenchError, match="checksum mismatch"):
        fetch_cifar(layout, tmp_path / "cache")
    assert not any((tmp_path / "cache" / "cifar10").iterdir())  # no archive, no partial file


def test_download_failure_and_corrupt_archive(tmp_path, server):
    url, root = server
    layout = dataclasses.replace(im.LAYOUTS["cifar10"], url=f"{url}/missing.tar.gz")
    with pytest.raises(StudybenchError, match="missing.tar.gz: download failed"):
        fetch_cifar(layout, tmp_path / "cache")
    junk = b"this is not a gzip file"
    (root / "junk.tar.gz").write_bytes(junk)
    layout = dataclasses.replace(layout, url=f"{url}/junk.tar.gz", md5=hashlib.md5(junk).hexdigest())
    with pytest.raises(StudybenchError, match="corrupt archive"):
        fetch_cifar(layout, tmp_path / "cache")


def test_official_sources_are_the_published_ones():
    assert im.LAYOUTS["cifar10"].url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert im.LAYOUTS["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    assert im.LAYOUTS["cifar100"].url == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    assert im.LAYOUTS["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"


# --------------------------------------------------------------------------- blocks and fractions


def test_blocks_are_disjoint_complete_and_reproducible():
    blocks = im.class_blocks(100, 2, seed=3)
    assert [len(b) for b in blocks] == [50, 50]
    assert set(blocks[0]).isdisjoint(blocks[1]) and set(blocks[0]) | set(blocks[1]) == set(range(100))
    assert im.class_blocks(100, 2, seed=3) == blocks
    assert im.class_blocks(100, 2, seed=4) != blocks
    assert [len(b) for b in im.class_blocks(10, 3, 0)] == [4, 3, 3]
    with pytest.raises(StudybenchError, match="data.blocks=11"):
        im.class_blocks(10, 11, 0)


def test_select_classes_relabels_in_block_order():
    images = im.ImageSet(torch.zeros(6, 3, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 2, 3, 2, 0]),
                         ("a", "b", "c", "d"))
    block = im.select_classes(images, [2, 0])
    assert block.classes == ("c", "a") and block.labels.tolist() == [1, 0, 0, 1]


def test_keep_fraction_is_stratified_and_seeded():
    labels = torch.arange(5).repeat_interleave(40)
    images = im.ImageSet(torch.arange(200, dtype=torch.uint8)[:, None, None, None].expand(200, 3, 1, 1),
                         labels, tuple("abcde"))
    kept = im.keep_fraction(images, 0.1, seed=1)
    assert torch.bincount(kept.labels).tolist() == [4] * 5
    assert torch.equal(kept.images, im.keep_fraction(images, 0.1, seed=1).images)
    assert not torch.equal(kept.images, im.keep_fraction(images, 0.1, seed=2).images)
    assert im.keep_fraction(images, 1.0, 0) is images
    with pytest.raises(StudybenchError, match="train_fraction=1.5"):
        im.keep_fraction(images, 1.5, 0)
