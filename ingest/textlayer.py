"""Text-layer blocks: lines with their fonts, grouped as the PDF groups them, judged as
headings, captions or body text, with running headers and page numbers dropped.

Headings are judged against the document's body size (bigger type, or bold at body size,
short, not a sentence), so nothing here knows about one manual's fonts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pymupdf

from ingest import tables
from ingest.labels import parse_caption
from ingest.spans import TEXT_FLAGS, span_texts
from ingest.textcheck import CHAPTER, LIST_ITEM, join_lines, letter_tokens
from manualrag.types import BBox, BlockKind

MARGIN_BAND = 0.07  # top/bottom share of the page where running headers and page numbers live
_CAPTION_SEP = re.compile(
    r"^\s*(?:fig(?:ure)?|table)\.?\s+[A-Z]{0,3}-?\d+(?:\s*[-–—.]\s*\d+)?[a-z]?\s*[.:—–]", re.IGNORECASE
)
_ADMONITION = {"WARNING", "CAUTION", "NOTE", "DANGER", "NOTICE", "IMPORTANT"}


@dataclass(slots=True)
class Line:
    bbox: BBox
    text: str
    spans: list[tuple[str, float, bool, str]]  # font, size, bold, text
    decoded: bool = False  # junk-font spans decoded to real text (ingest.font_decode)
    code: bool = False  # set mostly in a monospaced font: a line of code keeps its line


@dataclass(slots=True)
class Draft:
    """A block under construction: text-layer lines, or OCR lines (no spans)."""

    lines: list[Line]
    ocr: bool = False
    kind: BlockKind = "text"
    garbled: bool = False
    text_override: str = ""

    @property
    def bbox(self) -> BBox:
        boxes = [ln.bbox for ln in self.lines]
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    @property
    def text(self) -> str:
        if self.text_override:
            return self.text_override
        # Steps and bullets start new lines so chunking can keep or split them as units.
        paras: list[list[str]] = []
        for line in self.lines:
            if not paras or LIST_ITEM.match(line.text):
                paras.append([])
            paras[-1].append(line.text)
        return "\n".join(join_lines(p) for p in paras)

    def _weighted(self) -> Counter[tuple[float, bool]]:
        count: Counter[tuple[float, bool]] = Counter()
        for line in self.lines:
            for _, size, bold, text in line.spans:
                count[(round(size, 1), bold)] += len(text.strip())
        return count

    @property
    def size(self) -> float:
        sizes: Counter[float] = Counter()
        for (size, _), n in self._weighted().items():
            sizes[size] += n
        return sizes.most_common(1)[0][0] if sizes else 0.0

    @property
    def bold(self) -> bool:
        count = self._weighted()
        total = sum(count.values())
        return total > 0 and sum(n for (_, b), n in count.items() if b) >= 0.8 * total


def is_bold(span: dict) -> bool:
    if span["flags"] & pymupdf.TEXT_FONT_BOLD:
        return True
    return bool(re.search(r"bold|black|heavy", span["font"], re.IGNORECASE))


def mostly_inside(box: BBox, areas: Sequence[BBox], share: float = 0.5) -> bool:
    size = tables.area(box)
    return size > 0 and any(tables.overlap(box, a) >= share * size for a in areas)


def center_in(box: BBox, areas: Sequence[BBox]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(a[0] <= cx <= a[2] and a[1] <= cy <= a[3] for a in areas)


def furniture(box: BBox, text: str, height: float) -> bool:
    """Running headers, footers and page numbers ("3-12", or "=3A" from a broken font)."""
    in_band = box[3] <= height * MARGIN_BAND or box[1] >= height * (1 - MARGIN_BAND)
    return in_band and len(text.split()) <= 8


# Letter-spaced display type ("C A M R Y   M O D E L S"): four or more single capitals in a row
# (a cheap test on the line's text before its characters are read). Capitals only, as in
# `unspace`: a formula's "M x N x 2" must not cost its page a second read.
_SPACED = re.compile(r"(?<!\S)(?:[A-Z] ){3,}[A-Z](?!\S)")
# In letter-spaced type every letter is followed by a space; a word break is a gap this many
# times wider than the run's usual gap between letters.
WORD_BREAK = 2.0


def unspace(chars: Sequence[dict]) -> str:
    """A line's text from its characters (PyMuPDF rawdict), with letter-spaced runs joined
    into words ("CAMRY MODELS"): otherwise neither search nor the model sees the word.

    A run is four or more space-separated capitals (a kerned pair, "LT", counts as one);
    inside it a word break is a gap WORD_BREAK times the run's usual gap."""
    words: list[list[dict]] = [[]]
    for c in chars:
        if c["c"].isspace():
            if words[-1]:
                words.append([])
        else:
            words[-1].append(c)
    words = [w for w in words if w]
    # Capitals only: display type is set in capitals, and "M x N x 2" is a formula.
    spaced = [len(w) <= 2 and all(c["c"].isalpha() and c["c"].isupper() for c in w) for w in words]
    joined = [False] * len(words)  # word k joins the one before it without a space
    i = 0
    while i < len(words):
        j = i
        while j < len(words) and spaced[j]:
            j += 1
        if j - i >= 4 and sum(len(w) == 1 for w in words[i:j]) >= 3:
            gaps = [words[k + 1][0]["bbox"][0] - words[k][-1]["bbox"][2] for k in range(i, j - 1)]
            usual = max(sorted(gaps)[len(gaps) // 2], 0.1)
            for k in range(i, j - 1):
                joined[k + 1] = gaps[k - i] <= WORD_BREAK * usual
        i = max(j, i + 1)
    return "".join((" " if k and not joined[k] else "") + "".join(c["c"] for c in w) for k, w in enumerate(words))


def text_drafts(page: pymupdf.Page, exclude: Sequence[BBox]) -> list[Draft]:
    raw = page.get_text("dict", sort=True, flags=TEXT_FLAGS)
    if any(_SPACED.search("".join(s["text"] for s in line["spans"]))
           for block in raw["blocks"] for line in block.get("lines", ())):
        # The same blocks and lines with each character's box, to find the word breaks.
        raw = page.get_text("rawdict", sort=True, flags=TEXT_FLAGS)
        for block in raw["blocks"]:
            for line in block.get("lines", ()):
                for span in line["spans"]:
                    span["text"] = "".join(c["c"] for c in span["chars"])
                if _SPACED.search("".join(s["text"] for s in line["spans"])):
                    line["unspaced"] = unspace([c for s in line["spans"] for c in s["chars"]])
    drafts = []
    for block in raw["blocks"]:
        lines = []
        for line in block.get("lines", ()):
            # Whitespace-only spans stay: MuPDF puts the space between two fonts ("class" in
            # bold, then "pump.drivers") in a span of its own, and dropping it glues the words.
            spans = [(s["font"], s["size"], is_bold(s), text)
                     for s, text in zip(line["spans"], span_texts(line["spans"])) if text]
            text = " ".join(line.get("unspaced", "".join(s[3] for s in spans)).split())
            if text and not mostly_inside(tuple(line["bbox"]), exclude):
                mono = sum(len(s["text"].strip()) for s in line["spans"] if s["flags"] & pymupdf.TEXT_FONT_MONOSPACED)
                lines.append(Line(tuple(line["bbox"]), text, spans, code=mono * 2 > len(text.replace(" ", ""))))
        if lines:
            draft = Draft(lines)
            if not furniture(draft.bbox, draft.text, page.rect.height):
                drafts.append(draft)
    return drafts


_BODY_SIZES: dict[tuple[int, str, int], float] = {}


def body_font_size(doc: pymupdf.Document) -> float:
    """The document's body text size: the most common size of regular (non-bold) text,
    sampled over up to 16 pages and cached per document."""
    key = (id(doc), doc.name, doc.page_count)
    if key not in _BODY_SIZES:
        if len(_BODY_SIZES) > 16:
            _BODY_SIZES.clear()
        step = max(doc.page_count // 16, 1)
        sizes: Counter[float] = Counter()
        for number in range(0, doc.page_count, step):
            for block in doc.load_page(number).get_text("dict", flags=TEXT_FLAGS)["blocks"]:
                for line in block.get("lines", ()):
                    for span in line["spans"]:
                        if not is_bold(span):
                            sizes[round(span["size"] * 2) / 2] += len(span["text"].strip())
        _BODY_SIZES[key] = sizes.most_common(1)[0][0] if sizes else 10.0
    return _BODY_SIZES[key]


def is_caption(text: str, bold: bool = False, small: bool = False) -> bool:
    """A figure/table caption: "Figure 2-1. ..." (label then a separator), or a bare
    "Fig. 2 Pump" set in bold or small type. "Table 2-1 lists..." in body text is not."""
    return parse_caption(text) is not None and (bool(_CAPTION_SEP.match(text)) or bold or small)


def classify(draft: Draft, body: float) -> BlockKind:
    text, size, bold = draft.text, draft.size, draft.bold
    if is_caption(text, bold, 0 < size < body * 0.95):
        return "caption"
    words = text.split()
    if not (1 <= len(words) <= 15 and len(draft.lines) <= 3 and len(letter_tokens(text)) >= 1):
        return "text"
    if text.strip(" :!.").upper() in _ADMONITION or (text.endswith(".") and len(words) > 8):
        return "text"
    if size >= body * 1.15 or (bold and size >= body * 0.95):
        return "heading"
    return "text"


def ocr_kind(text: str) -> BlockKind:
    """OCR text has no font: only a short line that names a chapter or appendix is a heading."""
    short = len(text.split()) <= 10 and "\n" not in text and not text.rstrip().endswith((".", ",", ";"))
    return "heading" if short and CHAPTER.match(text) else "text"


# A line that ends this close to its paragraph's right edge is full: the text wraps on.
FULL_LINE_SLACK = 3.0  # points
LINE_PITCH = 1.6  # font sizes from one line's top to the next's, at most, in a paragraph
WRAPPED_LINE_WORDS = 5  # a line of fewer words is a name or an item, not wrapped prose
_SENTENCE_CLOSED = re.compile(r"[.!?:;]['\")\]]*$")


def wraps_on(prev: Draft, d: Draft) -> bool:
    """Whether `d` goes on with the sentence `prev` breaks off: `prev`'s last line is full
    and stops mid-sentence (or mid-word, hyphenated), and `d` starts on the next line,
    level or indented. MuPDF makes a new block where the indent changes, so an entry with a
    hanging indent ("TNOM=x resets the nominal ... The de- / fault value is 27 C") came
    apart at its first line, and its value lost the name it belongs to."""
    last, first = prev.lines[-1], d.lines[0]
    size = prev.size
    right = max(ln.bbox[2] for ln in [*prev.lines, *d.lines])
    return (
        abs(d.size - size) <= 0.3
        and 0.5 * size <= first.bbox[1] - last.bbox[1] <= LINE_PITCH * size  # the next line down
        and last.bbox[2] >= right - FULL_LINE_SLACK
        and len(last.text.split()) >= WRAPPED_LINE_WORDS
        and first.bbox[0] >= prev.bbox[0] - 1.0
        and first.bbox[0] < last.bbox[2]
        and not _SENTENCE_CLOSED.search(last.text)
        # Mid-word, or mid-sentence: a list of short items ("Single exhaust" under
        # "Roof-mounted shark-fin antenna") has each start with a capital.
        and (last.text.endswith("-") or first.text[:1].islower())
        and not LIST_ITEM.match(first.text)
        and not (last.code or first.code)
    )


def merge_runs(drafts: list[Draft]) -> list[Draft]:
    """Join a caption with its continuation lines, stacked headings where the later one
    is as big or bigger ("CHAPTER 2" over "WIRING TECHNIQUES" is one title, not two levels),
    and a paragraph with the lines it wraps onto in another block (``wraps_on``)."""
    out: list[Draft] = []
    for d in drafts:
        prev = out[-1] if out else None
        if prev is not None and not prev.ocr and not d.ocr:
            if prev.kind == "text" and d.kind == "text" and not prev.garbled and not d.garbled and wraps_on(prev, d):
                prev.lines += d.lines
                continue
            gap = d.bbox[1] - prev.bbox[3]
            same_style = abs(d.size - prev.size) <= 0.3 and d.bold == prev.bold
            if (
                prev.kind == "caption"
                and d.kind != "caption"
                and same_style
                and gap <= prev.size
                and len(d.text.split()) <= 20
            ):
                prev.lines += d.lines
                continue
            if (
                prev.kind == "heading"
                and d.kind == "heading"
                and d.size >= prev.size * 0.98
                and gap <= 1.5 * d.size
            ):
                prev.lines += d.lines
                continue
        out.append(d)
    return out


def union(boxes: Sequence[BBox], pad: float = 0.0) -> BBox:
    return (
        min(b[0] for b in boxes) - pad,
        min(b[1] for b in boxes) - pad,
        max(b[2] for b in boxes) + pad,
        max(b[3] for b in boxes) + pad,
    )
