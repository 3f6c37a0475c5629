"""Chunks: passages that keep their section path, pages and the figures they mention.

Rules, in order of strength:
- a heading always ends a chunk; the section path ("Chapter 3 > Wiring diagrams") is a
  stack of headings, levels ranked by font size (then capitals over mixed case), carried
  across pages;
- a table is one chunk of its own (kind "table"), whatever its size;
- a run of numbered steps stays together when it fits, else splits between steps;
- prose splits at paragraph boundaries, and at sentences only inside a paragraph that
  alone is too long;
- a paragraph broken by a page break is joined again, so a chunk may span two pages;
- captions are not passages: each is appended to the chunk that mentions its label (else
  the one beside it), where its words help retrieval and its label lands in figure_refs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ingest.labels import find_refs, parse_caption
from ingest.textcheck import CHAPTER, LIST_ITEM
from manualrag.types import BBox, Block, Chunk, Page

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREV = re.compile(r"\b(?:no|nos|fig|figs|e\.g|i\.e|approx|vs|mr|dr|vol|eq|ref|para)\.$", re.IGNORECASE)
TAIL_WORDS = 12  # a closing piece shorter than this joins the one before it (up to 25% over the limit)


@dataclass(slots=True)
class _Unit:
    """A paragraph or a list item: the smallest piece chunking never cuts (unless too long)."""

    text: str
    boxes: list[tuple[int, BBox]]  # (page, box) of every block it came from
    ocr: bool
    seq: int  # position in reading order, to place captions

    @property
    def words(self) -> int:
        return len(self.text.split())

    @property
    def item(self) -> bool:
        return bool(LIST_ITEM.match(self.text))


@dataclass(slots=True)
class _Draft:
    units: list[_Unit]
    section: str
    kind: str = "text"
    captions: list[str] = field(default_factory=list)

    @property
    def words(self) -> int:
        return sum(u.words for u in self.units)

    @property
    def pages(self) -> set[int]:
        return {p for u in self.units for p, _ in u.boxes}


def _is_caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) >= 0.8 * len(letters)


def heading_style(block: Block) -> tuple[float, bool]:
    return (round(block.size * 2) / 2, _is_caps(block.text))


def heading_levels(blocks: Iterable[Block]) -> dict[tuple[float, bool], int]:
    """Level of each heading style in the document: bigger type first, capitals before
    mixed case at the same size (NEETS: 18 pt chapters > 11 pt BOLD CAPS > 11 pt Bold).
    Headings that name a chapter, appendix or part rank above all (see ``chunk_pages``)."""
    styles = {heading_style(b) for b in blocks if b.kind == "heading"}
    return {s: i for i, s in enumerate(sorted(styles, key=lambda s: (-s[0], not s[1])))}


def title_styles(blocks: Sequence[Block]) -> set[tuple[float, bool]]:
    """Heading styles that title a single page (a cover, a creed, a form) and outrank every
    style that recurs: they head that page only, or the cover title would prefix every path."""
    pages: dict[tuple[float, bool], set[int]] = {}
    for block in blocks:
        if block.kind == "heading":
            pages.setdefault(heading_style(block), set()).add(block.page)
    recurring = [style[0] for style, seen in pages.items() if len(seen) > 1]
    top = max(recurring, default=float("inf"))
    return {style for style, seen in pages.items() if len(seen) == 1 and style[0] > top}


def split_sentences(text: str) -> list[str]:
    """Sentences, not cut after abbreviations ("No. 10", "Fig. 3", "e.g. a fuse")."""
    out: list[str] = []

    def add(piece: str) -> None:
        piece = piece.strip()
        if piece and out and _ABBREV.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        elif piece:
            out.append(piece)

    pos = 0
    for match in _SENTENCE_END.finditer(text):
        add(text[pos : match.start() + len(match.group(0).rstrip())])
        pos = match.end()
    add(text[pos:])
    return out


def _pieces(unit: _Unit, max_words: int) -> list[_Unit]:
    """A unit longer than max_words, cut at sentences (and a run-on sentence at words)."""
    sentences: list[str] = []
    for sentence in split_sentences(unit.text):
        words = sentence.split()
        sentences += [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)]
    pieces: list[list[str]] = [[]]
    for sentence in sentences:
        if pieces[-1] and sum(len(s.split()) for s in pieces[-1]) + len(sentence.split()) > max_words:
            pieces.append([])
        pieces[-1].append(sentence)
    return [_Unit(" ".join(p), unit.boxes, unit.ocr, unit.seq) for p in pieces if p]


def _groups(units: list[_Unit], max_words: int) -> list[list[_Unit]]:
    """Units bound together: a run of list items with the line that introduces it ("...as
    follows:"). A group too long to fit falls apart into its items; a too-long item or
    paragraph into sentences."""
    groups: list[list[_Unit]] = []
    for unit in units:
        prev = groups[-1] if groups else None
        if unit.item and prev and (prev[-1].item or prev[-1].text.rstrip().endswith(":")):
            prev.append(unit)
        else:
            groups.append([unit])
    out: list[list[_Unit]] = []
    for group in groups:
        if sum(u.words for u in group) <= max_words:
            out.append(group)
            continue
        for unit in group:
            out += [[p] for p in (_pieces(unit, max_words) if unit.words > max_words else [unit])]
    return out


def _continues(prev: _Unit, unit: _Unit) -> bool:
    """A paragraph cut by a page break or a line-per-block layout: no closing punctuation
    before, a lower-case word after."""
    return (
        not re.search(r"[.!?:;\"')\]]$", prev.text.rstrip())
        and bool(re.match(r"[a-z(]", unit.text))
        and not unit.item
    )


def _pack(units: list[_Unit], section: str, max_words: int) -> list[_Draft]:
    merged: list[_Unit] = []
    for unit in units:
        if merged and _continues(merged[-1], unit):
            prev = merged[-1]
            merged[-1] = _Unit(
                f"{prev.text} {unit.text}", prev.boxes + unit.boxes, prev.ocr or unit.ocr, prev.seq
            )
        else:
            merged.append(unit)
    drafts: list[_Draft] = []
    current: list[_Unit] = []
    for group in _groups(merged, max_words):
        size = sum(u.words for u in group)
        if current and sum(u.words for u in current) + size > max_words:
            drafts.append(_Draft(current, section))
            current = []
        current = current + group
    if current:
        if (
            drafts
            and sum(u.words for u in current) < TAIL_WORDS
            and drafts[-1].words + sum(u.words for u in current) <= max_words * 1.25
        ):
            drafts[-1].units += current
        else:
            drafts.append(_Draft(current, section))
    return drafts


def _attach_captions(drafts: list[_Draft], captions: list[tuple[Block, str, int]]) -> None:
    """Each caption goes to a text chunk of its section within a page of it: first one that
    mentions its label, else the chunk just before it, else the one just after."""
    for block, section, seq in captions:
        parsed = parse_caption(block.text)
        label = parsed[0] if parsed else ""
        near = [
            d
            for d in drafts
            if d.kind == "text" and d.section == section and any(abs(p - block.page) <= 1 for p in d.pages)
        ]
        if not near:
            continue  # the figure record carries this caption; a caption alone is no passage
        mentions = [d for d in near if label and label in find_refs(" ".join(u.text for u in d.units))]
        before = [d for d in near if d.units[0].seq < seq]
        after = [d for d in near if d.units[0].seq > seq]
        target = (mentions or [])[:1] or before[-1:] or after[:1]
        target[0].captions.append(block.text)


def is_furniture(text: str) -> bool:
    """Page furniture and lone numbers: too few letters to be a passage."""
    words = [w for w in text.split() if sum(c.isalpha() for c in w) >= 2]
    return len(words) < 3 or sum(c.isalpha() for c in text) < 12


def _union(boxes: Sequence[BBox]) -> BBox:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _chunk(draft: _Draft) -> Chunk:
    text = "\n".join([u.text for u in draft.units] + draft.captions)
    pages = tuple(sorted(draft.pages))
    first = [box for u in draft.units for p, box in u.boxes if p == pages[0]]
    return Chunk(
        text=text,
        pages=pages,
        section=draft.section,
        figure_refs=find_refs(text),
        kind="table" if draft.kind == "table" else "text",
        ocr=any(u.ocr for u in draft.units),
        bbox=_union(first) if first else None,
    )


def split_table(markdown: str, max_words: int) -> list[str]:
    """A big table as several chunks of whole rows, each repeating the caption and header.

    A table stays one chunk when it fits; past that the embedder would only read its
    first rows (MiniLM stops at 256 tokens), so the rows further down could never be found.
    """
    if len(markdown.split()) <= max_words:
        return [markdown]
    lines = markdown.split("\n")
    head_end = next((i + 1 for i, line in enumerate(lines) if re.match(r"^\|?\s*:?-{3,}", line)), 0)
    head, rows = lines[:head_end], lines[head_end:]
    if not head or not rows:
        return [markdown]
    budget = max(max_words - len(" ".join(head).split()), 20)
    parts: list[str] = []
    current: list[str] = []
    for row in rows:
        if current and len(" ".join(current + [row]).split()) > budget:
            parts.append("\n".join(head + current))
            current = []
        current.append(row)
    if current:
        parts.append("\n".join(head + current))
    return parts


def chunk_pages(pages: list[Page], max_words: int) -> list[Chunk]:
    """Chunks of a manual's pages, in reading order."""
    blocks = [b for page in pages for b in page.blocks]
    levels = heading_levels(blocks)
    titles = title_styles(blocks)
    stack: list[tuple[int, str, bool]] = []  # level, text, heads only its own page
    drafts: list[_Draft] = []
    run: list[_Unit] = []  # paragraphs since the last heading or table
    captions: list[tuple[Block, str, int]] = []

    def section() -> str:
        return " > ".join(text for _, text, _ in stack)

    def flush() -> None:
        drafts.extend(_pack(run, section(), max_words))
        run.clear()

    page = blocks[0].page if blocks else 0
    for seq, block in enumerate(blocks, 1):
        if block.page != page and any(local for _, _, local in stack):
            flush()
            stack[:] = [entry for entry in stack if not entry[2]]
        page = block.page
        if block.kind == "heading":
            flush()
            style = heading_style(block)
            # "Chapter 3"/"Appendix A" close everything open, whatever their type size: an
            # OCR'd appendix title (no size) must not nest under the last chapter's subsection.
            level = -1 if CHAPTER.match(block.text) else levels[style]
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, " ".join(block.text.split()).rstrip(" .:"), style in titles))
        elif block.kind == "table":
            flush()
            for part in split_table(block.text, max_words * 2):
                drafts.append(_Draft([_Unit(part, [(block.page, block.bbox)], block.ocr, seq)], section(), "table"))
        elif block.kind == "caption":
            captions.append((block, section(), seq))
        else:
            for para in block.text.split("\n"):
                if para.strip():
                    run.append(_Unit(para.strip(), [(block.page, block.bbox)], block.ocr, seq))
    flush()
    _attach_captions(drafts, captions)
    return [_chunk(d) for d in drafts if d.kind == "table" or not is_furniture("\n".join(u.text for u in d.units))]
