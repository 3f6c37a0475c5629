"""Figures of a page: raster images and vector diagrams, cropped, captioned and read.

A figure is kept when it is captioned ("Figure 3-11.—Wiring diagram.") or big enough
to be a diagram. Decoration is dropped: images under ``min_figure_points``, logos that
repeat across pages, rules, page borders, boxes around notes, table grids (the page
stage chunks tables as text) and pages that are one image of text (scans, for the
page OCR stage).

No image is ever decoded to find it: placements come from ``page.get_image_info()``
(declared sizes, no pixels). ``page.get_image_rects()`` is avoided on purpose: it
hashes every image of the page, so one bomb image on a page would be decoded anyway.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pymupdf

from ingest import figure_text as ft
from ingest.drawings import vector_regions
from ingest.layout import LayoutModel
from ingest.ocr import OcrEngine
from ingest.spans import TEXT_FLAGS, span_texts
from manualrag.settings import IngestSettings
from manualrag.types import Figure, OcrLine, Page

# Uncaptioned figures must be this many times min_figure_points on their long side:
# keeps a 216x99 pt diagram, drops the 119 pt logos on the NEETS cover.
UNCAPTIONED_SCALE = 2.5
LABEL_MARGIN = 8.0  # labels this close outside a drawing belong to it (points)
CROP_PAD = 3.0
TOUCH = 2.0  # tiles of one diagram touching within this are merged (points)
SCAN_PROBE_SIDE = 1000  # px: enough to tell prose from labels, cheap to OCR
REPEAT_MIN_PAGES = 3
PAGE_IMAGE_SHARE = 0.5  # an image covering this much of a page may be the page itself
SCAN_MAX_WORDS = 20  # a page with fewer text-layer words shows its words in pictures
LAYOUT_SIDE = 1100  # px: the render a layout model reads (it resizes to ~800 anyway)
MIN_PART_POINTS = 40.0  # a figure found inside a page picture is at least this big, both sides


@dataclass(slots=True)
class _Region:
    rect: pymupdf.Rect
    source: Literal["raster", "vector"]
    frame: bool = False
    caption: ft.Caption | None = None


def _placements(page: pymupdf.Page) -> list[tuple[pymupdf.Rect, int, int, list[int]]]:
    """(box, declared width, height, candidate xrefs) of each image drawn on the page.

    get_image_info() has no xrefs without hashing (decoding); images are matched to
    xrefs by declared size, which is unique on almost every page."""
    by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
    for item in page.get_images(full=True):
        by_size[(item[2], item[3])].append(item[0])
    out = []  # inline images (BI/ID/EI) are here too, with no xref
    for info in page.get_image_info():
        w, h = int(info["width"]), int(info["height"])
        out.append((pymupdf.Rect(info["bbox"]) & page.rect, w, h, by_size.get((w, h), [])))
    return out


def _box(rect: pymupdf.Rect) -> tuple[float, float, float, float]:
    return (rect.x0, rect.y0, rect.x1, rect.y1)


def repeated_images(doc: pymupdf.Document) -> set[int]:
    """Xrefs of logos and letterheads: one image on at least half the pages (and 3), or
    drawn at the same place and size on 3 or more pages (whatever its xref there).

    A page-sized image on a page without a text layer is the page itself (a scan, a slide
    exported as a picture), not a letterhead, though every such page puts it in the same
    place: only the same xref repeated makes it one."""
    pages_of: dict[int, set[int]] = defaultdict(set)
    spots: dict[tuple[int, ...], set[int]] = defaultdict(set)
    xrefs_at: dict[tuple[int, ...], set[int]] = defaultdict(set)
    for number in range(doc.page_count):
        page = doc[number]
        pictured = None  # whether the page is a picture: asked only when a big image is on it
        for rect, w, h, xrefs in _placements(page):
            for xref in xrefs:
                pages_of[xref].add(number)
            if abs(rect) >= PAGE_IMAGE_SHARE * abs(page.rect):
                if pictured is None:
                    pictured = len(page.get_text("words")) < SCAN_MAX_WORDS
                if pictured:
                    continue
            spot = (w, h, *(round(v / 2) for v in _box(rect)))
            spots[spot].add(number)
            xrefs_at[spot].update(xrefs)
    half = max(REPEAT_MIN_PAGES, doc.page_count / 2)
    found = {x for x, pages in pages_of.items() if len(pages) >= half}
    for spot, pages in spots.items():
        if len(pages) >= REPEAT_MIN_PAGES:
            found |= xrefs_at[spot]
    return found


def _merge(regions: list[_Region]) -> list[_Region]:
    """Join touching or overlapping regions: tiled scans, vector callouts drawn over an image."""
    merged = True
    while merged:
        merged = False
        for i, a in enumerate(regions):
            for b in regions[i + 1:]:
                if (a.rect + (-TOUCH, -TOUCH, TOUCH, TOUCH)).intersects(b.rect):
                    a.rect |= b.rect
                    a.source = "raster" if "raster" in (a.source, b.source) else "vector"
                    a.frame = a.frame and b.frame
                    regions.remove(b)
                    merged = True
                    break
            if merged:
                break
    return regions


def _assign_captions(regions: list[_Region], caps: list[ft.Caption],
                     blocks: list[ft.TextBlock]) -> list[_Region]:
    """Nearest caption first, one caption per figure; a region beside a captioned one
    (parts A and B over one caption) joins it."""
    pairs = sorted(
        (cost, ri, ci)
        for ri, region in enumerate(regions)
        for ci, cap in enumerate(caps)
        if (cost := ft.caption_cost(region.rect, cap, blocks)) is not None
    )
    used: set[int] = set()
    for _, ri, ci in pairs:
        if regions[ri].caption is None and ci not in used:
            regions[ri].caption = caps[ci]
            used.add(ci)
    for region in [r for r in regions if r.caption is None]:
        for owner in regions:
            cap = owner.caption
            if cap is None or owner is region:
                continue
            overlap = min(region.rect.y1, owner.rect.y1) - max(region.rect.y0, owner.rect.y0)
            same_row = overlap >= 0.5 * min(region.rect.height, owner.rect.height)
            if same_row and ft.caption_cost(region.rect | owner.rect, cap, blocks) is not None:
                owner.rect |= region.rect
                regions.remove(region)
                break
    return regions


def _is_prose(lines: list[OcrLine]) -> bool:
    """Sentences, not labels: a page of text rather than a diagram."""
    if len(lines) < 3:
        return False
    return statistics.median(len(line.text.split()) for line in lines) >= 4


def _maybe_scan(page: pymupdf.Page, rect: pymupdf.Rect, blocks: list[ft.TextBlock]) -> bool:
    """An uncaptioned image that is the whole page's content, or lies under a (hidden
    OCR) text layer, may be a scanned page of text."""
    inside = outside = 0
    for block in blocks:
        if rect.contains(block.rect):
            inside += block.words
        elif not rect.intersects(block.rect):
            outside += block.words
    return outside <= 6 or inside >= 20


def _order(figs: list[_Region]) -> list[_Region]:
    """Top to bottom; figures sharing a row left to right."""
    figs = sorted(figs, key=lambda r: (r.rect.y0, r.rect.x0))
    rows: list[list[_Region]] = []
    for fig in figs:
        if rows and fig.rect.y0 < rows[-1][0].rect.y0 + 0.5 * rows[-1][0].rect.height:
            rows[-1].append(fig)
        else:
            rows.append([fig])
    return [fig for row in rows for fig in sorted(row, key=lambda r: r.rect.x0)]


def _expand(rect: pymupdf.Rect, labels: Iterable[pymupdf.Rect]) -> pymupdf.Rect:
    near = rect + (-LABEL_MARGIN, -LABEL_MARGIN, LABEL_MARGIN, LABEL_MARGIN)
    out = +rect
    for word in labels:
        if near.intersects(word) and word not in rect:
            out |= word
    return out


def _render(page: pymupdf.Page, clip: pymupdf.Rect, dpi: int, max_side: int) -> pymupdf.Pixmap:
    side_pt = max(clip.width, clip.height, 1.0)
    dpi = max(min(dpi, int(max_side * 72 / side_pt)), 18)  # a huge figure can't eat memory
    return page.get_pixmap(clip=clip, dpi=dpi)


def _rows(lines: list[OcrLine]) -> str:
    """Labels row by row: a line joins the row whose first line it overlaps by half its
    height, so "DIRECTION INDICATOR" and its "10 AMP" stay on one line of text."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.bbox[1] + ln.bbox[3]) / 2):
        if rows:
            head = rows[-1][0]
            overlap = min(line.bbox[3], head.bbox[3]) - max(line.bbox[1], head.bbox[1])
            if overlap >= 0.5 * min(line.bbox[3] - line.bbox[1], head.bbox[3] - head.bbox[1]):
                rows[-1].append(line)
                continue
        rows.append([line])
    return "\n".join(_join_row(sorted(row, key=lambda ln: ln.bbox[0])) for row in rows)


def _join_row(row: list[OcrLine]) -> str:
    # A wide gap separates columns (a symbol chart, a legend table): keep them apart.
    out = row[0].text
    for prev, line in itertools.pairwise(row):
        gap = line.bbox[0] - prev.bbox[2]
        out += (" | " if gap > 2.5 * (line.bbox[3] - line.bbox[1]) else " ") + line.text
    return out


def _read(ocr: OcrEngine, png: bytes) -> tuple[str, list[OcrLine]]:
    # A diagram's labels may run up its side (turned): a page's text does not.
    lines = [line for line in ocr.read(png, turned=True) if len(line.text.strip()) > 1]  # stray marks
    return _rows(lines), lines


def find_figures(
    doc: pymupdf.Document,
    number: int,
    settings: IngestSettings,
    ocr: OcrEngine | None,
    skip_xrefs: set[int],
    *,
    is_garbled: ft.Garbled | None = None,
    layout: LayoutModel | None = None,
) -> tuple[list[Figure], list[str]]:
    """Figures of 1-based page ``number`` in reading order, and warnings for the report.

    ``is_garbled(text)`` says a text-layer passage is font-encoding junk (such text is
    never used as nearby text); by default the page stage's ``ingest.textcheck.is_garbled``
    at ``settings.garbled_threshold``. ``layout``: finds the figures inside a page that is
    one picture (a scan, a slide); without it such a picture is judged whole."""
    page = doc[number - 1]
    garbled = is_garbled or ft.garble_check(settings.garbled_threshold)
    warnings: list[str] = []
    min_side = settings.min_figure_points
    regions: list[_Region] = []
    bombs: list[pymupdf.Rect] = []
    try:
        placements = _placements(page)
    except Exception as err:  # noqa: BLE001 - vector figures still count
        placements = []
        warnings.append(f"page {number}: images skipped ({type(err).__name__}: {err})")
    for rect, w, h, xrefs in placements:
        if w * h > settings.max_image_pixels:
            warnings.append(f"page {number}: image of {w}x{h} pixels skipped (more than "
                            f"max_image_pixels={settings.max_image_pixels})")
            bombs.append(rect)
        elif xrefs and all(x in skip_xrefs for x in xrefs):
            continue
        elif not rect.is_empty and min(rect.width, rect.height) >= min_side:
            regions.append(_Region(rect, "raster"))
    try:
        regions += [_Region(v.rect, "vector", v.frame) for v in vector_regions(page, min_side)]
    except Exception as err:  # noqa: BLE001 - raster figures still count
        warnings.append(f"page {number}: vector figures skipped ({type(err).__name__}: {err})")
    if not regions:
        return [], warnings

    blocks = ft.text_blocks(page)
    caps = ft.captions(blocks)
    regions = _assign_captions(_merge(regions), caps, blocks)
    uncaptioned = [r for r in regions if r.caption is None and not r.frame]
    heading = ft.appendix_heading(blocks, page.rect.height) if uncaptioned else None
    if heading is not None:
        max(uncaptioned, key=lambda r: abs(r.rect)).caption = heading
    skip_blocks = {i for r in regions if r.caption for i in r.caption.blocks}
    labels = ft.label_lines(blocks, skip_blocks)

    pictured = sum(b.words for b in blocks) < SCAN_MAX_WORDS  # the page is a picture: a scan, a slide
    figures: list[Figure] = []
    for region in _order(regions):
        if region.caption is None and (
            region.frame or max(region.rect.width, region.rect.height) < UNCAPTIONED_SCALE * min_side
        ):
            continue
        parts = [region]
        if layout is not None and pictured and region.caption is None and region.source == "raster" \
                and not any(region.rect.intersects(b) for b in bombs):
            # The figures inside the picture. None found: the page OCR stage reads it as
            # text, without the probe read that would otherwise decide (a second OCR of
            # every scanned page).
            try:
                parts = _split(page, region, layout)
            except Exception as err:  # noqa: BLE001 - the picture is then judged whole, as without a model
                warnings.append(f"page {number}: layout model failed ({type(err).__name__}: {err})")
        for part in parts:
            try:
                figure = _build(page, part, blocks, labels, bombs, settings, ocr, garbled, skip_blocks,
                                probe=part is region)
            except Exception as err:  # noqa: BLE001 - one bad figure never sinks the page
                warnings.append(f"page {number}: figure at {tuple(round(v) for v in _box(part.rect))} "
                                f"skipped ({type(err).__name__}: {err})")
                continue
            if isinstance(figure, str):
                if figure:
                    warnings.append(figure)
                continue
            figure.index = len(figures) + 1
            figure.in_picture = part is not region
            figures.append(figure)
    return figures, warnings


def _split(page: pymupdf.Page, region: _Region, layout: LayoutModel) -> list[_Region]:
    """The figures a layout model finds inside one picture of a page, in reading order."""
    clip = region.rect & page.rect
    pix = _render(page, clip, 200, LAYOUT_SIDE)
    image = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)[:, :, :3]
    parts = []
    for box in layout.figures(np.ascontiguousarray(image)):
        x0, y0, x1, y1 = box.box
        rect = pymupdf.Rect(clip.x0 + x0 * clip.width, clip.y0 + y0 * clip.height,
                            clip.x0 + x1 * clip.width, clip.y0 + y1 * clip.height) & clip
        if min(rect.width, rect.height) >= MIN_PART_POINTS:
            parts.append(_Region(rect, "raster"))
    return _order(parts)


def _build(page: pymupdf.Page, region: _Region, blocks: list[ft.TextBlock], labels: list[pymupdf.Rect],
           bombs: list[pymupdf.Rect], settings: IngestSettings, ocr: OcrEngine | None,
           garbled: ft.Garbled, skip_blocks: set[int], probe: bool = True) -> Figure | str:
    """One figure, or a string: a warning, or "" when the region is not a figure after all.

    ``probe``: an uncaptioned image that may be a scan of text is read first to tell (not
    for a part a layout model already called a figure)."""
    number = page.number + 1
    rect = region.rect if region.frame else _expand(region.rect, labels)
    clip = (rect + (-CROP_PAD, -CROP_PAD, CROP_PAD, CROP_PAD)) & page.rect
    cap = region.caption
    if cap is not None and clip.intersects(cap.rect):  # the padding must not show half a caption
        middle = (cap.rect.y0 + cap.rect.y1) / 2
        if middle >= rect.y1:
            clip.y1 = max(rect.y1, min(clip.y1, cap.rect.y0))
        elif middle <= rect.y0:
            clip.y0 = min(rect.y0, max(clip.y0, cap.rect.y1))
    if any(clip.intersects(b) for b in bombs):
        box = tuple(round(v) for v in _box(clip))
        return f"page {number}: figure at {box} overlaps an oversized image; skipped"
    if probe and cap is None and region.source == "raster" and _maybe_scan(page, region.rect, blocks):
        if ocr is None:
            return ""  # a scanned page: the page OCR stage reads it
        probe = _render(page, region.rect, settings.figure_dpi, SCAN_PROBE_SIDE).tobytes("png")
        if _is_prose(_read(ocr, probe)[1]):
            return ""
    pix = _render(page, clip, settings.figure_dpi, settings.figure_max_side)
    png = pix.tobytes("png")
    text = ""
    if region.source == "vector":
        text = _vector_labels(page, rect, cap)
    if ocr is not None and (region.source == "raster" or (text and garbled(text))):
        # OCR time grows with the number of labels more than with pixels (~60 ms a label
        # on 2 cores); the cap only keeps a huge figure's copy within what OCR resizes to.
        copy = png
        if max(pix.width, pix.height) > settings.figure_ocr_max_side:
            copy = _render(page, clip, settings.figure_dpi, settings.figure_ocr_max_side).tobytes("png")
        text = _read(ocr, copy)[0]
    label = cap.label if cap else ""
    return Figure(
        page=number,
        index=0,
        bbox=(round(rect.x0, 2), round(rect.y0, 2), round(rect.x1, 2), round(rect.y1, 2)),
        source=region.source,
        label=label,
        caption=cap.text if cap else "",
        ocr_text=text,
        nearby_text=ft.nearby_text(page, blocks, rect, label, garbled, skip_blocks),
        png=png,
    )


def _vector_labels(page: pymupdf.Page, rect: pymupdf.Rect, cap: ft.Caption | None) -> str:
    """The PDF's own words inside the drawing (no OCR needed), without its caption,
    row by row like OCR'd labels (a boxed table keeps its rows)."""
    lines = []
    # Glyph boxes of the last row often poke past a frame: read a little beyond it.
    for block in page.get_text("dict", clip=rect + (-CROP_PAD, -CROP_PAD, CROP_PAD, CROP_PAD),
                               flags=TEXT_FLAGS)["blocks"]:
        for line in block.get("lines", ()):
            text = " ".join("".join(span_texts(line["spans"])).split())
            box = pymupdf.Rect(line["bbox"])  # line boxes overlap: judge by the centre
            if text and not (cap and cap.rect.contains((box.tl + box.br) / 2)):
                lines.append(OcrLine(text, tuple(line["bbox"]), 1.0))
    return _rows(lines)


def captions_from_ocr(figures: list[Figure], page: Page) -> None:
    """Captions for the figures of a page whose words came from OCR (a scan): they were
    read after the figures were found, so a "Figure 3-2.—…" paragraph there is matched to
    the nearest uncaptioned figure now, by the same rules as a text-layer caption."""
    if not page.ocr or not any(not f.caption for f in figures):
        return
    blocks = []
    for b in page.blocks:
        rect = pymupdf.Rect(b.bbox)
        lines = [(rect, line) for line in b.text.splitlines() if line.strip()]
        blocks.append(ft.TextBlock(rect, lines, b.text, len(b.text.split()), b.size))
    caps = ft.captions(blocks)
    taken = {f.label for f in figures if f.label}
    pairs = sorted(
        (cost, fi, ci)
        for fi, fig in enumerate(figures) if not fig.caption
        for ci, cap in enumerate(caps) if cap.label not in taken
        if (cost := ft.caption_cost(pymupdf.Rect(fig.bbox), cap, blocks)) is not None
    )
    used: set[int] = set()
    for _, fi, ci in pairs:
        if not figures[fi].caption and ci not in used:
            figures[fi].caption, figures[fi].label = caps[ci].text, caps[ci].label
            used.add(ci)
