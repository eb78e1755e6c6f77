"""The prediction service: endpoints, limits and errors; a property-based run against its own
OpenAPI schema with no 5xx; a bounded load test on loopback; the web page in Chromium."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from browser import browser_page
from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from studybench.bundles import export_bundle  # noqa: E402
from studybench.errors import StudybenchError  # noqa: E402
from studybench.serve import MAX_LYRICS_BYTES, create_app  # noqa: E402


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    from studybench.data.demo_images import demo_images
    from studybench.studies.images import run_images
    from studybench.studies.lyrics import run_lyrics

    tmp = tmp_path_factory.mktemp("serve")
    data = write_rows(tmp / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=16))
    run_lyrics(data, models="tfidf_logreg", features="lyrics+artist", split="artist", seeds="0", out=tmp / "l")
    run_images(demo_images(n_train=10, n_test=4), models="cnn_basic", seeds="0", out=tmp / "i",
               overrides={"model.widths": "4,8,8", "train.epochs": 1, "transfer.arms": "[]"})
    lyrics = export_bundle(next((tmp / "l" / "runs").iterdir()), tmp / "genre")
    images = export_bundle(next((tmp / "i" / "runs").iterdir()), tmp / "patterns")
    return lyrics, images


@pytest.fixture(scope="module")
def client(bundles):
    return TestClient(create_app(list(bundles)), raise_server_exceptions=False)


def _png(size=32, colour=(10, 200, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_health_models_and_predictions(client):
    assert client.get("/health").json() == {"status": "ok", "models": 2}
    models = {m["name"]: m for m in client.get("/models").json()}
    assert set(models) == {"genre", "patterns"} and models["genre"]["study"] == "lyrics"
    answer = client.post("/predict/lyrics", json={"lyrics": "guitar thunder highway engine storm",
                                                  "artist": "Someone New", "top_k": 2}).json()
    assert answer["model"] == "genre" and len(answer["predictions"]) == 2
    assert answer["predictions"][0]["label"] == "rock"
    probabilities = [p["probability"] for p in client.post("/predict/lyrics", json={
        "lyrics": "dance party glitter", "top_k": 100}).json()["predictions"]]
    assert abs(sum(probabilities) - 1) < 1e-6 and probabilities == sorted(probabilities, reverse=True)
    image = client.post("/predict/image", files={"file": ("x.png", _png(), "image/png")}, data={"top_k": "3"})
    assert image.status_code == 200 and len(image.json()["predictions"]) == 3
    assert client.get("/").text.startswith("<!DOCTYPE html>")
    assert "/predict/lyrics" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("request_kwargs, status, detail", [
    ({"json": {"lyrics": ""}}, 422, "lyrics"),
    ({"json": {"lyrics": "   "}}, 422, "lyrics: empty"),
    ({"json": {"lyrics": "x" * (MAX_LYRICS_BYTES + 1)}}, 422, "lyrics"),
    ({"json": {"lyrics": "la la", "model": "patterns"}}, 400, "is for images"),
    ({"json": {"lyrics": "la la", "model": "nope"}}, 404, "no model named 'nope'"),
    ({"content": b"\xff\xfe not json", "headers": {"content-type": "application/json"}}, 400, "parsing the body"),
    ({"json": {"lyrics": "la", "top_k": 0}}, 422, "top_k"),
])
def test_bad_lyrics_requests_are_4xx_with_a_detail(client, request_kwargs, status, detail):
    response = client.post("/predict/lyrics", **request_kwargs)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"] and "Traceback" not in response.text


def test_bad_image_requests_and_size_limits(client):
    response = client.post("/predict/image", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert response.status_code == 422 and "not a readable image" in response.json()["detail"]
    response = client.post("/predict/image", files={"file": ("empty.png", b"", "image/png")})
    assert response.status_code == 422 and "empty upload" in response.json()["detail"]
    big = b"\0" * 10_500_000
    response = client.post("/predict/image", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 413
    assert client.get("/health").status_code == 200  # still serving


def test_unknown_bundle_is_a_startup_error(tmp_path):
    with pytest.raises(StudybenchError, match="no such bundle folder"):
        create_app([tmp_path / "missing"])


def test_schemathesis_finds_no_server_errors(bundles):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    import torch

    torch.set_flush_denormal(False)  # training turned it on; hypothesis needs IEEE subnormals
    app = create_app(list(bundles))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, calls = [], []
    for operation in schema.get_all_operations():
        operation = operation.ok()

        @settings(max_examples=25, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call()
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:200]}")

        check()
    assert failures == []
    assert len(calls) >= 40 and any(c == 200 for c in calls) and any(400 <= c < 500 for c in calls)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(bundles):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(list(bundles)), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_load_on_loopback_has_no_errors(live_server):
    import httpx

    n, workers = 120, 8

    def one(i):
        with httpx.Client(timeout=30) as http:
            started = time.perf_counter()
            response = http.post(f"{live_server}/predict/lyrics", json={"lyrics": f"guitar highway song {i}"})
            return response.status_code, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, range(n)))
    seconds = time.perf_counter() - started
    codes = [code for code, _ in results]
    assert codes == [200] * n
    latencies = np.array([t for _, t in results])
    print(f"{n} requests, {workers} clients: {n / seconds:.0f} req/s, p95 {np.percentile(latencies, 95) * 1000:.0f} ms")


def test_web_page_predicts_a_genre(live_server, tmp_path):
    with browser_page(1000, 800) as (page, problems):
        page.goto(live_server + "/")
        page.wait_for_selector("#lyrics-model option", state="attached")
        page.fill("#lyrics", "Guitar thunder on the highway,\nengine storm and steel tonight")
        page.fill("#artist", "A Band Nobody Knows")
        page.click("#predict-lyrics")
        page.wait_for_selector("#lyrics-result .prediction")
        predicted = page.inner_text("#lyrics-result .prediction")
        bars = page.locator("#lyrics-result .bar").count()
        page.set_input_files("#file", files=[{"name": "x.png", "mimeType": "image/png", "buffer": _png()}])
        page.wait_for_selector("#image-result .prediction")
        page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)
        shown = page.inner_text("#image-result .prediction")
    assert predicted == "rock" and bars >= 3 and shown
    assert problems == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_shuts_down_cleanly_on_a_signal_and_exits_0(bundles, signum):
    """A server's normal end: requests in flight finish, exit 0 (not 143/130 as for a study)."""
    import httpx

    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "studybench.cli", "serve", str(bundles[0]), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "NO_COLOR": "1"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    assert process.poll() is None, process.communicate()[1]
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert f"stopped by {signal.Signals(signum).name}: the server shut down cleanly" in stderr
    assert "Traceback" not in stderr
