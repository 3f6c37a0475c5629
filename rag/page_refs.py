"""Page references in a question ("on page 12", "pages 51-53", "page three", "the cover")
resolved to PDF pages.

A reference names the page as printed: a manual whose printed labels are known (the PDF's
page labels, or the numbers in its header or footer, see ``ingest.page_labels``) maps the
label to its PDF page; otherwise the number is the PDF page itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Numbers as words, here and in the count check (rag/grounding.py).
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_ONE = r"(?:[A-Z]-\d{1,3}|\d{1,4}-\d{1,3}|\d{1,4}|" + "|".join(NUMBER_WORDS) + r")"
# "page 12", "pages 14 and 15", "pages 51-53", "pages 3, 4 and 5", "pp. 5 to 7", "p. 12"
PAGE_REF = re.compile(
    rf"\b(?:pages?|pp?\.)\s+({_ONE}(?:\s*(?:,|and|&|to|through|thru|[-–—])\s*{_ONE})*)\b",
    re.IGNORECASE,
)
_PIECE = re.compile(rf"{_ONE}|to|through|thru|[–—]|(?<=\s)-(?=\s)", re.IGNORECASE)
MAX_RANGE = 60  # "pages 1-500" is not a question about particular pages
# The manual's own cover: "the cover page", "the title page", "the cover of the brochure", or
# "on the cover" ending the question. Not "remove the back cover" nor "the cover of the pump":
# a device's cover is no page.
_DOCUMENT = r"(?:manual|brochure|guide|handbook|book|booklet|document|catalog(?:ue)?|leaflet|pdf|report)"
_COVER = re.compile(
    rf"\b(?:cover|title)\s+page\b"
    rf"|\b(?:front\s+)?cover\s+of\s+(?:the|this)\s+{_DOCUMENT}\b"
    rf"|\bon\s+(?:the|its)\s+(?:front\s+)?cover\s*[?.!]*\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PageRef:
    """One reference as written: single labels, and ranges as (first, last) labels."""

    labels: tuple[str, ...]
    ranges: tuple[tuple[str, str], ...]
    cover: bool = False  # the first PDF page, whatever its label


def find_page_refs(question: str) -> PageRef | None:
    singles: list[str] = []
    ranges: list[tuple[str, str]] = []
    for match in PAGE_REF.finditer(question):
        tokens = [t.lower() for t in _PIECE.findall(match.group(1))]
        tokens = [str(NUMBER_WORDS.get(t, t)) for t in tokens]
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if i + 2 < len(tokens) and tokens[i + 1] in ("to", "through", "thru", "–", "—", "-"):
                ranges.append((tok, tokens[i + 2]))
                i += 3
                continue
            if tok not in ("to", "through", "thru", "–", "—", "-"):
                singles.append(tok)
            i += 1
    cover = bool(_COVER.search(question))
    if not singles and not ranges and not cover:
        return None
    return PageRef(tuple(singles), tuple(ranges), cover)


def resolve(ref: PageRef, labels: Sequence[str], page_count: int) -> list[int]:
    """The PDF pages (1-based, sorted) a reference names in a manual with these labels."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        if label:
            by_label.setdefault(label.lower(), []).append(i + 1)

    def one(token: str) -> list[int]:
        if token in by_label:
            return by_label[token]
        if token.isdigit() and 1 <= int(token) <= page_count:
            return [int(token)]
        if "-" in token and token not in by_label:
            # "51-53" written without spaces: a range, unless the manual labels pages that way
            first, _, last = token.partition("-")
            if first.isdigit() and last.isdigit():
                return span(first, last)
        return []

    def span(first: str, last: str) -> list[int]:
        a, b = one(first), one(last)
        if not a or not b or b[0] < a[0] or b[-1] - a[0] > MAX_RANGE:
            return sorted(set(a + b))
        return list(range(a[0], b[-1] + 1))

    pages: set[int] = {1} if ref.cover and page_count else set()
    for token in ref.labels:
        pages.update(one(token))
    for first, last in ref.ranges:
        pages.update(span(first, last))
    return sorted(pages)
