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
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import pymupdf

from ingest.spans import Word, page_words
from manualrag.types import BBox

log = logging.getLogger(__name__)

CAPTION_GAP = 40.0  # points between a caption and its table


@dataclass(frozen=True, slots=True)
class Grid:
    bbox: BBox
    rows: tuple[tuple[BBox | None, ...], ...]  # cell boxes per row; None where a merged cell covers it
    # Column names read from lines away from the grid (a spec page prints its model names
    # once at the top): the first row of the table, ahead of the rows the grid holds.
    header: tuple[str, ...] = ()


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


RULE_WIDTH = 2.0  # points: an image this thin, and longer than RULE_MIN, is a drawn rule
RULE_MIN = 5.0

Segment = tuple[tuple[float, float], tuple[float, float]]


def image_rules(page: pymupdf.Page) -> list[Segment]:
    """Table rules some PDF writers draw as images: a one-pixel image stretched into a thin
    line. The line finder sees only vector paths, so these are handed to it as lines (a
    compiler manual's every option and instruction table is ruled this way)."""
    lines: list[Segment] = []
    for info in page.get_image_info():
        x0, y0, x1, y1 = info["bbox"]
        width, height = x1 - x0, y1 - y0
        if min(width, height) > RULE_WIDTH or max(width, height) < RULE_MIN:
            continue
        if width >= height:
            lines.append(((x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)))
        else:
            lines.append((((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)))
    return lines


def find_grids(page: pymupdf.Page, captions: Sequence[BBox] = ()) -> list[Grid]:
    """Table grids on the page; ``captions`` are boxes of "Table N" captions found on it."""
    # A ruled grid needs rules: most manual pages have none, and asking costs 0.17 s for
    # the 152 NEETS pages against 7.6 s for the line finder on all of them.
    drawn = image_rules(page)
    rules = sum(len(path["items"]) for path in page.get_cdrawings()) + len(drawn)
    grids = [_grid(t) for t in page.find_tables(use_layout=False, add_lines=drawn).tables] if rules >= 4 else []
    words = page_words(page)
    grids += [g for g in column_grids(words) if not any(overlap(g.bbox, o.bbox) for o in grids)]  # type: ignore[arg-type]
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
    out: list[list[str]] = [list(grid.header)] if grid.header else []
    for index in sorted(placed):
        column = {id(w): i for i, w in placed[index]}
        lines = [[(column[id(w)], w[4]) for w in line] for line in _lines([w for _, w in placed[index]])]
        multi = [len({c for c, _ in line}) >= 2 for line in lines]
        # (A column grid's rows are already one per label, wrapped lines and all.)
        stacked = not grid.header and index > 0 and len(lines) >= 3 and sum(multi) >= 0.66 * len(lines)
        for group in [[line] for line in lines] if stacked else [lines]:
            texts = [""] * ncols
            for line in group:
                for col, text in line:
                    texts[col] = f"{texts[col]} {text}".strip()
            out.append(texts)
    return out


# -- tables without rules: columns of numbers under a row of names --------------------------------

# A cell value: "72.4", "56.9/57.1", "(37.5/38.0)", "3310", "28/39/32".
_NUMBER = re.compile(r"^\(?\d[\d.,/:]*\)?$")
MIN_VALUES = 4  # numbers on a line that make it a row of a spec table
MIN_ROWS = 3


def column_grids(words: Sequence[Word]) -> list[Grid]:
    """Spec tables printed without rules: rows of a label and four or more numbers whose
    positions line up in columns, under a line of column names (the models or trims of a
    brochure's spec pages, a datasheet's conditions). Read as lines, "Fuel tank (gal.)
    15.8/14.4 ... 13.2 13.2" says nothing about which value belongs to which model.

    Strict on purpose, since numbers also stand on maps and in code listings: most rows
    need a label on their left, and the names line must name at least 80% of the columns,
    in at most four words each, every word with a letter in it."""
    lines = _lines(list(words))
    if not lines:
        return []
    height = statistics.median(w[3] - w[1] for w in words)
    is_row = [sum(bool(_NUMBER.match(w[4])) for w in line) >= MIN_VALUES for line in lines]
    grids = []
    for block in _row_blocks(lines, is_row, height):
        grid = _column_grid(lines, block, [i for i in block if is_row[i]], height)
        if grid is not None:
            grids.append(grid)
    return grids


def _row_blocks(lines: list[list[Word]], is_row: list[bool], height: float) -> list[list[int]]:
    """Runs of rows, with the section lines between them ("INTERIOR DIMENSIONS (in.)")."""
    blocks: list[list[int]] = []
    current: list[int] = []
    for i, line in enumerate(lines):
        if is_row[i]:
            if current and line[0][1] - max(w[3] for w in lines[current[-1]]) > 3 * height:
                blocks.append(current)
                current = []
            current.append(i)
        elif current and any(is_row[i + 1 : i + 3]):
            current.append(i)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return [b for b in blocks if sum(is_row[i] for i in b) >= MIN_ROWS]


def _column_grid(lines: list[list[Word]], block: list[int], rows: list[int], height: float) -> Grid | None:
    numbers = [w for i in rows for w in lines[i] if _NUMBER.match(w[4])]
    width = statistics.median(w[2] - w[0] for w in numbers)
    centres = sorted((w[0] + w[2]) / 2 for w in numbers)
    clusters = [[centres[0]]]
    for c in centres[1:]:
        if c - clusters[-1][-1] > max(6.0, 0.5 * width):
            clusters.append([c])
        else:
            clusters[-1].append(c)
    mids = [statistics.fmean(c) for c in clusters if len(c) >= 0.3 * len(rows)]
    if len(mids) < 3:
        return None
    first = min(w[0] for w in numbers if abs((w[0] + w[2]) / 2 - mids[0]) < width) - 2
    left = min(w[0] for i in block for w in lines[i]) - 1
    right = max(w[2] for i in block for w in lines[i]) + 1
    bounds = [first, *((a + b) / 2 for a, b in zip(mids, mids[1:])), right]

    def column(word: Word) -> int | None:
        x = (word[0] + word[2]) / 2
        return next((k for k in range(len(mids)) if bounds[k] <= x <= bounds[k + 1]), None)

    def lettered(word: Word) -> bool:
        return any(ch.isalpha() for ch in word[4])

    labels = [[w for w in lines[i] if (w[0] + w[2]) / 2 < first] for i in rows]
    if sum(any(lettered(w) for w in label) for label in labels) < max(MIN_ROWS, 0.6 * len(rows)):
        return None
    label_right = max((w[2] for label in labels for w in label), default=left)
    # The names: the nearest line above with a word over half the columns, nothing where the
    # labels stand and no number; then the lines stacked right on top of it ("XLE" / "Hybrid").
    names: list[int] = []
    for j in range(block[0] - 1, -1, -1):
        line = lines[j]
        clear = all((w[0] + w[2]) / 2 >= label_right for w in line)
        covered = {column(w) for w in line} - {None}
        if not names:
            if clear and len(covered) >= 0.5 * len(mids) and not any(_NUMBER.match(w[4]) for w in line):
                names.append(j)
        elif clear and covered and lines[names[0]][0][1] - max(w[3] for w in line) <= 1.5 * height:
            names.insert(0, j)
        else:
            break
    heads = [[w for j in names for w in lines[j] if column(w) == k] for k in range(len(mids))]
    if sum(bool(h) for h in heads) < 0.8 * len(mids) or any(len(h) > 4 for h in heads):
        return None
    if not all(lettered(w) for h in heads for w in h):
        return None
    # One row per label: values with no label of their own ("(88 kW)" under "118 HP") go
    # with the row above, a label with no values ("Curb weight (lb.)/") with the row below.
    groups: list[list[int]] = []
    waiting: list[int] = []
    for i in block:
        labelled = any((w[0] + w[2]) / 2 < first for w in lines[i])
        valued = any(column(w) is not None for w in lines[i])
        if valued and not labelled and groups and not waiting:
            groups[-1].append(i)
        elif labelled and not valued:
            waiting.append(i)
        else:
            groups.append([*waiting, i])
            waiting = []
    if waiting:
        groups.append(waiting)
    cells = []
    for group in groups:
        top = min(w[1] for i in group for w in lines[i]) - 0.5
        bottom = max(w[3] for i in group for w in lines[i]) + 0.5
        cells.append(((left, top, first, bottom), *((bounds[k], top, bounds[k + 1], bottom) for k in range(len(mids)))))
    bbox = (left, cells[0][0][1], right, cells[-1][0][3])
    header = ("", *(" ".join(w[4] for w in sorted(h, key=lambda w: (w[1], w[0]))) for h in heads))
    return Grid(bbox, tuple(cells), header)


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
