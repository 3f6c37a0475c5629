"""The words around a figure: its caption, the sentences that mention it, labels beside it.

Captions come from the PDF's text layer. In NEETS they stay clean even on pages whose
body text is font-encoding junk, so body text is used only when it looks like words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pymupdf

from ingest.labels import find_refs, parse_caption
from ingest.spans import TEXT_FLAGS, span_texts

Garbled = Callable[[str], bool]

NEARBY_WORDS = 60
# A caption sits this close to its figure (points); below is where NEETS puts them.
CAPTION_GAP_BELOW = 72.0
CAPTION_GAP_ABOVE = 48.0
_ABOVE_PENALTY = 24.0  # prefer a caption below when one is as near as one above
_PARAGRAPH_WORDS = 12  # blocks longer than this are body text, never labels
_WORD = re.compile(r"^[(\"'“]?[A-Za-z]+(?:[-'’][A-Za-z]+)*[.,;:!?)\"'”]*$")
_STRONG = re.compile(r"^\s*(?:fig(?:ure)?|table)\.?\s+\S+?(?:[.:—–]|\s*$)", re.IGNORECASE)


@dataclass(slots=True)
class TextBlock:
    rect: pymupdf.Rect
    lines: list[tuple[pymupdf.Rect, str]]  # printed lines, blank ones dropped
    text: str  # lines joined with "\n"
    words: int
    size: float  # largest font size, points


@dataclass(slots=True)
class Caption:
    rect: pymupdf.Rect
    label: str  # "Figure 3-11"
    text: str  # as printed, whitespace collapsed
    blocks: tuple[int, ...]  # indexes of the page's blocks it was read from


def looks_like_words(text: str) -> bool:
    """Fallback garble check: most tokens are plain Latin words (NEETS junk is not)."""
    tokens = text.split()
    if len(tokens) < 3:
        return bool(tokens) and all(_WORD.match(t) or t.isdigit() for t in tokens)
    return sum(1 for t in tokens if _WORD.match(t)) / len(tokens) >= 0.6


def garble_check(threshold: float) -> Garbled:
    """The page stage's ``is_garbled`` (ingest.textcheck, re-exported by ingest.pdf), so
    both stages judge text alike; the simple check above if neither module is there."""
    try:
        from ingest.textcheck import is_garbled
    except ImportError:
        try:
            from ingest.pdf import is_garbled
        except ImportError:
            return lambda text: not looks_like_words(text)
    return lambda text: bool(is_garbled(text, threshold))


def text_blocks(page: pymupdf.Page) -> list[TextBlock]:
    blocks = []
    # Without image bytes: "dict" decodes every image of the page by default, and one
    # decompression bomb costs gigabytes and tens of seconds (tests/ingest/test_bad_inputs.py).
    for block in page.get_text("dict", sort=True, flags=TEXT_FLAGS)["blocks"]:
        lines, size = [], 0.0
        for line in block.get("lines", ()):
            text = "".join(span_texts(line["spans"])).strip()
            if text:  # NEETS blocks often open with a blank line far above the text
                lines.append((pymupdf.Rect(line["bbox"]), text))
                size = max([size] + [span["size"] for span in line["spans"] if span["text"].strip()])
        if lines:
            rect = pymupdf.Rect(lines[0][0])
            for r, _ in lines[1:]:
                rect |= r
            joined = "\n".join(t for _, t in lines)
            blocks.append(TextBlock(rect, lines, joined, len(joined.split()), size))
    return blocks


def captions(blocks: list[TextBlock]) -> list[Caption]:
    """Figure captions, from the line that opens one to the end of its block.

    A caption may close a block (NEETS "Figure 1B" under a boxed table). A body
    sentence "Figure 2-6 shows how..." parses too, so a caption without punctuation
    after its number must be short, and one inside a block must start with a capital."""
    found = []
    for i, block in enumerate(blocks):
        for n, (_, line) in enumerate(block.lines):
            parsed = parse_caption(line)
            if not parsed or not parsed[0].startswith("Figure"):
                continue
            rest = block.lines[n:]
            words = sum(len(t.split()) for _, t in rest)
            strong = bool(_STRONG.match(line))
            if (not strong and words > _PARAGRAPH_WORDS) or (n > 0 and not (strong and line[0].isupper())):
                continue
            rect = pymupdf.Rect(rest[0][0])
            for r, _ in rest[1:]:
                rect |= r
            found.append(Caption(rect, parsed[0], " ".join(" ".join(t for _, t in rest).split()), (i,)))
            break
    return found


def caption_cost(region: pymupdf.Rect, cap: Caption, blocks: list[TextBlock]) -> float | None:
    """How far a caption is from a figure (lower is nearer), None when it can't be its caption."""
    c = cap.rect
    overlap = min(region.x1, c.x1) - max(region.x0, c.x0)
    if overlap < min(10.0, 0.1 * c.width):  # left-aligned captions under centred figures count
        return None
    below, above = c.y0 - region.y1, region.y0 - c.y1
    middle, band = (c.y0 + c.y1) / 2, 0.2 * region.height  # a caption may sit inside a framed figure
    if below <= CAPTION_GAP_BELOW and middle >= region.y1 - band:
        cost, lo, hi = max(below, 0.0), region.y1, c.y0
    elif above <= CAPTION_GAP_ABOVE and middle <= region.y0 + band:
        cost, lo, hi = max(above, 0.0) + _ABOVE_PENALTY, c.y1, region.y0
    else:
        return None
    for i, block in enumerate(blocks):  # body text between them: it is not this figure's
        r = block.rect
        between = r.y0 >= lo - 1 and r.y1 <= hi + 1 and min(r.x1, region.x1) > max(r.x0, region.x0)
        if between and i not in cap.blocks and block.words > 2:
            return None
    return cost


def appendix_heading(blocks: list[TextBlock], page_height: float) -> Caption | None:
    """An "APPENDIX II" heading over a page that is one plate (NEETS page 125): the plate's label."""
    for i, block in enumerate(blocks[:3]):
        if block.rect.y1 > page_height * 0.3 or block.words > 6:
            continue
        refs = [r for r in find_refs(block.text) if r.startswith("Appendix")]
        if refs:
            used: tuple[int, ...] = (i,)
            text, rect = block.text, +block.rect
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            if nxt and nxt.words <= 10 and nxt.rect.y0 - rect.y1 < 30:  # its title line
                text, rect, used = f"{text} {nxt.text}", rect | nxt.rect, (i, i + 1)
            return Caption(rect, refs[0], " ".join(text.split()), used)
    return None


def label_lines(blocks: list[TextBlock], skip: set[int]) -> list[pymupdf.Rect]:
    """Boxes of the lines of short blocks set no larger than body text (labels), not of
    headings, body text or captions."""
    sizes = sorted(b.size for b in blocks for _ in range(b.words))
    body = sizes[len(sizes) // 2] if sizes else 0.0
    return [
        r for i, b in enumerate(blocks)
        if i not in skip and b.words <= _PARAGRAPH_WORDS and b.size <= body + 0.5
        for r, _ in b.lines
    ]


def _sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(])", flat) if s]


def _clip_words(text: str, limit: int = NEARBY_WORDS, tail: bool = False) -> str:
    """At most ``limit`` words: whole sentences from the start, or (``tail``) from the
    end, nearest the figure; cut mid-sentence only when one sentence is too long."""
    words = text.split()
    if len(words) <= limit:
        return " ".join(words)
    sentences = _sentences(text)
    kept: list[str] = []
    for sentence in reversed(sentences) if tail else sentences:
        if sum(len(k.split()) for k in kept) + len(sentence.split()) > limit:
            break
        kept.append(sentence)
    if kept:
        return " ".join(reversed(kept) if tail else kept)
    return " ".join(words[-limit:]) if tail else " ".join(words[:limit]) + " …"


def mentions(blocks: list[TextBlock], label: str, garbled: Garbled, skip: set[int]) -> list[str]:
    """Sentences that name the label ("as shown in figure 3-11"), in page order."""
    found = []
    for i, block in enumerate(blocks):
        if i in skip or label not in find_refs(block.text):
            continue
        for sentence in _sentences(block.text):
            if label in find_refs(sentence) and not garbled(sentence):
                found.append(sentence)
    return found


def nearby_text(page: pymupdf.Page, blocks: list[TextBlock], region: pymupdf.Rect, label: str,
                garbled: Garbled, skip: set[int]) -> str:
    """Sentences of this page, else of the pages beside it, that mention the label;
    else the clean block just above the figure. At most ~60 words."""
    if label:
        found = mentions(blocks, label, garbled, skip)
        doc, n = page.parent, page.number
        for other in (n - 1, n + 1):
            if found or not 0 <= other < doc.page_count:
                continue
            found = mentions(text_blocks(doc[other]), label, garbled, set())
        if found:
            return _clip_words(" ".join(found))
    above = [
        (i, b) for i, b in enumerate(blocks)
        if i not in skip and b.rect.y1 <= region.y0 + 2 and b.words > 2
        and min(b.rect.x1, region.x1) > max(b.rect.x0, region.x0)
    ]
    for _, block in sorted(above, key=lambda ib: -ib[1].rect.y1)[:1]:
        if not garbled(block.text):
            return _clip_words(block.text, tail=True)
    return ""
