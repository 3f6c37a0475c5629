"""The typed values every stage speaks: one shape per concept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BBox = tuple[float, float, float, float]  # x0, y0, x1, y1 in PDF points, origin top-left

BlockKind = Literal["text", "heading", "caption", "table"]
# "page": a whole page (its text, captions and figure labels), the coarsest of the three
# granularities retrieval fuses: an answer spread over a page is found as the page.
RecordKind = Literal["text", "table", "figure", "page"]


@dataclass(frozen=True, slots=True)
class Block:
    """A run of text on a page, in reading order."""

    page: int  # 1-based PDF page number
    bbox: BBox
    text: str
    kind: BlockKind = "text"
    size: float = 0.0  # dominant font size, points (0 for OCR text)
    bold: bool = False
    ocr: bool = False  # text came from OCR, not the PDF's text layer


@dataclass(frozen=True, slots=True)
class OcrLine:
    text: str
    bbox: BBox  # in the pixel space of the image that was read
    confidence: float


@dataclass(slots=True)
class Page:
    number: int  # 1-based
    width: float
    height: float
    blocks: list[Block] = field(default_factory=list)
    ocr: bool = False  # some or all of the text layer was replaced by OCR
    warnings: list[str] = field(default_factory=list)


def figure_name(label: str, page: int) -> str:
    """A figure's name: its label ("Figure 2-11"), or "Figure on page 12" when it has none."""
    return label or f"Figure on page {page}"


def labels_heading(label: str, page: int) -> str:
    """The line a page's text puts before a figure's OCR'd labels ("Figure 2-11 labels:")."""
    return f"{figure_name(label, page)} labels:"


@dataclass(slots=True)
class Figure:
    """A diagram cropped from a page, with the words that describe it."""

    page: int
    index: int  # order on the page, 1-based
    bbox: BBox
    source: Literal["raster", "vector"]
    label: str = ""  # normalised figure label, e.g. "Figure 3-11" ("" when uncaptioned)
    caption: str = ""  # "Figure 3-11.—Wiring diagram."
    ocr_text: str = ""  # labels read inside the figure
    nearby_text: str = ""  # text of the page that mentions or surrounds it
    image_path: str = ""  # PNG path relative to the store folder
    png: bytes = b""  # cropped image, until written to the store
    # Cut out of a page that is one picture (a scan, a slide): the page's OCR still reads
    # its words as the page's own text, since a layout box often takes in a slide's title
    # and bullets (left out, they were missed on one dev set; kept, no set lost).
    in_picture: bool = False

    @property
    def key(self) -> str:
        return f"p{self.page}-f{self.index}"

    def text(self) -> str:
        """What the figure's record shows: its caption (else its name) and its labels."""
        parts = [self.caption or figure_name(self.label, self.page)]
        if self.ocr_text:
            parts.append(f"Labels: {self.ocr_text}")
        return "\n".join(parts)

    def embed_text(self) -> str:
        """The words a text embedder sees for this figure: its text and the words around it."""
        return "\n".join([self.text(), self.nearby_text]) if self.nearby_text else self.text()


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of text that keeps its pages, section and the figures it mentions."""

    text: str
    pages: tuple[int, ...]
    section: str = ""  # heading path, "Chapter 3 > Wiring diagrams"
    figure_refs: tuple[str, ...] = ()  # normalised labels this chunk mentions
    kind: Literal["text", "table"] = "text"
    ocr: bool = False
    bbox: BBox | None = None  # union box on the first page, for highlighting

    def embed_text(self) -> str:
        return f"{self.section}\n{self.text}" if self.section else self.text


@dataclass(slots=True)
class ParsedManual:
    """Everything ingest extracts from one PDF, before embedding."""

    name: str
    sha256: str
    page_count: int
    pages: list[Page]
    chunks: list[Chunk]
    figures: list[Figure]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved record, text or figure."""

    id: str
    manual: str
    page: int
    kind: RecordKind
    text: str
    score: float
    figure: str = ""  # figure label, for figures and for chunks that mention one
    image: str = ""  # absolute path of the figure PNG
    section: str = ""
    bbox: BBox | None = None
    caption: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "manual": self.manual,
            "page": self.page,
            "kind": self.kind,
            "figure": self.figure,
            "score": round(self.score, 6),
            "text": self.text,
            "image": self.image,
            "section": self.section,
        }


@dataclass(slots=True)
class IngestReport:
    """What happened to one file in an ingest run."""

    path: str
    name: str = ""
    status: Literal["ingested", "unchanged", "replaced", "failed"] = "failed"
    pages: int = 0
    chunks: int = 0
    figures: int = 0
    figures_with_ocr: int = 0
    ocr_pages: int = 0
    seconds: float = 0.0
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(slots=True)
class Record:
    """One stored entry of the collection: a text chunk, a table or a figure."""

    id: str
    manual: str
    page: int
    kind: RecordKind
    text: str  # what is shown and keyword-indexed
    embed_text: str = ""  # what the text embedder sees (defaults to text)
    pages: tuple[int, ...] = ()
    section: str = ""
    figure: str = ""  # label of this figure, or of the first figure a chunk mentions
    figure_refs: tuple[str, ...] = ()
    caption: str = ""
    image: str = ""  # PNG path relative to the store
    bbox: BBox | None = None
    ocr: bool = False

    def hit(self, score: float, image_root: str = "") -> Hit:
        image = f"{image_root.rstrip('/')}/{self.image}" if self.image and image_root else self.image
        return Hit(
            id=self.id,
            manual=self.manual,
            page=self.page,
            kind=self.kind,
            text=self.text,
            score=score,
            figure=self.figure,
            image=image,
            section=self.section,
            bbox=self.bbox,
            caption=self.caption,
        )


@dataclass(slots=True)
class ManualInfo:
    """A manual in the library, as the catalog knows it."""

    name: str
    sha256: str
    ingest_id: str
    pdf_path: str  # stored copy, relative to the store
    pages: int = 0
    chunks: int = 0
    figures: int = 0
    figures_with_ocr: int = 0
    ocr_pages: int = 0
    warnings: list[str] = field(default_factory=list)
    ingested_at: str = ""
    embedder: str = ""
    seconds: float = 0.0
    # Printed page labels, index 0 for PDF page 1 ("" where unknown): see ingest/page_labels.py
    page_labels: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Citation:
    """A [n] key the answer used, checked against the sources it was offered."""

    key: int  # the n of [n]; source n is the hit Answer.source_ids[n - 1]
    hit_id: str
    manual: str
    page: int
    kind: RecordKind
    figure: str = ""  # figure label
    image: str = ""  # figure PNG path, as the hit had it
    section: str = ""
    bbox: BBox | None = None
    inferred: bool = False  # by wording overlap: the model wrote no key, or one on a source lacking the words

    def to_json(self) -> dict[str, object]:
        return {
            "n": self.key,  # the [n] in the answer text
            "key": self.key,
            "inferred": self.inferred,
            "hit_id": self.hit_id,
            "manual": self.manual,
            "page": self.page,
            "kind": self.kind,
            "figure": self.figure,
            "image": self.image,
            "section": self.section,
        }


# What became of a question: answered from the manuals; not in the manuals (nothing
# retrieved, or the model said so); withheld (the draft stated what no source contains);
# or the LLM failed. One value, shown alike by `ask --json`, the app, the review desk and eval.
Outcome = Literal["answered", "not_in_manuals", "withheld", "llm_error"]


@dataclass(slots=True)
class Answer:
    """One answer with everything needed to review it: sources, prompt, timings."""

    question: str
    text: str  # the answer with only offered [n] keys left in it
    citations: list[Citation] = field(default_factory=list)
    # Every hit handed to the answer stage, in rank order. `sources` of them went into
    # the prompt, numbered [1]..[n]: source [n] is the hit whose id is source_ids[n - 1]
    # (hits that share nothing with the question are left out, so not always a prefix).
    hits: list[Hit] = field(default_factory=list)
    sources: int = 0
    source_ids: list[str] = field(default_factory=list)
    answerable: bool = True  # False when the model (or the empty retrieval) said CANNOT_ANSWER
    model: str = ""
    # The chat messages sent, exactly, except image parts whose data URLs are replaced
    # by "<image: N bytes as a data URL>" so the trace stays small (the text part says
    # which source each image belongs to).
    messages: list[dict[str, object]] = field(default_factory=list)
    raw_text: str = ""  # what the model wrote, before citation checking
    error: str = ""  # one line for the user when the LLM failed; hits are still shown
    # Values, units or codes in the answer that no source contains (likely invented):
    # worth a warning next to the answer.
    unsupported: list[str] = field(default_factory=list)
    # The draft answered nothing (restated the question, no count, no value, or only pages other
    # than those the question names): withheld.
    restated: bool = False
    # Codes, names, figures and pages the question names that the manuals searched lack
    # (rag/retrieve.py not_covered): the embedded model was not asked, as whatever it said
    # of them would come from elsewhere.
    not_covered: list[str] = field(default_factory=list)
    # Drafts withheld before a second try from more evidence (rag/answer.py), for review.
    withheld_drafts: list[str] = field(default_factory=list)
    truncated: bool = False  # some sources were shortened to fit the prompt budget
    retrieval_s: float = 0.0  # set by the caller, which runs retrieval
    query: str = ""  # set by the caller: what retrieval searched for (follow-ups are rewritten)
    load_s: float = 0.0  # starting the embedded model during this question
    first_token_s: float | None = None  # from choosing the evidence (after retrieval) to the first streamed token
    total_s: float = 0.0  # from sending the prompt to the last token

    @property
    def outcome(self) -> Outcome:
        if self.error:
            return "llm_error"
        if self.answerable:
            return "answered"
        return "withheld" if self.unsupported or self.restated else "not_in_manuals"

    def to_json(self) -> dict[str, object]:
        return {
            "question": self.question,
            "query": self.query,
            "text": self.text,
            "outcome": self.outcome,
            "answerable": self.answerable,
            "citations": [c.to_json() for c in self.citations],
            "hits": [h.to_json() for h in self.hits],
            "sources": self.sources,
            "source_ids": self.source_ids,
            "model": self.model,
            "messages": self.messages,
            "raw_text": self.raw_text,
            "error": self.error,
            "unsupported": self.unsupported,
            "restated": self.restated,
            "not_covered": self.not_covered,
            "withheld_drafts": self.withheld_drafts,
            "truncated": self.truncated,
            "timings": {
                "retrieval_s": round(self.retrieval_s, 3),
                "load_s": round(self.load_s, 3),
                "first_token_s": None if self.first_token_s is None else round(self.first_token_s, 3),
                "total_s": round(self.total_s, 3),
            },
        }
