"""Retrieval by whole page and by printed page number, on real PDFs ingested for real."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest
from pdfgen import A4, MARGIN, PUMP_INTRO, ManualBuilder

from manualrag.engine import Engine


def _page(doc: pymupdf.Document, heading: str, paragraphs: list[str], footer: str | None) -> None:
    page = doc.new_page(width=A4[0], height=A4[1])
    y = MARGIN + 20
    page.insert_text((MARGIN, y), heading, fontsize=16, fontname="hebo")
    y += 34
    for text in paragraphs:
        box = pymupdf.Rect(MARGIN, y, A4[0] - MARGIN, y + 120)
        page.insert_textbox(box, text, fontsize=10.5)
        y += 40 + 14 * (len(text) // 80)
    if footer:
        page.insert_text((A4[0] / 2 - 10, A4[1] - 24), footer, fontsize=9)


@pytest.fixture
def paged(ingested_engine: Engine, tmp_path: Path) -> Engine:
    """A cover, then pages printed 1..4 on PDF pages 2..5; printed page 3 answers a question
    whose words are spread over the page, none of its passages holding them all."""
    doc = pymupdf.open()
    _page(doc, "Chiller CH-9 service guide", ["Edition 3, printed in Lyon."], None)
    _page(doc, "Starting the chiller", ["Close the drain valve, then open the supply valve slowly.",
                                         "Wait for the pressure gauge to settle before pressing start."], "1")
    _page(doc, "Alarms", ["The alarm horn sounds when the water is too warm.",
                          "Acknowledge an alarm with the reset key."], "2")
    _page(doc, "Winter operation", [
        "In cold weather the condenser needs protection.",
        "Antifreeze: fill the loop with propylene glycol at 35 percent.",
        "Strainer: clean the mesh screen monthly while temperatures stay below freezing.",
    ], "3")
    _page(doc, "Cleaning", ["Clean the condenser coils every spring with a soft brush.",
                            "Never use a pressure washer on the fins."], "4")
    path = tmp_path / "chiller.pdf"
    doc.save(path)
    reports = ingested_engine.ingest([path])
    assert all(r.status == "ingested" for r in reports), [r.error for r in reports]
    return ingested_engine


def test_a_printed_page_number_means_the_printed_page(paged: Engine) -> None:
    info = next(m for m in paged.manuals() if m.name == "chiller.pdf")
    assert info.page_labels[1:] == ["1", "2", "3", "4"]
    hits = paged.search("What does page 2 say about the horn?", manuals=["chiller.pdf"], k=4).hits
    assert hits[0].page == 3, f"printed page 2 is PDF page 3, got {[h.page for h in hits]}"


def test_the_cover_means_the_first_page(paged: Engine) -> None:
    hits = paged.search("What colour is the alarm horn on the cover?", manuals=["chiller.pdf"], k=4).hits
    assert hits[0].page == 1, [(h.page, h.kind) for h in hits]


def test_words_spread_over_a_page_find_the_page(paged: Engine) -> None:
    hits = paged.search("winter antifreeze and strainer for the condenser", manuals=["chiller.pdf"], k=4).hits
    assert hits[0].page == 4, [(h.page, h.kind) for h in hits]
    texts = paged.retriever.page_texts(hits[:1])
    page = texts[("chiller.pdf", 4)]
    assert "propylene glycol" in page and "mesh screen" in page, "the page record holds the whole page"
    passage = next(h for h in hits if h.kind == "text" and h.page == 4)
    overleaf = paged.retriever.page_texts([passage], overleaf=True)
    assert "condenser coils every spring" in overleaf[("chiller.pdf", 5)], "a passage's next page, where it may run on"


def test_a_whole_page_gives_way_to_its_passages(paged: Engine) -> None:
    for question in ("When does the alarm horn sound?", "winter antifreeze strainer", "supply valve gauge"):
        seen: set[tuple[str, int]] = set()
        for hit in paged.search(question, manuals=["chiller.pdf"], k=8).hits:
            assert not (hit.kind == "page" and (hit.manual, hit.page) in seen), (
                f"{question!r}: page {hit.page} again as a whole after a passage of it"
            )
            seen.add((hit.manual, hit.page))


def test_a_page_of_bold_labels_only_is_found(ingested_engine: Engine, tmp_path: Path) -> None:
    # A brochure page: a bold label under each photo, nothing the chunker takes for body
    # text (the labels look like headings), so no passage of its own.
    doc = pymupdf.open()
    _page(doc, "Trim levels", ["The sedan comes in three trim levels with a choice of engines.",
                               "Every trim has adaptive cruise control and lane keeping."], "1")
    page = doc.new_page(width=A4[0], height=A4[1])
    for n, label in enumerate(["Base 16-in. steel wheel with hubcap", "Sport 18-in. machined alloy wheel",
                               "Touring 19-in. gloss-black alloy wheel"]):
        page.insert_text((MARGIN, MARGIN + 120 + 140 * n), label, fontsize=14, fontname="hebo")
    _page(doc, "Warranty", ["Basic coverage lasts three years or thirty-six thousand miles.",
                            "Corrosion perforation is covered for five years."], "3")
    path = tmp_path / "sedan.pdf"
    doc.save(path)
    (report,) = ingested_engine.ingest([path])
    assert report.status == "ingested", report.error
    hits = ingested_engine.search("Which wheel has a hubcap?", manuals=["sedan.pdf"], k=4).hits
    assert hits and hits[0].page == 2, [(h.page, h.kind) for h in hits]
    assert "hubcap" in hits[0].text, "the page's own words are what the answer stage reads"


def test_a_figure_inside_a_scanned_page_is_found_with_its_caption(ingested_engine: Engine, tmp_path: Path) -> None:
    # A scanned manual: every page one image, drawn at the same place; one holds a diagram.
    m = ManualBuilder()
    m.scanned_page(["1 Safety", "Isolate the supply at the main breaker before any work.",
                    "Only trained staff may open the controller cabinet."])
    m.scanned_figure_page("2 Wiring", [PUMP_INTRO, "Tighten every terminal before restoring power. " * 3],
                          ["MAIN BREAKER", "CONTACTOR K1", "OVERLOAD RELAY", "MOTOR M1", "FUSE F3 20 AMP",
                           "TERMINAL TB1"], "Figure 2-1.—Pump controller wiring.")
    m.scanned_page(["3 Cleaning", "Wipe the housing with a damp cloth once a month."])
    path = m.save(tmp_path / "scanned.pdf")
    (report,) = ingested_engine.ingest([path])
    assert report.status == "ingested" and report.figures == 1, (report.status, report.error, report.figures)
    hits = ingested_engine.search("Which fuse is in the pump controller wiring?", manuals=["scanned.pdf"], k=5).hits
    figure = next((h for h in hits if h.kind == "figure"), None)
    assert figure is not None, [(h.page, h.kind) for h in hits]
    assert (figure.page, figure.figure) == (2, "Figure 2-1"), "the caption read by page OCR names the crop"
    assert "FUSE F3 20 AMP" in figure.text and Path(figure.image).is_file(), "labels read, crop stored"
