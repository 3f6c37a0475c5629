"""Counting questions answered from the library's own structure, not guessed.

"How many figures are on pages 51-53?" has an exact answer in the catalog: the figure and
table records of those pages. A small model asked to count figures from a few lines of
evidence guesses; given the catalog's count as a source of its own, it copies it, and the
grounding check can vouch for the number. The fact is added when a question asks "how many"
about pages it names, or about the figures or tables of a manual.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from manualrag.types import Hit, Record
from rag.grounding import HOW_MANY

CATALOG_PREFIX = "catalog:"  # ids of these sources: never grouped with a page's text
_FIGURE_WORDS = re.compile(
    r"\b(figures?|diagrams?|images?|pictures?|photos?|photographs?|illustrations?|drawings?|tables?)\b",
    re.IGNORECASE,
)
MAX_LISTED = 12  # figures named one by one in the fact; the count covers the rest


def wants_count(question: str, pages_named: bool) -> bool:
    return bool(HOW_MANY.search(question)) and (pages_named or bool(_FIGURE_WORDS.search(question)))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _page_span(pages: Sequence[int]) -> str:
    if len(pages) == 1:
        return f"page {pages[0]}"
    if list(pages) == list(range(pages[0], pages[-1] + 1)):
        return f"pages {pages[0]}-{pages[-1]}"
    return "pages " + ", ".join(str(p) for p in pages)


def catalog_fact(manual: str, records: Sequence[Record], pages: Sequence[int] | None) -> Hit | None:
    """One source stating how many figures and tables `pages` of `manual` hold (all pages
    when None), with the figures' captions. None when there is nothing to count."""
    chosen = [r for r in records if r.manual == manual and r.kind in ("figure", "table")]
    if pages is not None:
        chosen = [r for r in chosen if r.page in pages]
    scope = _page_span(sorted(pages)) if pages else "the whole manual"
    figures = [r for r in chosen if r.kind == "figure"]
    tables = [r for r in chosen if r.kind == "table"]
    lines = [f"Catalog of {scope}: {_plural(len(figures), 'figure')} (images, photos, diagrams) "
             f"and {_plural(len(tables), 'table')}."]
    if pages and len(pages) > 1:
        per_page = Counter(r.page for r in figures)
        lines.append("; ".join(f"page {p}: {_plural(per_page.get(p, 0), 'figure')}" for p in sorted(pages)) + ".")
    for n, fig in enumerate(figures[:MAX_LISTED], 1):
        name = fig.caption or fig.figure or "untitled"
        lines.append(f"{n}. {' '.join(name.split())[:80]} (page {fig.page})")
    if not pages and not chosen:
        return None
    first = sorted(pages)[0] if pages else (chosen[0].page if chosen else 1)
    return Hit(
        id=f"{CATALOG_PREFIX}{manual}:{scope}",
        manual=manual,
        page=first,
        kind="text",
        text="\n".join(lines),
        score=1.0,
        section="Library catalog",
    )
