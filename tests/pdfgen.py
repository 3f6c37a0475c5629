"""Builders for the real PDFs the tests ingest: text pages, vector diagrams, scans, junk text layers.

Everything is drawn with PyMuPDF, so each test makes exactly the manual it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

A4 = (595.0, 842.0)
MARGIN = 56.0

# A substitution that mimics a broken font encoding, as in the NEETS manual's junk layer.
_JUNK = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "Üáéèêëíìîïñóò†°¢£§•¶ßÆ©Ø∞±ÜáéèêëíìîïñóòÜ°¢£§•¶ßÆ©Ø∞±",
)


def junk(text: str) -> str:
    return text.translate(_JUNK)


# A font whose ToUnicode map is wrong: the page shows the right glyphs, but every letter,
# digit and stop extracts as another character, one for one (NEETS has such fonts).
# Letters become accented Latin-1 letters (plainly junk), digits other digits.
BROKEN_MAP = dict(zip(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,",
    "àáâãäåæçèéêëìíîïðñòóôõöøùúÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚ7890123456;:",
    strict=True,
))
BROKEN_FONT = "tiro"  # Times-Roman: the text set in it is what the broken map garbles


def broken(text: str) -> str:
    """What the text layer of ``text`` set in the broken font extracts as."""
    return "".join(BROKEN_MAP.get(ch, ch) for ch in text)


def _tounicode_cmap(mapping: dict[str, str]) -> bytes:
    pairs = "\n".join(f"<{ord(code):02X}> <{ord(char):04X}>" for code, char in mapping.items())
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Broken-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<00> <FF>\nendcodespacerange\n"
        f"{len(mapping)} beginbfchar\n{pairs}\nendbfchar\n"
        "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    ).encode()


@dataclass
class PageWriter:
    """Writes flowing text top to bottom on one page."""

    page: pymupdf.Page
    y: float = MARGIN

    def heading(self, text: str, size: float = 16) -> None:
        self.y += size * 0.6
        self.page.insert_text((MARGIN, self.y + size), text, fontsize=size, fontname="hebo")
        self.y += size * 1.8

    def paragraph(self, text: str, size: float = 10.5, fontname: str = "helv") -> None:
        rect = pymupdf.Rect(MARGIN, self.y, A4[0] - MARGIN, A4[1] - MARGIN)
        spare = self.page.insert_textbox(rect, text, fontsize=size, fontname=fontname)
        used = rect.height - spare if spare >= 0 else rect.height
        self.y += used + size * 0.9

    def caption(self, text: str) -> None:
        self.paragraph(text, size=9.5, fontname="hebo")


def vector_diagram(page: pymupdf.Page, top: float, labels: list[str], caption: str) -> pymupdf.Rect:
    """A wiring-style vector drawing: boxes joined by lines, each box labelled with real text."""
    shape = page.new_shape()
    box_w, box_h, gap = 110.0, 40.0, 40.0
    rects = []
    for i, _ in enumerate(labels):
        col, row = i % 3, i // 3
        x0 = MARGIN + 20 + col * (box_w + gap)
        y0 = top + 20 + row * (box_h + gap)
        rect = pymupdf.Rect(x0, y0, x0 + box_w, y0 + box_h)
        rects.append(rect)
        shape.draw_rect(rect)
    for a, b in zip(rects, rects[1:], strict=False):
        shape.draw_line(a.br - (0, box_h / 2), b.tl + (0, box_h / 2))
    frame = pymupdf.Rect(MARGIN, top, A4[0] - MARGIN, rects[-1].y1 + 20)
    shape.draw_rect(frame)
    shape.finish(color=(0, 0, 0), width=1)
    shape.commit()
    for rect, label in zip(rects, labels, strict=True):
        page.insert_textbox(rect + (4, 12, -4, 0), label, fontsize=9, fontname="helv", align=1)
    page.insert_text((MARGIN, frame.y1 + 16), caption, fontsize=9.5, fontname="hebo")
    return frame


def text_image(lines: list[str], width: int = 1200, size: float = 22) -> bytes:
    """A PNG of black text on white, as a scanner would make it."""
    doc = pymupdf.open()
    height = int(size * 1.6 * len(lines) + 60)
    page = doc.new_page(width=width / 2, height=height / 2)
    y = 20.0
    for line in lines:
        page.insert_text((20, y + size / 2), line, fontsize=size / 2, fontname="helv")
        y += size * 0.8
    pix = page.get_pixmap(dpi=144)
    return pix.tobytes("png")


def label_diagram_png(labels: list[str], width: int = 900, height: int = 500) -> bytes:
    """A raster diagram: boxes with labels, rendered to PNG (as scanned figures are)."""
    doc = pymupdf.open()
    page = doc.new_page(width=width / 2, height=height / 2)
    shape = page.new_shape()
    for i, label in enumerate(labels):
        col, row = i % 3, i // 3
        rect = pymupdf.Rect(15 + col * 145, 20 + row * 70, 135 + col * 145, 60 + row * 70)
        shape.draw_rect(rect)
        page.insert_textbox(rect + (2, 10, -2, 0), label, fontsize=11, fontname="helv", align=1)
    shape.finish(color=(0, 0, 0), width=1.2)
    shape.commit()
    return page.get_pixmap(dpi=144).tobytes("png")


def logo_png() -> bytes:
    """A letterhead banner, as manuals repeat on every page."""
    return label_diagram_png(["ACME PUMPS"], width=360, height=110)


def icon_png() -> bytes:
    """A small warning-triangle icon."""
    doc = pymupdf.open()
    page = doc.new_page(width=40, height=40)
    page.draw_polyline([(20, 4), (37, 36), (3, 36), (20, 4)], color=(0, 0, 0), fill=(1, 0.8, 0), width=2)
    return page.get_pixmap(dpi=144).tobytes("png")


@dataclass
class ManualBuilder:
    """Builds a small manual page by page; ``save`` writes the PDF."""

    doc: pymupdf.Document = field(default_factory=pymupdf.open)
    broken_cmap: int = 0  # xref of the wrong ToUnicode map, once a page uses it

    def new_page(self) -> PageWriter:
        return PageWriter(self.doc.new_page(width=A4[0], height=A4[1]))

    def text_page(self, heading: str, paragraphs: list[str], subheading: str | None = None) -> PageWriter:
        w = self.new_page()
        w.heading(heading)
        if subheading:
            w.heading(subheading, size=12.5)
        for text in paragraphs:
            w.paragraph(text)
        return w

    def vector_figure_page(self, heading: str, intro: str, labels: list[str], caption: str,
                           page_border: bool = False) -> PageWriter:
        w = self.new_page()
        if page_border:
            w.page.draw_rect(pymupdf.Rect(24, 24, A4[0] - 24, A4[1] - 24), color=(0, 0, 0), width=1.5)
        w.heading(heading)
        w.paragraph(intro)
        frame = vector_diagram(w.page, w.y + 10, labels, caption)
        w.y = frame.y1 + 30
        return w

    def raster_figure_page(self, heading: str, intro: str, labels: list[str], caption: str) -> PageWriter:
        w = self.new_page()
        w.heading(heading)
        w.paragraph(intro)
        rect = pymupdf.Rect(MARGIN, w.y + 10, A4[0] - MARGIN, w.y + 10 + 260)
        w.page.insert_image(rect, stream=label_diagram_png(labels))
        w.y = rect.y1 + 8
        w.caption(caption)
        return w

    def scanned_page(self, lines: list[str]) -> None:
        """A page that is only an image of text: no text layer at all."""
        page = self.doc.new_page(width=A4[0], height=A4[1])
        png = text_image(lines)
        page.insert_image(pymupdf.Rect(MARGIN, MARGIN, A4[0] - MARGIN, MARGIN + 30 * len(lines) + 40), stream=png)

    def scanned_figure_page(self, heading: str, paragraphs: list[str], labels: list[str], caption: str) -> None:
        """A scan of a page that holds text, a diagram and its caption: one image, no text layer."""
        paper = ManualBuilder()
        w = paper.new_page()
        w.heading(heading)
        w.paragraph(paragraphs[0])
        frame = vector_diagram(w.page, w.y + 10, labels, caption)
        w.y = frame.y1 + 34
        for text in paragraphs[1:]:
            w.paragraph(text)
        png = w.page.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY).tobytes("png")
        self.doc.new_page(width=A4[0], height=A4[1]).insert_image(pymupdf.Rect(0, 0, *A4), stream=png)

    def junk_layer_page(self, lines: list[str]) -> None:
        """Readable text on the page image, but the text layer under it is font-encoding junk."""
        page = self.doc.new_page(width=A4[0], height=A4[1])
        rect = pymupdf.Rect(MARGIN, MARGIN, A4[0] - MARGIN, MARGIN + 30 * len(lines) + 40)
        page.insert_image(rect, stream=text_image(lines))
        y = rect.y0 + 20
        for line in lines:
            # Invisible (render mode 3) junk text where the words are, like a bad OCR layer.
            page.insert_text((rect.x0 + 10, y), junk(line), fontsize=10, render_mode=3)
            y += 22

    def break_font_map(self, page: pymupdf.Page) -> None:
        """Give the page's Times-Roman font the wrong ToUnicode map ``BROKEN_MAP``."""
        doc = self.doc
        if not self.broken_cmap:
            self.broken_cmap = doc.get_new_xref()
            doc.update_object(self.broken_cmap, "<<>>")
            doc.update_stream(self.broken_cmap, _tounicode_cmap(BROKEN_MAP))
        for font in page.get_fonts():
            if font[3] == "Times-Roman":
                doc.xref_set_key(font[0], "ToUnicode", f"{self.broken_cmap} 0 R")

    def broken_font_page(self, heading: str, paragraphs: list[str]) -> PageWriter:
        """Paragraphs printed in a font with a broken ToUnicode map under a clean heading:
        readable on the page, junk in the text layer (``broken(text)``)."""
        w = self.new_page()
        w.heading(heading)
        for text in paragraphs:
            w.paragraph(text, size=11, fontname=BROKEN_FONT)
        self.break_font_map(w.page)
        return w

    def table_page(self, heading: str, intro: str, rows: list[list[str]], caption: str,
                   fontname: str = "helv", rule_images: bool = False) -> PageWriter:
        """A ruled table; with `rule_images`, each rule is a one-pixel image stretched into a
        thin line, as some PDF writers draw them, and the page has no vector paths."""
        w = self.new_page()
        w.heading(heading)
        w.paragraph(intro)
        w.caption(caption)
        col_w = (A4[0] - 2 * MARGIN) / len(rows[0])
        row_h = 20.0
        top = w.y + 4
        shape = w.page.new_shape()
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                rect = pymupdf.Rect(MARGIN + c * col_w, top + r * row_h, MARGIN + (c + 1) * col_w, top + (r + 1) * row_h)
                shape.draw_rect(rect)
                w.page.insert_text((rect.x0 + 4, rect.y0 + 14), cell, fontsize=9.5, fontname=fontname)
        if rule_images:
            pixel = pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.IRect(0, 0, 1, 1), False)
            pixel.clear_with(0)
            left, right, bottom = MARGIN, MARGIN + len(rows[0]) * col_w, top + len(rows) * row_h
            for r in range(len(rows) + 1):
                y = top + r * row_h
                w.page.insert_image(pymupdf.Rect(left, y - 0.25, right, y + 0.25), pixmap=pixel, keep_proportion=False)
            for c in range(len(rows[0]) + 1):
                x = MARGIN + c * col_w
                w.page.insert_image(pymupdf.Rect(x - 0.25, top, x + 0.25, bottom), pixmap=pixel, keep_proportion=False)
        else:
            shape.finish(color=(0, 0, 0), width=0.8)
            shape.commit()
        w.y = top + len(rows) * row_h + 20
        if fontname == BROKEN_FONT:
            self.break_font_map(w.page)
        return w

    def junk_table_page(self, heading: str, intro: str, rows: list[list[str]], caption: str) -> PageWriter:
        """A ruled table whose cells show real text but whose text layer is junk, as the
        NEETS tables 1-1 and 1-3: the cells are an image, with invisible junk text and
        vector rules over it. Heading, intro and caption are clean text."""
        w = self.new_page()
        w.heading(heading)
        w.paragraph(intro)
        w.caption(caption)
        col_w = (A4[0] - 2 * MARGIN) / len(rows[0])
        row_h = 20.0
        top = w.y + 4
        cells = [
            (pymupdf.Rect(MARGIN + c * col_w, top + r * row_h, MARGIN + (c + 1) * col_w, top + (r + 1) * row_h), cell)
            for r, row in enumerate(rows)
            for c, cell in enumerate(row)
        ]
        scratch = pymupdf.open()
        drawn = scratch.new_page(width=A4[0], height=A4[1])
        for rect, cell in cells:
            drawn.insert_text((rect.x0 + 4, rect.y0 + 14), cell, fontsize=9.5, fontname="helv")
        table = pymupdf.Rect(MARGIN, top, A4[0] - MARGIN, top + len(rows) * row_h)
        w.page.insert_image(table, stream=drawn.get_pixmap(dpi=200, clip=table).tobytes("png"))
        shape = w.page.new_shape()
        for rect, cell in cells:
            shape.draw_rect(rect)
            w.page.insert_text((rect.x0 + 4, rect.y0 + 14), junk(cell), fontsize=9.5, render_mode=3)
        shape.finish(color=(0, 0, 0), width=0.8)
        shape.commit()
        w.y = table.y1 + 20
        return w

    def decorated_page(self, heading: str, paragraphs: list[str], note: str) -> PageWriter:
        """Only decoration around text: a page border, a rule under the heading, a tiny
        icon beside it and a box around a note. None of it is a figure."""
        w = self.new_page()
        page = w.page
        page.draw_rect(pymupdf.Rect(24, 24, A4[0] - 24, A4[1] - 24), color=(0, 0, 0), width=1.5)
        page.insert_image(pymupdf.Rect(A4[0] - MARGIN - 18, MARGIN + 4, A4[0] - MARGIN, MARGIN + 22),
                          stream=icon_png())
        w.heading(heading)
        page.draw_line((MARGIN, w.y - 6), (A4[0] - MARGIN, w.y - 6), color=(0, 0, 0), width=1.5)
        for text in paragraphs:
            w.paragraph(text)
        top = w.y
        w.paragraph(note)
        page.draw_rect(pymupdf.Rect(MARGIN - 6, top - 6, A4[0] - MARGIN + 6, w.y), color=(0, 0, 0), width=1)
        w.y += 10
        return w

    def stamp_logo(self, rect: tuple[float, float, float, float] = (MARGIN, 746, MARGIN + 210, 812)) -> int:
        """The same letterhead image on every page so far (one xref, as PDF writers do)."""
        xref = 0
        for page in self.doc:
            xref = page.insert_image(pymupdf.Rect(rect), stream=logo_png() if not xref else None, xref=xref)
        return xref

    def bomb_page(self, declared: tuple[int, int], caption: str) -> PageWriter:
        """A normal raster figure, and beside it an image whose dictionary declares
        ``declared`` pixels (a decompression bomb: decoding it would take gigabytes)."""
        w = self.raster_figure_page("Bomb", "A page with one bad image.", ["PUMP", "VALVE"], caption)
        xref = w.page.insert_image(pymupdf.Rect(MARGIN, w.y + 30, MARGIN + 200, w.y + 160),
                                   stream=label_diagram_png(["X"], width=120, height=80))
        self.doc.xref_set_key(xref, "Width", str(declared[0]))
        self.doc.xref_set_key(xref, "Height", str(declared[1]))
        return w

    def image_row_page(self, parts: list[list[str]], caption: str, gap: float = 20.0) -> PageWriter:
        """Raster images side by side over one caption: parts A and B of one figure
        (gap > 0), or tiles of one diagram (gap 0)."""
        w = self.new_page()
        w.heading("Parts")
        width = (A4[0] - 2 * MARGIN - gap * (len(parts) - 1)) / len(parts)
        for i, labels in enumerate(parts):
            x0 = MARGIN + i * (width + gap)
            png = label_diagram_png(labels, width=600, height=300)
            rect = pymupdf.Rect(x0, w.y, x0 + width, w.y + 150)
            w.page.insert_image(rect, stream=png, keep_proportion=False)
        w.y += 158
        w.caption(caption)
        return w

    def image_page(self, labels: list[str], rect: tuple[float, float, float, float],
                   intro: str = "") -> PageWriter:
        """An uncaptioned raster image at ``rect``, after an optional paragraph."""
        w = self.new_page()
        if intro:
            w.paragraph(intro)
        w.page.insert_image(pymupdf.Rect(rect), stream=label_diagram_png(labels), keep_proportion=False)
        return w

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.doc.save(path, garbage=3, deflate=True, deflate_images=True)
        return path


PUMP_INTRO = (
    "The P-200 pump controller drives a three-phase motor through a contactor. "
    "Before servicing, isolate the supply at the main breaker and lock it out. "
    "The wiring layout is shown in figure 2-1; the fuse ratings are listed in Table 2-1."
)


def sample_manual(path: Path) -> Path:
    """A small but complete manual: every kind of content ingest must handle."""
    m = ManualBuilder()
    m.text_page(
        "Chapter 1 Safety",
        [
            "WARNING: Disconnect power before opening the controller cabinet. Capacitors hold a "
            "charge for up to five minutes after the supply is removed.",
            "Only qualified electricians may service the controller. Wear insulated gloves rated "
            "for 1000 volts when testing live terminals.",
        ],
        subheading="1.1 General precautions",
    )
    m.vector_figure_page(
        "Chapter 2 Wiring",
        PUMP_INTRO,
        ["MAIN BREAKER", "CONTACTOR K1", "OVERLOAD RELAY", "MOTOR M1", "FUSE F3 20 AMP", "TERMINAL TB1"],
        "Figure 2-1. Controller wiring diagram.",
    )
    m.table_page(
        "2.2 Fuse ratings",
        "Replace fuses only with the ratings given below.",
        [["Fuse", "Circuit", "Rating"], ["F1", "Control transformer", "2 AMP"], ["F2", "Indicator lamps", "1 AMP"],
         ["F3", "Motor contactor coil", "20 AMP"]],
        "Table 2-1. Fuse ratings.",
    )
    m.raster_figure_page(
        "Chapter 3 Troubleshooting",
        "Fault codes appear on the display panel shown in figure 3-1. Code F07452 means the "
        "motor overload relay tripped; reset it after the motor cools.",
        ["DISPLAY", "RESET BUTTON", "STATUS LED", "FAULT CODE"],
        "Figure 3-1. Front panel.",
    )
    w = m.text_page(
        "3.2 Replacing the contactor",
        [
            "1. Switch off and lock out the main breaker.",
            "2. Remove the four screws of the cover plate.",
            "3. Disconnect wires L1, L2 and L3 from contactor K1, noting their positions.",
            "4. Fit the new contactor and tighten the terminals to 2.5 N·m.",
        ],
    )
    w.paragraph("After replacement, run the pump for ten minutes and check the motor current.")
    m.scanned_page(
        [
            "Appendix A Maintenance schedule",
            "Inspect the impeller every 500 operating hours.",
            "Grease the motor bearings every 2000 hours with lithium grease.",
        ]
    )
    m.junk_layer_page(
        [
            "Appendix B Storage",
            "Store the pump in a dry room between 5 and 40 degrees Celsius.",
            "Drain the casing before storage to prevent frost damage.",
        ]
    )
    return m.save(path)
