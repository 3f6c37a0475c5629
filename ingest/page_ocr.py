"""OCR of page regions: one render, clean parts painted out, gibberish retried, paragraphs;
and of single words or lines whose place the text layer gives (``LineReader``).

RapidOCR pays ~1 s of detection per call plus recognition per line, so a page is read in
one call over the union of everything that needs OCR, with clean text and figures painted
white so they cost nothing; lines that still come back as gibberish get one more call.
"""

from __future__ import annotations

import io
import itertools
import math
import statistics
from collections.abc import Sequence

import pymupdf
from PIL import Image, ImageDraw

from ingest.ocr import OcrEngine
from ingest.textcheck import LIST_ITEM, known_word_share, letter_tokens
from manualrag.types import BBox

Line = tuple[BBox, str]  # text with its box, in PDF points once mapped back to the page

# Pixels of one render at most (75 MB as RGB; A3 at 360 dpi): a PDF page may be 14,400 points a side,
# and a 12,000-point page at 200 dpi is 1.1 billion pixels (3.3 GB, 3 GB more on the OCR path).
MAX_RENDER_PIXELS = 25_000_000


def render_dpi(rect: pymupdf.Rect, dpi: float, max_pixels: int = MAX_RENDER_PIXELS) -> float:
    """``dpi``, or the lower resolution at which ``rect`` renders within ``max_pixels``."""
    pixels = (rect.width * dpi / 72) * (rect.height * dpi / 72)
    # A hair under the exact root: PyMuPDF rounds each side up to whole pixels.
    return dpi if pixels <= max_pixels else dpi * math.sqrt(max_pixels / pixels) * 0.998


def render(page: pymupdf.Page, dpi: float, clip: pymupdf.Rect | None = None) -> tuple[pymupdf.Pixmap, float]:
    """``page`` (or its ``clip``) as an RGB pixmap within ``MAX_RENDER_PIXELS``, and the dpi used."""
    dpi = render_dpi(clip if clip is not None else page.rect, dpi)
    zoom = dpi / 72
    return page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=clip, alpha=False), dpi


def _rows(lines: list[Line]) -> list[Line]:
    """OCR lines regrouped into visual rows (left to right)."""
    rows: list[list[Line]] = []
    for box, text in sorted(lines, key=lambda ln: ((ln[0][1] + ln[0][3]) / 2, ln[0][0])):
        if rows:
            last = rows[-1][0][0]
            tol = max(min(last[3] - last[1], box[3] - box[1]) * 0.5, 1.0)
            if abs((box[1] + box[3]) / 2 - (last[1] + last[3]) / 2) <= tol:
                rows[-1].append((box, text))
                continue
        rows.append([(box, text)])
    out = []
    for row in rows:
        row.sort(key=lambda ln: ln[0][0])
        boxes = [b for b, _ in row]
        out.append(
            (
                (
                    min(b[0] for b in boxes),
                    min(b[1] for b in boxes),
                    max(b[2] for b in boxes),
                    max(b[3] for b in boxes),
                ),
                " ".join(t for _, t in row),
            )
        )
    return out


def ocr_paragraphs(lines: list[Line]) -> list[list[Line]]:
    """Rows of OCR text grouped into paragraphs: a new one after a vertical gap, at a
    first-line indent, after a short last line, or at a numbered step."""
    rows = _rows(lines)
    if not rows:
        return []
    height = statistics.median(b[3] - b[1] for b, _ in rows)
    left = min(b[0] for b, _ in rows)
    right = max(b[2] for b, _ in rows)
    paras: list[list[Line]] = [[rows[0]]]
    for (prev, _), (box, text) in itertools.pairwise(rows):
        indented = box[0] - left > 1.2 * height and prev[0] - left <= 1.2 * height
        short_prev = prev[2] < right - 6 * height
        if box[1] - prev[3] > 0.7 * height or indented or short_prev or LIST_ITEM.match(text):
            paras.append([])
        paras[-1].append((box, text))
    return paras


def ocr_region(
    page: pymupdf.Page, region: BBox, blank: Sequence[BBox], dpi: int, ocr: OcrEngine
) -> list[Line]:
    """OCR one region of the page, with ``blank`` areas painted white first; boxes in points."""
    clip = pymupdf.Rect(region) & page.rect
    pix, used = render(page, dpi, clip)
    scale = used / 72
    image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    # Painted with PIL: PyMuPDF 2.0's Pixmap.set_rect writes byte by byte in Python
    # (0.2 s per box, 3.7 s of the 16 s it took to read four NEETS pages).
    draw = ImageDraw.Draw(image)
    for box in blank:
        r = pymupdf.Rect(box) & clip
        if not r.is_empty:  # pixmap coordinates are page points * scale, origin at (pix.x, pix.y)
            ir = (r * scale).irect & pix.irect
            draw.rectangle((ir.x0 - pix.x, ir.y0 - pix.y, ir.x1 - pix.x - 1, ir.y1 - pix.y - 1), fill="white")
    lines = _retry_doubtful(image, _read_image(image, ocr), ocr)
    ox, oy = pix.x / scale, pix.y / scale
    return [
        ((ox + b[0] / scale, oy + b[1] / scale, ox + b[2] / scale, oy + b[3] / scale), t) for b, t in lines
    ]


class LineReader:
    """Reads boxes the text layer gives (a word, a few words, a line), each as one line of
    text, from one render of the page made on first use: recognition only, no detection
    (``OcrEngine.read_line``)."""

    def __init__(self, page: pymupdf.Page, dpi: float, ocr: OcrEngine) -> None:
        self._page, self._dpi, self._ocr = page, dpi, ocr
        self._image: Image.Image | None = None

    def read(self, box: BBox) -> str:
        if self._image is None:
            pix, self._dpi = render(self._page, self._dpi)
            self._image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
        scale = self._dpi / 72
        # The line box itself, no margin: recognition scales the crop to a fixed height,
        # and white around the text shrinks the glyphs (it dropped letters: "is o ensure").
        crop = self._image.crop((
            max(int(box[0] * scale), 0), max(int(box[1] * scale), 0),
            min(int(box[2] * scale) + 1, self._image.width), min(int(box[3] * scale) + 1, self._image.height),
        ))
        if crop.width < 4 or crop.height < 4:
            return ""
        out = io.BytesIO()
        crop.save(out, format="PNG", compress_level=1)
        return self._ocr.read_line(out.getvalue())


# A white border keeps text off the image edge, where it came back as gibberish. (No
# padding to a minimum size: the detector no longer scales small images up, see ocr.py.)
_BORDER = 12


def _read_image(image: Image.Image, ocr: OcrEngine) -> list[Line]:
    """OCR lines of an image, boxes in its pixel coordinates."""
    size = (image.width + 2 * _BORDER, image.height + 2 * _BORDER)
    canvas = Image.new("RGB", size, "white")
    canvas.paste(image, (_BORDER, _BORDER))
    out = io.BytesIO()
    canvas.save(out, format="PNG", compress_level=1)
    return [
        ((x0 - _BORDER, y0 - _BORDER, x1 - _BORDER, y1 - _BORDER), line.text)
        for line in ocr.read(out.getvalue())
        for x0, y0, x1, y1 in [line.bbox]
    ]


def _doubtful(text: str) -> bool:
    """Gibberish from OCR: few real words, or many stray single letters ("Ts s t e t")."""
    words = text.split()
    if len(words) < 4:
        return False
    stray = sum(len(w) == 1 and w.isalpha() and w not in "aAI" for w in words) / len(words)
    return stray >= 0.3 or (len(letter_tokens(text)) >= 3 and known_word_share(text) < 0.4)


def _retry_doubtful(image: Image.Image, lines: list[Line], ocr: OcrEngine) -> list[Line]:
    """Read gibberish lines again, each cropped with half a line of margin, all stacked in
    one image (one more OCR call). On tightly set pages ~1-2% of lines come back as
    gibberish ("sSi- szs i ( i it") from a whole-page read and cleanly from such a crop."""
    doubtful = [i for i, (_, t) in enumerate(lines) if _doubtful(t)]
    if not doubtful:
        return lines
    crops: list[tuple[Image.Image, int]] = []
    bands: list[tuple[int, float, float]] = []  # line index, where the line lies in the stack
    top = 0
    for i in doubtful:
        x0, y0, x1, y1 = lines[i][0]
        margin = 0.6 * (y1 - y0)
        box = (
            max(int(x0) - 8, 0),
            max(int(y0 - margin), 0),
            min(int(x1) + 8, image.width),
            min(int(y1 + margin), image.height),
        )
        crops.append((image.crop(box), top))
        bands.append((i, top + y0 - box[1], top + y1 - box[1]))
        top += box[3] - box[1] + 24
    stack = Image.new("RGB", (max(c.width for c, _ in crops), top), "white")
    for crop, y in crops:
        stack.paste(crop, (0, y))
    found = _read_image(stack, ocr)
    out = list(lines)
    for i, band0, band1 in bands:
        mid = (band0 + band1) / 2
        hits = sorted(
            (abs((b[1] + b[3]) / 2 - mid), t) for b, t in found if band0 <= (b[1] + b[3]) / 2 <= band1
        )
        if hits and known_word_share(hits[0][1]) > known_word_share(lines[i][1]):
            out[i] = (lines[i][0], hits[0][1])
    return out
