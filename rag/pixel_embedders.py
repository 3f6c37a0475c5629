"""CLIP and SigLIP (1 and 2): one model embeds figure pixels and text into one space.

Loaded with transformers' Auto classes from a hub id (downloaded on a connected
machine) or a local folder (works air-gapped). The model type in the folder's
config must match the spec's family, so ``clip:`` never silently loads a BERT.

Text towers are short: CLIP reads 77 tokens, SigLIP 64. Longer passages are cut,
which is why the README keeps a real text embedder as the default for passages.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import numpy as np

from manualrag.errors import EmbedderUnavailable, UnreadableImage
from rag.embedders import Embedder, check_device, is_local_path

Family = Literal["clip", "siglip"]

# config.model_type values each spec family accepts.
MODEL_TYPES: dict[str, tuple[str, ...]] = {"clip": ("clip",), "siglip": ("siglip", "siglip2")}


# Photos from phones and the figures ingest writes: nothing else is decoded (PIL opens dozens of
# formats, each a parser a hostile file can aim at).
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
# Declared pixels at most, checked before decoding (PIL's own bomb limit errs at 179 million):
# a 50-megapixel phone photo passes, a 20000x20000 PNG of a few kilobytes does not.
MAX_IMAGE_PIXELS = 50_000_000
_PIXEL_LIMIT = f"the limit is {MAX_IMAGE_PIXELS // 1_000_000} million pixels: send a smaller picture"
# The pixel models read 224-384 px: a JPEG is decoded at 1/2-1/8 scale when that still covers it.
DECODE_SIDE = 1024


def open_image(path: Path):  # type: ignore[no-untyped-def]
    """An RGB PIL image, or a one-line error naming the file."""
    from PIL import Image

    try:
        with Image.open(path, formats=IMAGE_FORMATS) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UnreadableImage(f"image {path} is {width}x{height} pixels; {_PIXEL_LIMIT}")
            if img.format == "JPEG":
                img.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
            img.load()
            return img.convert("RGB")
    except FileNotFoundError as err:
        raise UnreadableImage(f"no such image: {path}") from err
    except Image.UnidentifiedImageError as err:
        raise UnreadableImage(
            f"cannot read image {path}: only PNG, JPEG and WebP pictures are accepted"
        ) from err
    except Image.DecompressionBombError as err:  # PIL's own limit, met while opening
        raise UnreadableImage(f"image {path} is too large; {_PIXEL_LIMIT}") from err
    except (OSError, ValueError) as err:
        raise UnreadableImage(f"cannot read image {path}: {err}") from err


def _hub_error(target: str, family: str, err: Exception) -> EmbedderUnavailable:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return EmbedderUnavailable(
        f"could not get {target!r} from the Hugging Face hub ({reason[:160]}). Without internet, "
        f"download it on a connected machine (hf download {target} --local-dir DIR), copy DIR here "
        f"and set MANUALRAG_EMBED__MODEL={family}:DIR"
    )


class PixelEmbedder(Embedder):
    """A CLIP / SigLIP / SigLIP 2 checkpoint: ``embed_texts`` and ``embed_images`` share one space."""

    image_input = True

    def __init__(
        self,
        family: Family,
        target: str,
        model_id: str,
        device: str = "cpu",
        batch_size: int = 32,
        dimensions: int | None = None,
    ) -> None:
        super().__init__(batch_size, dimensions)
        self.id = model_id
        self.family = family
        local = is_local_path(target)
        if local:
            folder = Path(target).expanduser()
            if not folder.is_dir():
                raise EmbedderUnavailable(
                    f"no model folder at {target}: point MANUALRAG_EMBED__MODEL={family}:<folder> at a folder "
                    "holding config.json and the weights (save_pretrained or hf download --local-dir)"
                )
            target = str(folder)
        self.device = check_device(device)
        self.model_type = self._check_type(target, family, local)
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar in the CLI's output
        try:
            self._model = AutoModel.from_pretrained(target, local_files_only=local).to(self.device).eval()
            self._tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=local)
            self._processor = AutoImageProcessor.from_pretrained(target, local_files_only=local)
        except EmbedderUnavailable:
            raise
        except Exception as err:  # noqa: BLE001 - missing files, bad weights, no network: one message
            if not local:
                raise _hub_error(target, family, err) from err
            raise EmbedderUnavailable(f"could not load the {family} model in {target}: {err}") from err
        # Both towers read a fixed number of positions (CLIP 77, SigLIP 64); SigLIP was
        # trained on text padded to that length and lower-cased (SigLIP 2), so do the same.
        self.max_tokens = int(self._model.config.text_config.max_position_embeddings)
        self._pad = "longest" if family == "clip" else "max_length"
        self._lower = self.model_type == "siglip2"
        self._lock = threading.Lock()  # torch modules are not safe to call from several threads
        self.dim = self._output_dim(int(self._embed_texts(["probe"]).shape[1]))

    @staticmethod
    def _check_type(target: str, family: str, local: bool) -> str:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(target, local_files_only=local)
        except Exception as err:  # noqa: BLE001
            if not local:
                raise _hub_error(target, family, err) from err
            raise EmbedderUnavailable(
                f"{target} is not a transformers model folder ({str(err).splitlines()[0][:160]})"
            ) from err
        model_type = str(getattr(config, "model_type", ""))
        if model_type not in MODEL_TYPES[family]:
            other = next((f for f, types in MODEL_TYPES.items() if model_type in types), None)
            hint = f"use {other}:{target}" if other else "use sentence-transformers: for a text-only model"
            raise EmbedderUnavailable(
                f"{target} holds a {model_type or 'unknown'!r} model, not {family.upper()}: {hint}"
            )
        return model_type

    def _features(self, output) -> np.ndarray:  # type: ignore[no-untyped-def]
        # transformers 5 returns an output object whose pooler_output is the projected embedding.
        tensor = getattr(output, "pooler_output", output)
        return tensor.float().cpu().numpy()

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        if self._lower:
            texts = [t.lower() for t in texts]
        encoded = self._tokenizer(
            texts, padding=self._pad, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        inputs = {k: v.to(self.device) for k, v in encoded.items() if k in ("input_ids", "attention_mask")}
        with self._lock, torch.inference_mode():
            return self._features(self._model.get_text_features(**inputs))

    def _embed_images(self, paths: list[Path]) -> np.ndarray:
        import torch

        images = [open_image(p) for p in paths]
        pixels = self._processor(images=images, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in pixels.items()}
        with self._lock, torch.inference_mode():
            return self._features(self._model.get_image_features(**inputs))
