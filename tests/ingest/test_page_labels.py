"""Printed page labels read from real PDFs: the PDF's own labels, footer numbers, chapter-page."""

from __future__ import annotations

from pathlib import Path

import pymupdf
from pdfgen import A4

from ingest.page_labels import labels_from_candidates, page_labels


def _numbered(path: Path, footers: list[str | None]) -> Path:
    doc = pymupdf.open()
    for n, footer in enumerate(footers, 1):
        page = doc.new_page(width=A4[0], height=A4[1])
        page.insert_text((72, 120), f"Body text of sheet {n} about the pump and its valves.", fontsize=11)
        if footer:
            page.insert_text((A4[0] / 2 - 20, A4[1] - 24), footer, fontsize=9)
    doc.save(path)
    return path


def test_footer_numbers_offset_from_the_pdf_index(tmp_path: Path) -> None:
    # A cover and a contents page are not numbered; the body starts at printed 1 on PDF page 3.
    path = _numbered(tmp_path / "m.pdf", [None, None, "1", "Page 2", "3 of 6", None, "5", "6"])
    with pymupdf.open(path) as doc:
        labels = page_labels(doc)
    assert labels == ["", "", "1", "2", "3", "4", "5", "6"], "a page between numbered ones counts on"


def test_numbers_equal_to_the_index_give_no_labels(tmp_path: Path) -> None:
    path = _numbered(tmp_path / "m.pdf", ["1", "2", "3", "4"])
    with pymupdf.open(path) as doc:
        assert page_labels(doc) == ["", "", "", ""], "printed = index: nothing to map"


def test_the_pdfs_own_labels_win(tmp_path: Path) -> None:
    path = _numbered(tmp_path / "m.pdf", ["9", "9", "9", "9"])
    with pymupdf.open(path) as doc:
        doc.set_page_labels([{"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
                             {"startpage": 2, "prefix": "", "style": "D", "firstpagenum": 1}])
        doc.save(tmp_path / "labelled.pdf")
    with pymupdf.open(tmp_path / "labelled.pdf") as doc:
        assert page_labels(doc) == ["i", "ii", "1", "2"]


def test_chapter_page_labels(tmp_path: Path) -> None:
    path = _numbered(tmp_path / "m.pdf", ["1-1", "1-2", "Wiring 2-1", "2-2"])
    with pymupdf.open(path) as doc:
        assert page_labels(doc) == ["1-1", "1-2", "2-1", "2-2"]


def test_a_stray_number_does_not_make_labels() -> None:
    # A year in one footer and a part number in another agree on no offset.
    assert labels_from_candidates([["2019"], [], ["17"], [], []]) == [""] * 5
