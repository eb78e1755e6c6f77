"""Load test of `studybench serve` on loopback: a fixed number of requests from a fixed
number of concurrent clients, bounded in time; prints throughput, latency percentiles and
the count of non-200 answers.

    python benchmarks/serve_load.py BUNDLE [BUNDLE ...] [--requests 400] [--clients 8] [--timeout 120]
"""

from __future__ import annotations

import argparse
import io
import platform
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from studybench.serve import create_app

LYRICS = ["Guitar thunder on the highway, engine storm and steel",
          "Dance tonight at the party, baby, shine like a star",
          "Whiskey on the porch, boots in the dirt, the county fair"]


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (20, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=120, help="seconds before the test gives up")
    args = parser.parse_args()
    app = create_app(args.bundles)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    studies = {m["study"] for m in httpx.get(f"{base}/models").json()}
    image = _png()
    print(f"# {platform.machine()}; {args.requests} requests per endpoint, {args.clients} concurrent clients")
    print("| endpoint | requests | errors | throughput req/s | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for study, path in (("lyrics", "/predict/lyrics"), ("images", "/predict/image")):
        if study not in studies:
            continue

        def one(i, path=path, study=study):
            with httpx.Client(timeout=30) as http:
                started = time.perf_counter()
                if study == "lyrics":
                    response = http.post(base + path, json={"lyrics": LYRICS[i % 3] + f" {i}"})
                else:
                    response = http.post(base + path, files={"file": ("x.png", image, "image/png")})
                return response.status_code, time.perf_counter() - started

        started = time.perf_counter()
        results = []
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [pool.submit(one, i) for i in range(args.requests)]
            for future in as_completed(futures, timeout=args.timeout):
                results.append(future.result())
        seconds = time.perf_counter() - started
        latencies = np.array([t for _, t in results]) * 1000
        errors = sum(code != 200 for code, _ in results)
        print(f"| POST {path} | {len(results)} | {errors} | {len(results) / seconds:,.0f} | "
              f"{np.percentile(latencies, 50):.0f} | {np.percentile(latencies, 95):.0f} |", flush=True)
    server.should_exit = True


if __name__ == "__main__":
    main()
