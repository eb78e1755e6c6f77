"""``studybench serve``: a small FastAPI service over one or more bundles, with a web page.

Endpoints: ``GET /health``, ``GET /models``, ``POST /predict/lyrics`` (JSON),
``POST /predict/image`` (multipart upload), the OpenAPI schema at ``/openapi.json``
and a single-page UI at ``/``. Bad input is a 4xx with a one-line ``detail``; no
response carries a stack trace. Limits: 1 MB of lyrics, 10 MB per image.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import File, Form, UploadFile  # at module level: FastAPI resolves the annotations here
from pydantic import BaseModel, Field

from studybench.bundles import Bundle, load_bundle
from studybench.errors import StudybenchError

MAX_LYRICS_BYTES = 1_000_000
MAX_IMAGE_BYTES = 10_000_000
MAX_BODY_BYTES = MAX_IMAGE_BYTES + 100_000  # an image plus its multipart envelope
UI = Path(__file__).with_name("web") / "index.html"


class LyricsRequest(BaseModel):
    lyrics: str = Field(min_length=1, max_length=MAX_LYRICS_BYTES, description="The song's lyrics, raw.")
    artist: str | None = Field(default=None, max_length=1000, description="Optional artist name.")
    model: str | None = Field(default=None, max_length=300, description="Bundle name (default: the first lyrics bundle).")
    top_k: int = Field(default=5, ge=1, le=100, description="How many classes to return.")


class Prediction(BaseModel):
    label: str
    probability: float = Field(description="Probability, or a decision score for models without one.")


class PredictResponse(BaseModel):
    model: str
    kind: str = Field(description="probability or score")
    predictions: list[Prediction]


class ModelInfo(BaseModel):
    name: str
    study: str
    model: str
    features: str
    preset: str | None
    classes: list[str]
    test: dict[str, float]


class Health(BaseModel):
    status: str
    models: int


class Problem(BaseModel):
    detail: str


def check_address(host: str, port: int) -> None:
    """Refuse, before announcing anything, a port out of range or one already taken."""
    import socket

    if not 1 <= port <= 65535:
        raise StudybenchError(f"--port {port}: expected 1..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise StudybenchError(f"--host {host}: not an address of this machine ({exc})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except PermissionError:
            raise StudybenchError(f"--port {port}: needs privileges on this machine; choose 1024 or above") from None
        except OSError as exc:
            reason = "in use by another program" if exc.errno in (98, 48, 10048) else exc.strerror
            raise StudybenchError(f"--port {port} on {host}: {reason}; choose another with --port") from None


def create_app(bundle_paths: list[str | Path]):
    """The service for the bundles at ``bundle_paths`` (each one is named by its folder)."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse

    if not bundle_paths:
        raise StudybenchError("serve needs at least one bundle folder")
    bundles: dict[str, Bundle] = {}
    for path in bundle_paths:
        bundle = load_bundle(path)
        name = Path(path).resolve().name
        if name in bundles:
            raise StudybenchError(f"{path}: two bundles are named {name!r}; rename a folder")
        bundles[name] = bundle

    app = FastAPI(title="studybench", version="1", description=__doc__.split("\n\n")[1].replace("\n", " "),
                  responses={400: {"model": Problem}, 404: {"model": Problem}, 413: {"model": Problem},
                             422: {"model": Problem}})

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES:,} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # a bug: say so, without the trace
        logging.getLogger("studybench.serve").exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"{where or 'request'}: {first.get('msg', 'invalid input')}"}, status_code=422)

    def pick(name: str | None, study: str) -> tuple[str, Bundle]:
        if name:
            if name not in bundles:
                raise HTTPException(404, f"no model named {name!r} (GET /models lists them)")
            if bundles[name].study != study:
                raise HTTPException(400, f"model {name!r} is for {bundles[name].study}, not {study}")
            return name, bundles[name]
        for key, bundle in bundles.items():
            if bundle.study == study:
                return key, bundle
        raise HTTPException(404, f"no {study} model is being served")

    def answer(name: str, bundle: Bundle, scores: np.ndarray, kind: str, k: int) -> dict:
        order = np.argsort(-scores[0], kind="stable")[: min(k, len(bundle.classes))]
        kind = "probability" if kind == "probability" else "score"
        return {"model": name, "kind": kind,
                "predictions": [{"label": bundle.classes[i], "probability": float(scores[0, i])} for i in order]}

    @app.get("/health", response_model=Health)
    def health():
        return {"status": "ok", "models": len(bundles)}

    @app.get("/models", response_model=list[ModelInfo])
    def models():
        return [{"name": n, "study": b.study, "model": str(b.meta.get("model")), "features": b.meta.get("features", ""),
                 "preset": b.meta.get("preset"), "classes": b.classes,
                 "test": {k: float(v) for k, v in b.meta.get("test", {}).items()}} for n, b in bundles.items()]

    @app.post("/predict/lyrics", response_model=PredictResponse)
    def predict_lyrics(request: LyricsRequest):
        if len(request.lyrics.encode("utf-8", "surrogatepass")) > MAX_LYRICS_BYTES:
            raise HTTPException(413, f"lyrics over {MAX_LYRICS_BYTES:,} bytes")
        if not request.lyrics.strip():
            raise HTTPException(422, "lyrics: empty")
        name, bundle = pick(request.model, "lyrics")
        text = request.lyrics.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> U+FFFD
        try:
            scores, kind = bundle.predict_lyrics([text], [request.artist or ""])
        except StudybenchError as exc:
            raise HTTPException(422, str(exc)) from None
        return answer(name, bundle, scores, kind, request.top_k)

    @app.post("/predict/image", response_model=PredictResponse)
    def predict_image(file: Annotated[UploadFile, File(description="An image file (PNG, JPEG, ...), at most 10 MB.")],
                      model: Annotated[str | None, Form(max_length=300)] = None,
                      top_k: Annotated[int, Form(ge=1, le=100)] = 5):
        import torch

        from studybench.predict import load_image

        data = file.file.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise HTTPException(413, f"image over {MAX_IMAGE_BYTES:,} bytes")
        if not data:
            raise HTTPException(422, "file: empty upload")
        name, bundle = pick(model, "images")
        try:
            pixels = load_image(data, bundle.image_size, file.filename or "upload")
        except StudybenchError as exc:
            raise HTTPException(422, str(exc)) from None
        scores, kind = bundle.predict_images(torch.from_numpy(pixels[None]))
        return answer(name, bundle, scores, kind, top_k)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return UI.read_text(encoding="utf-8")

    return app
