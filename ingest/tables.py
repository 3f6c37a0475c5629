"""Tables: grids found by PyMuPDF, filled with positioned words, written as markdown.

Why ``use_layout=False`` first: the line-based finder costs ~0.05 s/page and finds every
ruled table (all the NEETS tables with rules, and the test tables); the layout model costs
0.4-1 s/page. Borderless tables still matter (NEETS tables 2-1 and 2-2 have no rules), so
the layout model runs only on pages where a "Table N" caption has no grid next to it.

Cells are filled from positioned words rather than ``Table.extract()`` because extract()
glues words ("Controltransformer") and because the same code must fill a grid from OCR
words when the table's text layer is junk.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import pymupdf

from manualrag.types import BBox

log = logging.getLogger(__name__)

Word = tuple[float, float, float, float, str]  # x0, y0, x1, y1, text in PDF points
CAPTION_GAP = 40.0  # points between a caption and its table


@dataclass(frozen=True, slots=True)
class Grid:
    bbox: BBox
    rows: tuple[tuple[BBox | None, ...], ...]  # cell boxes per row; None where a merged cell covers it


def _grid(table: pymupdf.table.Table) -> Grid:
    rows = tuple(tuple(tuple(c) if c else None for c in row.cells) for row in table.rows)
    return Grid(tuple(table.bbox), rows)  # type: ignore[arg-type]


def overlap(a: BBox, b: BBox) -> float:
    """Area of the intersection of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def area(box: BBox) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def near_caption(caption: BBox, table: BBox) -> bool:
    """Caption directly above or below the table, overlapping it horizontally."""
    if min(caption[2], table[2]) <= max(caption[0], table[0]):
        return False
    gap = max(table[1] - caption[3], caption[1] - table[3])
    return gap <= CAPTION_GAP


def find_grids(page: pymupdf.Page, captions: Sequence[BBox] = ()) -> list[Grid]:
    """Table grids on the page; ``captions`` are boxes of "Table N" captions found on it."""
    # A ruled grid needs rules: most manual pages have none, and asking costs 0.17 s for
    # the 152 NEETS pages against 7.6 s for the line finder on all of them.
    rules = sum(len(path["items"]) for path in page.get_cdrawings())
    grids = [_grid(t) for t in page.find_tables(use_layout=False).tables] if rules >= 4 else []
    missing = [c for c in captions if not any(near_caption(c, g.bbox) for g in grids)]
    if missing:
        try:
            found = [_grid(t) for t in page.find_tables().tables]
        except Exception as err:  # the layout model is optional help, never a reason to fail a page
            log.warning("page %d: layout table finder failed: %s", page.number + 1, err, exc_info=True)
            found = []
        for grid in found:
            if any(near_caption(c, grid.bbox) for c in missing) and not any(
                overlap(grid.bbox, g.bbox) for g in grids
            ):
                grids.append(grid)
    return grids


def _center_in(word: Word, box: BBox) -> bool:
    cx, cy = (word[0] + word[2]) / 2, (word[1] + word[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def _lines(words: list[Word]) -> list[list[Word]]:
    """Words grouped into visual lines by vertical centre, top to bottom."""
    if not words:
        return []
    tol = statistics.median(w[3] - w[1] for w in words) * 0.5
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: ((w[1] + w[3]) / 2, w[0])):
        cy = (word[1] + word[3]) / 2
        if lines and abs(cy - statistics.fmean((w[1] + w[3]) / 2 for w in lines[-1])) <= tol:
            lines[-1].append(word)
        else:
            lines.append([word])
    return [sorted(line, key=lambda w: w[0]) for line in lines]


def _column(word: Word, cells: Sequence[BBox | None]) -> int:
    cx = (word[0] + word[2]) / 2
    best, best_d = 0, float("inf")
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        if cell[0] <= cx <= cell[2]:
            return i
        d = min(abs(cx - cell[0]), abs(cx - cell[2]))
        if d < best_d:
            best, best_d = i, d
    return best


def table_rows(grid: Grid, words: Sequence[Word]) -> list[list[str]]:
    """Cell texts per row. Each word goes to the smallest cell holding its centre (so a
    cell merged over two rows does not swallow the second). A row holding several stacked
    data lines (a table whose body has no horizontal rules) becomes one row per line, so
    values stay aligned."""
    ncols = max((len(r) for r in grid.rows), default=0)
    cells = [(area(c), r, i, c) for r, row in enumerate(grid.rows) for i, c in enumerate(row) if c]
    placed: dict[int, list[tuple[int, Word]]] = {}
    for word in words:
        hits = [(a, r, i) for a, r, i, c in cells if _center_in(word, c)]
        if hits:
            _, r, i = min(hits)
            placed.setdefault(r, []).append((i, word))
    out: list[list[str]] = []
    for index in sorted(placed):
        column = {id(w): i for i, w in placed[index]}
        lines = [[(column[id(w)], w[4]) for w in line] for line in _lines([w for _, w in placed[index]])]
        multi = [len({c for c, _ in line}) >= 2 for line in lines]
        stacked = index > 0 and len(lines) >= 3 and sum(multi) >= 0.66 * len(lines)
        for group in [[line] for line in lines] if stacked else [lines]:
            texts = [""] * ncols
            for line in group:
                for col, text in line:
                    texts[col] = f"{texts[col]} {text}".strip()
            out.append(texts)
    return out


def to_markdown(rows: list[list[str]], caption: str = "") -> str | None:
    """Markdown table (first row as header), or None when the grid holds no real table:
    a frame around a text box has one non-empty column or row."""
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return None
    keep = [i for i in range(len(rows[0])) if any(i < len(r) and r[i].strip() for r in rows)]
    rows = [[(r[i] if i < len(r) else "").replace("|", "/").strip() for i in keep] for r in rows]
    if len(rows) < 2 or len(keep) < 2:
        return None
    lines = [caption] if caption else []
    lines.append("| " + " | ".join(rows[0]) + " |")
    lines.append("|" + " --- |" * len(keep))
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def split_ocr_line(bbox: BBox, text: str) -> list[Word]:
    """An OCR line as words, with x positions spread by character offset, so a line that
    runs across cells ("Steel (soft) 15.9") can be split between columns."""
    parts = text.split()
    if not parts:
        return []
    width = (bbox[2] - bbox[0]) / max(len(text), 1)
    words, pos = [], 0
    for part in parts:
        start = text.index(part, pos)
        pos = start + len(part)
        words.append((bbox[0] + start * width, bbox[1], bbox[0] + pos * width, bbox[3], part))
    return words
