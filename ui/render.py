"""Pictures for the page: a manual page with the cited region outlined, figure thumbnails.

Pure functions over files, cached by Streamlit's data cache (keyed on the path, the
file's size and mtime, and the box), so stepping back and forth through pages or
redrawing a conversation does not render or shrink anything twice.
"""

from __future__ import annotations

import io
from pathlib import Path

import streamlit as st

from ingest.page_ocr import render, render_dpi
from manualrag.types import BBox

OUTLINE = (220, 30, 30)  # red reads on both white paper and grey scans
OUTLINE_WIDTH = 4
PAD_POINTS = 4.0  # the outline sits just outside the cited text, not on it
# A page on screen needs far fewer pixels than OCR: an A4 page at 110 dpi is 1.1 million.
VIEW_MAX_PIXELS = 8_000_000


def figure_label(figure: str, page: int) -> str:
    """ "Figure 3-11, p.107", or "Figure on p.107" for an uncaptioned one."""
    return f"{figure}, p.{page}" if figure else f"Figure on p.{page}"


@st.cache_data(max_entries=256, show_spinner=False)
def _page_png(
    pdf: str, stamp: tuple[int, float], number: int, bbox: BBox | None, dpi: int
) -> tuple[bytes, int]:
    import pymupdf
    from PIL import Image, ImageDraw

    with pymupdf.open(pdf) as doc:
        count = doc.page_count
        page = doc[number - 1]
        pix, used = render(page, min(dpi, render_dpi(page.rect, dpi, VIEW_MAX_PIXELS)))
        img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
        if bbox is not None:
            rect = pymupdf.Rect(bbox)
            rect = pymupdf.Rect(
                rect.x0 - PAD_POINTS, rect.y0 - PAD_POINTS, rect.x1 + PAD_POINTS, rect.y1 + PAD_POINTS
            )
            # Boxes are in unrotated page space; the pixmap shows the page as displayed.
            shown = rect * page.rotation_matrix * pymupdf.Matrix(used / 72, used / 72)
            ImageDraw.Draw(img).rectangle(
                (shown.x0, shown.y0, shown.x1, shown.y1), outline=OUTLINE, width=OUTLINE_WIDTH
            )
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False)
    return out.getvalue(), count


def page_png(pdf: Path, number: int, bbox: BBox | None = None, dpi: int = 110) -> tuple[bytes, int]:
    """Page `number` (1-based) of `pdf` as PNG, `bbox` outlined; and the page count."""
    stat = pdf.stat()
    return _page_png(str(pdf), (stat.st_size, stat.st_mtime), number, tuple(bbox) if bbox else None, dpi)


@st.cache_data(max_entries=1024, show_spinner=False)
def _thumbnail(path: str, stamp: tuple[int, float], side: int) -> bytes:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        out = io.BytesIO()
        img.save(out, format="PNG")
    return out.getvalue()


def thumbnail(path: Path, side: int) -> bytes:
    """A small PNG of a figure (figures can be thousands of pixels wide)."""
    stat = path.stat()
    return _thumbnail(str(path), (stat.st_size, stat.st_mtime), side)
