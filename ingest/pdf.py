"""Pages of a PDF as typed blocks: headings, text, captions and tables in reading order.

Text comes from the PDF's text layer where it is real, and from OCR where it is not:
blocks whose font encoding is broken (see ``ingest.textcheck``) and pages that are only
a scanned image. All OCR of a page is one render of one region, with the parts that need
no OCR painted white: RapidOCR pays ~1 s of detection per call and recognition per line,
so one call that skips clean lines beats many small ones.

Everything here is top-level and takes picklable arguments (a path, a page number,
settings), so a process pool can read pages in parallel.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pymupdf

from ingest import page_ocr, spans, tables
from ingest.font_decode import FontDecoder
from ingest.ocr import OcrEngine
from ingest.textcheck import is_garbled, known_word_share, letter_tokens
from ingest.textlayer import (
    Draft,
    Line,
    body_font_size,
    center_in,
    classify,
    furniture,
    is_caption,
    merge_runs,
    mostly_inside,
    ocr_kind,
    text_drafts,
    union,
)
from manualrag.errors import UnreadablePdf
from manualrag.settings import IngestSettings
from manualrag.types import BBox, Block, Page

# Re-exported: the garbled-text checks and caption test are part of this module's interface.
__all__ = [
    "body_font_size",
    "is_caption",
    "is_garbled",
    "known_word_share",
    "open_pdf",
    "read_page",
    "text_layer_problem",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------- opening


def open_pdf(path: Path, settings: IngestSettings) -> pymupdf.Document:
    """Open a PDF for reading, or raise ``UnreadablePdf`` with a reason a user can act on."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise UnreadablePdf(where, "file not found" if not path.exists() else "not a file")
    size = path.stat().st_size
    if size == 0:
        raise UnreadablePdf(where, "the file is empty: upload the complete PDF")
    if size > settings.max_file_mb * 1024 * 1024:
        raise UnreadablePdf(
            where,
            f"the file is {size / 2**20:.0f} MB, over the {settings.max_file_mb} MB limit: "
            "split it or raise ingest.max_file_mb",
        )
    with path.open("rb") as handle:
        if b"%PDF-" not in handle.read(1024):
            raise UnreadablePdf(where, "not a PDF file (no %PDF- header): save or export it as PDF first")
        handle.seek(max(size - 1024, 0))
        complete = b"%%EOF" in handle.read()
    damaged = "the PDF is damaged and could not be repaired: download or export it again"
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as err:
        raise UnreadablePdf(where, damaged) from err
    if doc.needs_pass and not doc.authenticate(""):  # owner-password-only files open with ""
        doc.close()
        raise UnreadablePdf(where, "encrypted with a password: remove the password and upload again")
    count = doc.page_count
    if count == 0:
        repaired = doc.is_repaired
        doc.close()
        raise UnreadablePdf(where, damaged if repaired else "the PDF has no pages")
    if count > settings.max_pages:
        doc.close()
        raise UnreadablePdf(
            where,
            f"{count} pages, over the {settings.max_pages}-page limit: split it or raise ingest.max_pages",
        )
    try:  # a repaired file can list pages it cannot load
        doc.load_page(0)
        doc.load_page(count - 1)
    except Exception as err:
        doc.close()
        raise UnreadablePdf(where, damaged) from err
    if doc.is_repaired and not complete:
        # Cut short (an interrupted download): MuPDF rebuilds the page list, but the pages
        # after the cut come back blank. Half a manual must not pass for a whole one.
        doc.close()
        raise UnreadablePdf(where, "the file is incomplete (truncated): download or export it again")
    if doc.is_repaired:  # complete but with a broken cross-reference table: MuPDF rebuilt it
        log.warning("%s: damaged PDF repaired on opening", where)
    return doc


# ----------------------------------------------------------------------------------- the page


@dataclass(slots=True)
class _Layout:
    drafts: list[Draft]
    tables: list[tuple[tables.Grid, str | None]]  # grid, markdown (None: its text layer is junk)
    ocr_targets: list[BBox]  # garbled blocks and tables, scanned images
    blank: list[BBox]  # what OCR must not read again: clean text, figures, other images
    clean: list[BBox] = field(default_factory=list)  # boxes of text-layer blocks kept as they are
    scanned: bool = False
    bombs: list[BBox] = field(default_factory=list)  # images declaring more than max_image_pixels


def _analyse(
    page: pymupdf.Page,
    settings: IngestSettings,
    exclude: Sequence[BBox],
    body: float,
    decoder: FontDecoder | None = None,
    ocr: OcrEngine | None = None,
) -> _Layout:
    drafts = text_drafts(page, exclude)
    page_words = sum(len(d.text.split()) for d in drafts)
    threshold = settings.garbled_threshold
    # A broken encoding belongs to a font: judge each font over the whole page, so a junk
    # font's digit-only runs ("6666 ?66", really "0000 300") are caught with its words.
    by_font: dict[str, list[str]] = defaultdict(list)
    for d in drafts:
        for line in d.lines:
            for font, _, _, text in line.spans:
                if text.strip():
                    by_font[font].append(text)
    junk_fonts = {
        f
        for f, parts in by_font.items()
        if len(letter_tokens(" ".join(parts))) >= 3 and is_garbled(" ".join(parts), threshold)
    }
    if decoder is not None:
        # A font found junk on another page is junk here too, even where it sets only digits;
        # so is one whose glyph names name nothing, even in a lone symbol.
        junk_fonts |= (decoder.fonts() | decoder.blind_fonts(page)) & by_font.keys()
        # A font OCR reads as its text layer gives it only looks like junk (code, math
        # italics): its text is kept, here and on later pages (FontDecoder.readable).
        junk_fonts = {f for f in junk_fonts if not decoder.readable(f)}
        if ocr is not None and junk_fonts:
            decoder.teach(page, [ln for d in drafts for ln in d.lines], junk_fonts, ocr, settings.ocr_dpi)
            junk_fonts = {f for f in junk_fonts if not decoder.readable(f)}
        for d in drafts:
            decoder.decode_draft(d, junk_fonts, threshold)

    def junk(lines: list[Line]) -> bool:
        text = " ".join(ln.text for ln in lines)
        chars = sum(len(s[3].strip()) for ln in lines for s in ln.spans)
        bad = sum(len(s[3].strip()) for ln in lines if not ln.decoded for s in ln.spans if s[0] in junk_fonts)
        return is_garbled(text, threshold) or (chars > 0 and bad >= 0.5 * chars)

    for d in drafts:
        d.garbled = junk(d.lines)
        if not d.garbled:
            d.kind = classify(d, body)
    captions = [d.bbox for d in drafts if d.kind == "caption" and d.text.lower().startswith("tab")]
    layout = _Layout(drafts, [], [], list(exclude))
    for grid in tables.find_grids(page, captions):
        if mostly_inside(grid.bbox, exclude):
            continue
        inside = [ln for d in drafts for ln in d.lines if center_in(ln.bbox, [grid.bbox])]
        words: list[tables.Word] | None = None
        if not (inside and junk(inside)):
            junk_spans = any(s[0] in junk_fonts and s[3].strip() for ln in inside for s in ln.spans)
            if decoder is not None and junk_spans:
                words = decoder.words(page, grid.bbox, junk_fonts)  # None: a character is unknown
            else:
                words = spans.page_words(page, grid.bbox)
        if words is None:
            layout.tables.append((grid, None))
            layout.ocr_targets.append(grid.bbox)
        else:
            markdown = tables.to_markdown(tables.table_rows(grid, words))
            if markdown is None:
                continue  # a frame around text, not a table: its lines stay plain text
            layout.tables.append((grid, markdown))
            layout.blank.append(grid.bbox)
    grid_boxes = [g.bbox for g, _ in layout.tables]
    for d in drafts:
        d.lines = [ln for ln in d.lines if not center_in(ln.bbox, grid_boxes)]
        if d.lines and not d.garbled:
            d.kind = classify(d, body)
    drafts[:] = merge_runs([d for d in drafts if d.lines])
    junk_boxes = [d.bbox for d in drafts if d.garbled]
    layout.ocr_targets += junk_boxes
    # Clean text is painted out so OCR skips it, except where its box touches junk text:
    # line boxes overlap, and painting would cut the junk line's glyphs (OCR lines centred
    # in clean blocks are dropped afterwards instead).
    layout.blank += [
        d.bbox for d in drafts if not d.garbled and not any(tables.overlap(d.bbox, j) for j in junk_boxes)
    ]
    layout.clean = [d.bbox for d in drafts if not d.garbled]

    area = page.rect.width * page.rect.height
    infos = page.get_image_info()  # declared sizes: nothing is decoded here
    # A decompression bomb is never rendered for OCR: MuPDF inflates all of it to draw it
    # (5 s for a 675 MB image, and a 500 MB file can hold 500 GB of zeros).
    layout.bombs = [tuple(i["bbox"]) for i in infos if i["width"] * i["height"] > settings.max_image_pixels]
    images = [tuple(i["bbox"]) for i in infos if i["width"] * i["height"] <= settings.max_image_pixels]
    images = [b for b in images if tables.area(b) >= 0.02 * area and not mostly_inside(b, exclude)]
    # A page with (almost) no text layer shows its words in images: a scan. Figure-only
    # pages look the same; the figure stage passes their boxes in ``exclude``.
    scan = page_words < 20
    junk_boxes += [g.bbox for g, md in layout.tables if md is None]
    for img in images:
        if scan or any(mostly_inside(b, [img]) for b in junk_boxes):
            # A scan, or the image under a junk text layer (an OCR layer gone wrong): read it all.
            layout.ocr_targets.append(img)
            layout.scanned = layout.scanned or scan
        else:
            layout.blank.append(img)  # a figure: its labels are the figure stage's job
    return layout


def text_layer_problem(
    page: pymupdf.Page, settings: IngestSettings, exclude: Sequence[BBox] = ()
) -> Literal["garbled", "scanned"] | None:
    """Why this page needs OCR: a junk text layer, no text layer over a scan, or None."""
    layout = _analyse(page, settings, exclude, body_font_size(page.parent))
    if layout.scanned:
        return "scanned"
    return "garbled" if layout.ocr_targets else None


def read_page(
    doc: pymupdf.Document,
    number: int,
    settings: IngestSettings,
    ocr: OcrEngine | None,
    exclude: Sequence[BBox] = (),
    decoder: FontDecoder | None = None,
) -> Page:
    """Blocks of page ``number`` (1-based) in reading order; never raises: a page that
    cannot be read comes back empty with a warning, so one bad page never sinks a manual.

    ``decoder`` (one per document) decodes junk-font text it has learned, and learns from
    what OCR reads of the rest: pass the same one for every page of a document.

    Boxes are in the page's unrotated space, as PyMuPDF's text and image boxes are; a
    rotated page (``/Rotate 90``) is read with its rotation lifted for the duration, since
    rendering clips in the rotated space, and put back afterwards.
    """
    width = height = 0.0
    try:
        page = doc.load_page(number - 1)
        rotation = page.rotation
        if rotation:
            try:
                page.set_rotation(0)
            except Exception:  # a read-only document: read it rotated (OCR boxes may miss)
                log.warning("page %d: cannot lift rotation", number, exc_info=True)
                rotation = 0
        try:
            width, height = page.rect.width, page.rect.height
            return _read(page, number, settings, ocr, exclude, body_font_size(doc), decoder)
        finally:
            if rotation:
                page.set_rotation(rotation)
    except Exception as err:
        log.warning("page %d: %s", number, err, exc_info=True)
        return Page(
            number, width, height, warnings=[f"page {number}: could not be read ({type(err).__name__})"]
        )


def _read(
    page: pymupdf.Page,
    number: int,
    settings: IngestSettings,
    ocr: OcrEngine | None,
    exclude: Sequence[BBox],
    body: float,
    decoder: FontDecoder | None,
) -> Page:
    layout = _analyse(page, settings, exclude, body, decoder, ocr)
    result = Page(number, page.rect.width, page.rect.height)
    drafts = [d for d in layout.drafts if not d.garbled]
    table_words: dict[int, list[tables.Word]] = defaultdict(list)
    if layout.ocr_targets and any(tables.overlap(union(layout.ocr_targets, 3.0), b) for b in layout.bombs):
        result.warnings.append(f"page {number}: not OCR'd: it shows an image of more than "
                               f"max_image_pixels={settings.max_image_pixels} pixels")
        layout.ocr_targets = []
    if layout.ocr_targets and ocr is None:
        what = "looks scanned" if layout.scanned else "has a broken text layer"
        result.warnings.append(f"page {number} {what}; its text was skipped because OCR is off")
    elif layout.ocr_targets:
        try:
            lines = page_ocr.ocr_region(
                page, union(layout.ocr_targets, 3.0), layout.blank, settings.ocr_dpi, ocr
            )
        except Exception as err:
            log.warning("page %d: OCR failed: %s", number, err, exc_info=True)
            result.warnings.append(
                f"page {number}: OCR failed ({type(err).__name__}); unreadable text skipped"
            )
            lines = []
        result.ocr = bool(lines)
        loose = []
        for box, text in lines:
            if furniture(box, text, page.rect.height) or center_in(box, layout.clean):
                continue
            owner = next(
                (i for i, (g, md) in enumerate(layout.tables) if md is None and center_in(box, [g.bbox])),
                None,
            )
            if owner is None:
                loose.append((box, text))
            else:
                table_words[owner] += tables.split_ocr_line(box, text)
        for para in page_ocr.ocr_paragraphs(loose):
            draft = Draft([Line(b, t, []) for b, t in para], ocr=True)
            draft.kind = "caption" if is_caption(draft.text) else ocr_kind(draft.text)
            drafts.append(draft)
    for index, (grid, markdown) in enumerate(layout.tables):
        if markdown is None:
            markdown = tables.to_markdown(tables.table_rows(grid, table_words.get(index, [])))
            if markdown is None:
                continue
        draft = Draft(
            [Line(grid.bbox, "", [])], ocr=index in table_words, kind="table", text_override=markdown
        )
        drafts.append(draft)
    drafts.sort(key=lambda d: (round(d.bbox[1]), d.bbox[0]))
    _attach_table_captions(drafts)
    result.blocks = [
        Block(number, d.bbox, d.text, d.kind, 0.0 if d.ocr else d.size, False if d.ocr else d.bold, d.ocr)
        for d in drafts
        if d.text.strip()
    ]
    return result


def _attach_table_captions(drafts: list[Draft]) -> None:
    """Put "Table 2-1.—Fuse ratings" as the first line of the table right below or above it."""
    for table in [d for d in drafts if d.kind == "table"]:
        caption = next(
            (
                d
                for d in drafts
                if d.kind == "caption"
                and d.text.lower().startswith("tab")
                and tables.near_caption(d.bbox, table.bbox)
            ),
            None,
        )
        if caption is not None:
            table.text_override = f"{caption.text}\n{table.text_override}"
            drafts.remove(caption)
