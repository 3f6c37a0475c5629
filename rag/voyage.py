"""Voyage AI's multimodal embeddings API: text chunks and figure images in one space.

One backbone reads text (32k tokens of context) and images, so long passages are
not cut the way CLIP's 77-token text tower cuts them. Requests go to
``POST {base}/multimodalembeddings`` and are packed under the API's limits
(1,000 inputs and 320k tokens per request; an image costs about one token per 560
pixels). 429 (rate limit), 5xx and network errors are retried, honouring
Retry-After, else with exponential backoff. The API key travels in the
Authorization header only: it is never logged or put in an error message.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from manualrag.errors import EmbedderUnavailable
from manualrag.settings import EmbedSettings
from rag.embedders import Embedder, embedder_id

log = logging.getLogger(__name__)

ENDPOINT = "/multimodalembeddings"
MAX_INPUTS = 1000
MAX_REQUEST_TOKENS = 300_000  # the API allows 320k; our token estimate is rough, keep a margin
MAX_INPUT_TOKENS = 32_000  # longer texts are truncated by the API (truncation=true)
PIXELS_PER_TOKEN = 560
CHARS_PER_TOKEN = 3  # a pessimistic estimate for English manuals
# Figures are stored at up to 2400 px; 1600 px keeps labels legible and an image under ~4.6k tokens.
IMAGE_MAX_SIDE = 1600
MAX_WAIT_S = 60.0
DEFAULT_DIM = 1024
# Models that take output_dimension (Matryoshka-trained); others return DEFAULT_DIM only.
OUTPUT_DIMENSIONS: dict[str, tuple[int, ...]] = {
    "voyage-multimodal-3": (1024,),
    "voyage-multimodal-3.5": (256, 512, 1024, 2048),
}

Content = list[dict[str, str]]


def image_content(path: Path) -> tuple[Content, int]:
    """An image as a base64 data-URL content part, downscaled to ``IMAGE_MAX_SIDE``; and its token cost."""
    from rag.pixel_embedders import open_image

    img = open_image(path)
    img.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    tokens = max(1, img.width * img.height // PIXELS_PER_TOKEN)
    return [{"type": "image_base64", "image_base64": f"data:image/png;base64,{data}"}], tokens


def text_content(text: str) -> tuple[Content, int]:
    return [{"type": "text", "text": text}], min(MAX_INPUT_TOKENS, len(text) // CHARS_PER_TOKEN + 1)


def pack(costs: Sequence[int], max_inputs: int = MAX_INPUTS, max_tokens: int = MAX_REQUEST_TOKENS) -> list[range]:
    """Consecutive index ranges, each within the per-request input and token limits."""
    groups: list[range] = []
    start, used = 0, 0
    for i, cost in enumerate(costs):
        if i > start and (i - start >= max_inputs or used + cost > max_tokens):
            groups.append(range(start, i))
            start, used = i, 0
        used += cost
    if len(costs) > start:
        groups.append(range(start, len(costs)))
    return groups


def _retry_after(response) -> float | None:  # type: ignore[no-untyped-def]
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to backoff


def _detail(response) -> str:  # type: ignore[no-untyped-def]
    try:
        body = response.json()
        detail = body.get("detail") or body.get("error") or body
    except ValueError:
        detail = response.text
    return " ".join(str(detail).split())[:200]


class VoyageEmbedder(Embedder):
    """``voyage:<model>``: every text and figure image through Voyage's multimodal endpoint."""

    image_input = True
    remote = True

    def __init__(
        self,
        model: str,
        api_key: str,
        base_url: str = "https://api.voyageai.com/v1",
        batch_size: int = 32,
        dimensions: int | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
    ) -> None:
        import httpx

        super().__init__(min(batch_size, MAX_INPUTS), dimensions)
        self.id = embedder_id(f"voyage:{model}", dimensions)
        self.model = model
        if not api_key:
            raise EmbedderUnavailable(
                f"the voyage:{model} embedder needs an API key: set MANUALRAG_EMBED__API_KEY "
                "(or pick another MANUALRAG_EMBED__MODEL)"
            )
        allowed = OUTPUT_DIMENSIONS.get(model)
        if dimensions is not None and allowed is not None and dimensions not in allowed:
            raise EmbedderUnavailable(
                f"{model} returns {'/'.join(map(str, allowed))} dimensions, not {dimensions}: change "
                "MANUALRAG_EMBED__DIMENSIONS (voyage-multimodal-3.5 takes 256, 512, 1024 or 2048)"
            )
        # Only Matryoshka-trained models shorten on the server; 1024 is every Voyage model's default.
        self._output_dimension = dimensions if dimensions not in (None, DEFAULT_DIM) else None
        self.dim = dimensions or DEFAULT_DIM
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_request_tokens = MAX_REQUEST_TOKENS
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
        )

    @classmethod
    def from_settings(cls, settings: EmbedSettings) -> VoyageEmbedder:
        return cls(
            settings.model.partition(":")[2].strip(),
            settings.api_key.get_secret_value(),
            settings.api_base_url,
            settings.batch_size,
            settings.dimensions,
            settings.timeout_s,
            settings.max_retries,
        )

    # -- the Embedder interface ---------------------------------------------------------------

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        return self._embed([text_content(t) for t in texts], "document")

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        return self._batched(list(queries), lambda batch: self._embed([text_content(q) for q in batch], "query"))

    def _embed_images(self, paths: list[Path]) -> np.ndarray:
        # "document" for figures and search photos alike: photo-to-figure search compares
        # images with images, so both sides get the same prompt.
        return self._embed([image_content(p) for p in paths], "document")

    def close(self) -> None:
        self._client.close()

    # -- requests -----------------------------------------------------------------------------

    def _embed(self, items: list[tuple[Content, int]], input_type: str) -> np.ndarray:
        vectors: list[list[float]] = []
        for group in pack([cost for _, cost in items], MAX_INPUTS, self.max_request_tokens):
            payload: dict[str, object] = {
                "inputs": [{"content": items[i][0]} for i in group],
                "model": self.model,
                "input_type": input_type,
                "truncation": True,
            }
            if self._output_dimension:
                payload["output_dimension"] = self._output_dimension
            vectors.extend(self._post(payload, len(group)))
        return np.asarray(vectors, dtype=np.float32)

    def _post(self, payload: dict[str, object], expected: int) -> list[list[float]]:
        import httpx

        failure = ""
        for attempt in range(self.max_retries + 1):
            wait = self.backoff_s * 2**attempt
            try:
                response = self._client.post(ENDPOINT, json=payload)
            except httpx.TransportError as err:
                failure = f"cannot reach {self.base_url} ({type(err).__name__})"
            else:
                status = response.status_code
                if status == 200:
                    return self._vectors(response, expected)
                if status in (401, 403):
                    raise EmbedderUnavailable(
                        f"Voyage rejected the API key (HTTP {status}): check MANUALRAG_EMBED__API_KEY"
                    )
                if status != 429 and status < 500:
                    raise EmbedderUnavailable(f"Voyage refused the request (HTTP {status}: {_detail(response)})")
                failure = f"HTTP {status}" + (" (rate limit)" if status == 429 else "")
                wait = _retry_after(response) if _retry_after(response) is not None else wait
            if attempt < self.max_retries:
                log.info("voyage: %s; retry %d/%d in %.1f s", failure, attempt + 1, self.max_retries, wait)
                time.sleep(min(wait, MAX_WAIT_S))
        raise EmbedderUnavailable(
            f"Voyage embeddings failed after {self.max_retries + 1} tries: {failure}. Try again later, "
            "or raise MANUALRAG_EMBED__MAX_RETRIES"
        )

    def _vectors(self, response, expected: int) -> list[list[float]]:  # type: ignore[no-untyped-def]
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            vectors = [[float(x) for x in d["embedding"]] for d in data]
        except (ValueError, KeyError, TypeError) as err:
            raise EmbedderUnavailable(f"Voyage sent an unexpected response ({type(err).__name__})") from err
        if len(vectors) != expected or any(len(v) != len(vectors[0]) for v in vectors):
            raise EmbedderUnavailable(
                f"Voyage sent {len(vectors)} embeddings for {expected} inputs: try again"
            )
        return vectors
