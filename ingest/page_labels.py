"""Printed page labels: the number a reader sees on a page, which is rarely its PDF index.

A technician says "the figure on page 12" meaning the page *printed* 12. Manuals number
their pages in three common ways, tried in order:

1. the PDF's own page labels (``/PageLabels``: "i", "ii", "1", "2", ...), when they say
   more than the page index;
2. a number printed in the header or footer band ("12", "Page 12", "12 of 40", "3-12"),
   accepted only where it agrees with its neighbours: plain numbers must keep one offset
   from the page index on most numbered pages (a year or a part number in a footer does
   not), chapter-page labels ("3-12") are taken as printed;
3. none: the label is left empty and a page reference means the PDF index.

Pages between numbered ones (a full-page figure, a blank verso) get their label from the
shared offset, as a reader counting pages would.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import pymupdf

from ingest.textlayer import MARGIN_BAND

# "12", "Page 12", "p. 12", "- 12 -", "12 of 40", "12/40"
_PLAIN = re.compile(r"^(?:page|pg\.?|p\.)?\s*[-–—]?\s*(\d{1,4})\s*[-–—]?\s*(?:(?:of|/)\s*\d{1,4})?$", re.IGNORECASE)
# "3-12", "A-4", "3–12": chapter (or appendix letter) and page
_CHAPTER_PAGE = re.compile(r"^(?:page\s+)?([A-Z]|\d{1,2})\s*[-–—]\s*(\d{1,3})$", re.IGNORECASE)
# A shared offset must hold on at least this many pages, and this share of the pages with a number.
MIN_AGREEING_PAGES = 3
MIN_AGREEING_SHARE = 0.5


def page_labels(doc: pymupdf.Document) -> list[str]:
    """One label per page ("" where none is known), index 0 for PDF page 1."""
    count = doc.page_count
    own = _pdf_labels(doc)
    if own is not None:
        return own
    candidates = [_margin_candidates(doc, i) for i in range(count)]
    return labels_from_candidates(candidates)


def _pdf_labels(doc: pymupdf.Document) -> list[str] | None:
    """The PDF's /PageLabels, when present and not just the index again."""
    try:
        if not doc.get_page_labels():
            return None
        labels = [doc[i].get_label() or "" for i in range(doc.page_count)]
    except Exception:  # a broken label tree is not worth failing a manual for
        return None
    if all(label in ("", str(i + 1)) for i, label in enumerate(labels)):
        return None
    return labels


def _margin_candidates(doc: pymupdf.Document, index: int) -> list[str]:
    """Short lines in the header and footer bands of one page that could be a page number."""
    try:
        page = doc.load_page(index)
        height = page.rect.height
        found: list[str] = []
        for block in page.get_text("dict", flags=0)["blocks"]:
            for line in block.get("lines", ()):
                box = line["bbox"]
                if not (box[3] <= height * MARGIN_BAND or box[1] >= height * (1 - MARGIN_BAND)):
                    continue
                text = " ".join("".join(s["text"] for s in line["spans"]).split())
                # A footer line may hold a title and the number: "Wiring Practices 3-12"
                for piece in [text, *text.split()[-1:], *text.split()[:1]]:
                    if _PLAIN.match(piece) or _CHAPTER_PAGE.match(piece):
                        found.append(piece)
        return found
    except Exception:
        return []


def labels_from_candidates(candidates: Sequence[Sequence[str]]) -> list[str]:
    """Labels from each page's candidate strings (see module docstring for the rules)."""
    count = len(candidates)
    labels = [""] * count
    chapter = [next((m.group(0) for c in cands if (m := _CHAPTER_PAGE.match(c))), "") for cands in candidates]
    numbers = [[int(m.group(1)) for c in cands if (m := _PLAIN.match(c))] for cands in candidates]
    offsets = Counter(n - (i + 1) for i, ns in enumerate(numbers) for n in set(ns))
    numbered = sum(1 for ns in numbers if ns)
    if offsets:
        offset, agree = offsets.most_common(1)[0]
        if agree >= MIN_AGREEING_PAGES and agree >= MIN_AGREEING_SHARE * numbered and offset != 0:
            first = next(i for i, ns in enumerate(numbers) if offset + i + 1 in ns)
            for i in range(first, count):
                if offset + i + 1 > 0:
                    labels[i] = str(offset + i + 1)
    chapters = sum(1 for c in chapter if c)
    if chapters >= MIN_AGREEING_PAGES:
        for i, c in enumerate(chapter):
            if c and not labels[i]:
                labels[i] = re.sub(r"\s*[-–—]\s*", "-", c).upper()
    return labels


def label_index(labels: Sequence[str]) -> dict[str, list[int]]:
    """Label (lower case) -> the 1-based pages that carry it."""
    out: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        if label:
            out.setdefault(label.lower(), []).append(i + 1)
    return out
