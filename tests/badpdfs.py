"""Builders for the bad-input corpus: broken, locked, hostile and oversized PDFs.

Each builder writes one file and returns its path. The good parts are drawn with
``pdfgen.ManualBuilder``; the bad parts are written as raw PDF objects, because a
well-behaved writer will not produce them. Distinctive words (``MARKER_*``) let the
tests check that what must never be read (scripts, attachments) is nowhere in the store.
"""

from __future__ import annotations

import zlib
from functools import cache
from pathlib import Path

import pymupdf
from pdfgen import MARGIN, ManualBuilder, label_diagram_png

# Text that exists only inside a script or an attachment: it must never become searchable.
SCRIPT_MARKER = "MARKERSCRIPTQX7"
ATTACHMENT_MARKER = "MARKERATTACHZK9"


def tiny_manual(path: Path, topic: str = "winch W4", pages: int = 1) -> Path:
    """A clean text-only manual that ingests in about a second (no figures, no OCR)."""
    m = ManualBuilder()
    for n in range(pages):
        text = (
            f"The {topic} brake is adjusted with a 13 mm spanner on page {n + 1}. "
            f"Check the {topic} brake band for wear every month and replace it when worn."
        )
        m.text_page(f"Chapter {n + 1} The {topic}", [text])
    return m.save(path)


# -- broken files ---------------------------------------------------------------------------


def corrupt(path: Path) -> Path:
    """A PDF header followed by noise: nothing to repair."""
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    return path


def truncated(path: Path, good: Path) -> Path:
    """The first third of a good PDF, as an interrupted download leaves it."""
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def not_pdf(path: Path) -> Path:
    """A PNG saved under a .pdf name."""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 300)
    return path


def zip_named_pdf(path: Path) -> Path:
    """A Word file (a ZIP) renamed to .pdf: the name says PDF, the bytes do not."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document>Pump manual</w:document>")
    return path


def zero_pages(path: Path) -> Path:
    """A well-formed PDF (valid cross-reference table) whose page tree is empty."""
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[]/Count 0>>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def encrypted(path: Path, good: Path, user_password: str = "secret") -> Path:
    """AES-256 encrypted. With ``user_password=""`` only an owner password is set, so
    the file opens without one (printing/copying restrictions only)."""
    with pymupdf.open(good) as doc:
        doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=user_password, owner_pw="owner")
    return path


def blank_pages(path: Path, pages: int = 2) -> Path:
    """Pages with nothing on them: no text layer, no images, nothing for OCR."""
    doc = pymupdf.open()
    for _ in range(pages):
        doc.new_page()
    doc.save(path)
    return path


def oversized(path: Path, mb: float) -> Path:
    """A PDF header followed by ``mb`` MiB of padding: refused on its size before parsing."""
    with path.open("wb") as handle:
        handle.write(b"%PDF-1.7\n%")
        handle.write(b" " * int(mb * 2**20))
    return path


def too_many_pages(path: Path, pages: int) -> Path:
    """``pages`` empty pages sharing one content stream: a few kB however many pages."""
    doc = pymupdf.open()
    for _ in range(pages):
        doc.new_page()
    doc.save(path, garbage=3, deflate=True)
    return path


# -- hostile content ------------------------------------------------------------------------


def with_javascript(path: Path, url: str = "http://127.0.0.1:9") -> Path:
    """A normal manual whose catalog runs a script on opening and whose link runs another.

    The scripts call ``url`` and mention ``SCRIPT_MARKER``: a reader that executed them
    would be seen there, one that indexed them would leak the marker into the store."""
    base = tiny_manual(path.with_name(path.stem + "-base.pdf"), "hoist H2")
    doc = pymupdf.open(base)
    script = f"app.alert('{SCRIPT_MARKER}'); this.submitForm('{url}/{SCRIPT_MARKER}');"
    js = doc.get_new_xref()
    doc.update_object(js, f"<< /Type /Action /S /JavaScript /JS ({script}) >>")
    doc.xref_set_key(doc.pdf_catalog(), "OpenAction", f"{js} 0 R")
    names = doc.get_new_xref()
    doc.update_object(names, f"<< /Names [({SCRIPT_MARKER}) {js} 0 R] >>")
    doc.xref_set_key(doc.pdf_catalog(), "Names", f"<< /JavaScript {names} 0 R >>")
    page = doc[0]
    page.insert_link(
        {"kind": pymupdf.LINK_URI, "from": pymupdf.Rect(MARGIN, 700, 300, 720), "uri": "http://x"}
    )
    link = page.annot_xrefs()[0][0]
    doc.xref_set_key(link, "A", f"<< /S /JavaScript /JS (app.launchURL('{url}/{SCRIPT_MARKER}')) >>")
    doc.save(path)
    base.unlink()
    return path


def with_attachment(path: Path) -> Path:
    """A normal manual carrying an embedded file and a file-attachment annotation.

    Both hold ``ATTACHMENT_MARKER`` text (one of them a shell script); nothing of
    them may be extracted to disk or indexed."""
    base = tiny_manual(path.with_name(path.stem + "-base.pdf"), "crane C9")
    doc = pymupdf.open(base)
    doc.embfile_add(
        "payload.sh",
        f"#!/bin/sh\necho {ATTACHMENT_MARKER} > /tmp/pwned\n".encode(),
        filename="../../payload.sh",
    )
    doc[0].add_file_annot((MARGIN, 760), f"{ATTACHMENT_MARKER} notes".encode(), filename="notes.txt")
    doc.save(path)
    base.unlink()
    return path


# -- oversized ------------------------------------------------------------------------------


@cache
def _zeros_deflated(size: int) -> bytes:
    packer = zlib.compressobj(9)
    block = b"\0" * (1 << 24)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    parts.append(packer.compress(b"\0" * (size % len(block))))
    parts.append(packer.flush())
    return b"".join(parts)


def decompression_bomb(path: Path, side: int = 15000) -> Path:
    """A real decompression bomb beside normal text: an RGB image of ``side`` x ``side``
    pixels (675 MB decoded at the default) stored as under 1 MB of deflated zeros,
    alone on its page, so the page looks like a scan that needs OCR, and again beside
    a captioned figure on a page with text."""
    m = ManualBuilder()
    m.text_page("Chapter 1 Boom B1", ["The boom B1 hydraulic ram is rated for 160 bar working pressure."])
    m.bomb_page((side, side), "Figure 2-1. Boom cylinder.")  # the declared-only bomb next to a figure
    alone = m.doc.new_page()
    xref = alone.insert_image(
        pymupdf.Rect(MARGIN, MARGIN, 540, 780), stream=label_diagram_png(["X"], width=60, height=40)
    )
    doc = m.doc
    for key in ("SMask", "DecodeParms", "Decode"):
        doc.xref_set_key(xref, key, "null")
    doc.update_stream(xref, _zeros_deflated(side * side * 3), compress=False)
    for key, value in (
        ("Width", str(side)),
        ("Height", str(side)),
        ("ColorSpace", "/DeviceRGB"),
        ("BitsPerComponent", "8"),
        ("Filter", "/FlateDecode"),
    ):
        doc.xref_set_key(xref, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path, garbage=3)  # no deflate_images: that would decode the bomb here
    return path


def thousand_pages(path: Path, pages: int = 1000) -> Path:
    """A long manual of plain text pages: one heading and one short paragraph each.

    Built with ``insert_text`` (no layout), so 1,000 pages take about a second."""
    doc = pymupdf.open()
    for n in range(1, pages + 1):
        page = doc.new_page()
        page.insert_text((MARGIN, 80), f"Section {n} Valve V{n:04d}", fontsize=16, fontname="hebo")
        page.insert_text(
            (MARGIN, 120),
            f"Valve V{n:04d} closes at {n % 90 + 10} bar; inspect its seal every {n % 12 + 1} months.",
            fontsize=10.5,
            fontname="helv",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path, garbage=3, deflate=True)
    return path


def huge_scanned_page(path: Path, points: int = 12_000) -> Path:
    """One page `points` a side (PDF allows 14,400) that is only an image of text: it goes to OCR,
    which renders the whole page (1.1 billion pixels at 200 dpi for 12,000 points, uncapped)."""
    from pdfgen import text_image

    with pymupdf.open() as doc:
        page = doc.new_page(width=points, height=points)
        scan = text_image([
            "Close the main valve before you open the cabinet door.",
            "Check that the supply is isolated and locked out first.",
            "Then remove the four screws that hold the cover plate.",
        ])
        page.insert_image(pymupdf.Rect(0, 0, points, points), stream=scan)
        doc.save(path)
    return path
