"""ingest.chunking: the pure rules on hand-made blocks, then a real PDF read with OCR."""

from __future__ import annotations

import itertools
from pathlib import Path

import pymupdf
import pytest
from pdfgen import PUMP_INTRO

from ingest.chunking import chunk_pages, split_sentences
from ingest.ocr import get_engine
from ingest.pdf import is_garbled, read_page
from manualrag.settings import IngestSettings
from manualrag.types import Block, Chunk, Page

_y = itertools.count()


def blk(
    text: str,
    kind: str = "text",
    page: int = 1,
    size: float = 10.5,
    ocr: bool = False,
    bbox: tuple[float, float, float, float] | None = None,
) -> Block:
    y = next(_y) % 60 * 12.0
    return Block(page, bbox or (50.0, y, 300.0, y + 10), text, kind, size, kind == "heading", ocr)  # type: ignore[arg-type]


def H(text: str, size: float = 16, page: int = 1) -> Block:
    return blk(text, "heading", page, size)


def words(n: int, seed: str = "word") -> str:
    """n words as one sentence."""
    return " ".join(f"{seed}word{i}" for i in range(n - 1)) + " end."


def pages_of(*blocks: Block) -> list[Page]:
    by_page: dict[int, list[Block]] = {}
    for b in blocks:
        by_page.setdefault(b.page, []).append(b)
    return [Page(n, 595, 842, bs) for n, bs in sorted(by_page.items())]


def chunk(*blocks: Block, max_words: int = 160) -> list[Chunk]:
    return chunk_pages(pages_of(*blocks), max_words)


# --------------------------------------------------------------------------- heading paths


@pytest.mark.parametrize(
    ("blocks", "sections"),
    [
        pytest.param(
            [
                H("Chapter 1"),
                H("1.1 Intro", 12),
                blk("Intro text of the first chapter here."),
                H("1.2 Scope", 12),
                blk("Scope text of the first chapter here."),
                H("Chapter 2"),
                blk("Text of the second chapter goes here."),
            ],
            ["Chapter 1 > 1.1 Intro", "Chapter 1 > 1.2 Scope", "Chapter 2"],
            id="same-level-pops-deeper",
        ),
        pytest.param(
            [
                H("INSULATION", 11),
                blk("Insulation keeps current in the wire."),
                H("Rubber", 11),
                blk("Rubber is the oldest insulation type."),
                H("METALLIC PROTECTION", 11),
                blk("Metal sheaths protect the cable from damage."),
            ],
            ["INSULATION", "INSULATION > Rubber", "METALLIC PROTECTION"],
            id="capitals-outrank-mixed-case-at-same-size",
        ),
        pytest.param(
            [
                H("Chapter 1", page=1),
                blk("First page text about the pump.", page=1),
                blk("Second page starts a new paragraph about the motor.", page=2),
                H("Chapter 2", page=3),
                blk("Third page text about the fuses.", page=3),
            ],
            ["Chapter 1", "Chapter 2"],
            id="carried-across-pages",
        ),
        pytest.param(
            [
                H("Pump Manual", 40, page=1),
                blk("Published by the maintenance office.", page=1),
                H("Chapter 1", page=2),
                blk("Safety rules for the whole pump.", page=2),
                H("Chapter 2", page=3),
                blk("Wiring rules for the whole pump.", page=3),
            ],
            ["Pump Manual", "Chapter 1", "Chapter 2"],
            id="cover-title-heads-its-page-only",
        ),
        pytest.param(
            [
                blk("Text before any heading at all in the manual."),
                H("Chapter 1"),
                H("1.1 Intro", 12),
                blk("Intro text under a heading stack."),
            ],
            ["", "Chapter 1 > 1.1 Intro"],
            id="no-heading-yet-and-empty-section",
        ),
        pytest.param(
            [
                H("Chapter 3 Troubleshooting"),
                H("3.2 Replacing the contactor"),
                blk("Switch off the breaker first."),
                blk("Appendix A Maintenance", "heading", size=0),
                blk("Grease the bearings every year."),
            ],
            ["Chapter 3 Troubleshooting > 3.2 Replacing the contactor", "Appendix A Maintenance"],
            id="chapter-and-appendix-titles-close-everything",
        ),
    ],
)
def test_heading_paths(blocks: list[Block], sections: list[str]) -> None:
    got = [c.section for c in chunk(*blocks)]
    assert got == sections, f"expected sections {sections}, got {got}"


# ----------------------------------------------------------------- paragraphs and sentences


def test_paragraphs_pack_without_splitting() -> None:
    paras = [words(60, f"p{i}w") for i in range(3)]
    chunks = chunk(H("Chapter 1"), *(blk(p) for p in paras))
    assert [c.text for c in chunks] == [f"{paras[0]}\n{paras[1]}", paras[2]], [c.text for c in chunks]


def test_long_paragraph_splits_at_sentences() -> None:
    sentences = [words(20, f"s{i}w") for i in range(10)]
    chunks = chunk(H("Chapter 1"), blk(" ".join(sentences)), max_words=80)
    assert len(chunks) == 3, [len(c.text.split()) for c in chunks]
    assert all(len(c.text.split()) <= 80 and c.text.endswith("end.") for c in chunks), [
        c.text for c in chunks
    ]
    assert " ".join(c.text for c in chunks) == " ".join(sentences), "nothing lost or reordered"


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Turn it off. Then unplug it!", ["Turn it off.", "Then unplug it!"]),
        ("Use No. 10 wire. See Fig. 3 now.", ["Use No. 10 wire.", "See Fig. 3 now."]),
        ('He said "stop." Next step follows.', ['He said "stop."', "Next step follows."]),
        ("A fuse, e.g. F3, may blow. Replace it.", ["A fuse, e.g. F3, may blow.", "Replace it."]),
        ("Voltage is 2.5 V. Current is 3 A.", ["Voltage is 2.5 V.", "Current is 3 A."]),
        ("no full stop at the end", ["no full stop at the end"]),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


# ---------------------------------------------------------------------------------- steps


def test_steps_stay_together_with_their_intro() -> None:
    prose = words(120, "prose")
    steps = [f"{i}. " + words(10, f"step{i}w") for i in range(1, 5)]
    chunks = chunk(
        H("3.2 Replacing the contactor"),
        blk(prose),
        blk("Replace the contactor as follows:"),
        *(blk(s) for s in steps),
    )
    assert [c.text for c in chunks] == [prose, "\n".join(["Replace the contactor as follows:", *steps])]


def test_long_procedure_splits_between_steps_and_repeats_the_section() -> None:
    steps = [f"{i}. " + words(39, f"step{i}w") for i in range(1, 7)]
    chunks = chunk(H("Procedure"), *(blk(s) for s in steps), max_words=100)
    assert [c.text.split("\n") for c in chunks] == [steps[0:2], steps[2:4], steps[4:6]]
    assert {c.section for c in chunks} == {"Procedure"}


# --------------------------------------------------------------------- tables, refs, captions


def test_table_is_never_merged_with_prose() -> None:
    table = "Table 1-2. Wire gauge\n| Gauge | Ohms |\n| --- | --- |\n" + "\n".join(
        f"| {i} | {i}.5 |" for i in range(150)
    )
    chunks = chunk(
        H("Wire sizes"),
        blk("Wire sizes are set by gauge, see table 1-2."),
        blk(table, "table"),
        blk("Larger gauge numbers mean thinner wire."),
        max_words=160,
    )
    kinds = [c.kind for c in chunks]
    assert kinds[0] == "text" and kinds[-1] == "text" and set(kinds[1:-1]) == {"table"}, kinds
    tables = chunks[1:-1]
    assert len(tables) > 1, "a 150-row table is split into row groups the embedder can read"
    assert all(t.text.startswith("Table 1-2. Wire gauge\n| Gauge | Ohms |") for t in tables)
    assert all(t.figure_refs == ("Table 1-2",) for t in tables)
    rows = [line for t in tables for line in t.text.split("\n")[3:]]
    assert rows == table.split("\n")[3:], "every row kept once, in order"
    assert "| 3 |" not in chunks[0].text + chunks[-1].text, "table rows never merge with prose"


def test_figure_refs_in_order_without_repeats() -> None:
    (c,) = chunk(
        H("Wiring"), blk("See figure 3-11 and Table 2-1; figure 3-11 shows the fuses, fig. 3-12 the board.")
    )
    assert c.figure_refs == ("Figure 3-11", "Table 2-1", "Figure 3-12")


def test_caption_joins_the_chunk_that_mentions_it() -> None:
    mention = "The control panel is shown in figure 3-1. " + words(140, "a")
    other = words(140, "b")
    chunks = chunk(H("Troubleshooting"), blk(mention), blk(other), blk("Figure 3-1. Front panel.", "caption"))
    assert len(chunks) == 2, [c.text[:40] for c in chunks]
    assert chunks[0].text.endswith("\nFigure 3-1. Front panel."), chunks[0].text[-60:]
    assert "Front panel" not in chunks[1].text


def test_caption_without_a_mention_joins_the_chunk_before_it() -> None:
    chunks = chunk(
        H("Wiring"),
        blk("The breaker feeds the contactor coil."),
        blk("Figure 2-1. Controller wiring diagram.", "caption"),
    )
    assert [c.text for c in chunks] == [
        "The breaker feeds the contactor coil.\nFigure 2-1. Controller wiring diagram."
    ]
    assert chunks[0].figure_refs == ("Figure 2-1",)


# ------------------------------------------------------------------------ pages and junk


def test_paragraph_cut_by_a_page_break_is_joined() -> None:
    (c,) = chunk(
        H("Grounding", page=1),
        blk("The controller must be bonded to the", page=1),
        blk("frame before power is applied.", page=2),
    )
    assert c.text == "The controller must be bonded to the frame before power is applied." and c.pages == (
        1,
        2,
    )


def test_tiny_tail_joins_the_chunk_before() -> None:
    chunks = chunk(H("Storage"), blk(words(150, "x")), blk("Keep it dry."), max_words=150)
    assert len(chunks) == 1 and chunks[0].text.endswith("Keep it dry."), [c.text[-30:] for c in chunks]


@pytest.mark.parametrize("junk", ["3-12", "12", "A B", "— —", "iii"])
def test_junk_chunks_are_dropped(junk: str) -> None:
    assert chunk(H("Index"), blk(junk)) == [], f"{junk!r} should not become a chunk"


def test_ocr_flag_and_first_page_bbox() -> None:
    (c,) = chunk(
        H("Storage", page=4),
        blk("Store the pump dry and", page=4, bbox=(60, 100, 300, 120)),
        blk("cool, away from frost and dust.", page=4, ocr=True, bbox=(55, 130, 280, 150)),
        blk("drain it first, always.", page=5, bbox=(10, 10, 500, 30)),
    )
    assert c.ocr and c.pages == (4, 5)
    assert c.bbox == (55, 100, 300, 150), "bbox is the union of the blocks on the first page only"


# ------------------------------------------------------------------------ a real manual


@pytest.fixture(scope="module")
def sample_chunks(sample_pdf: Path) -> list[Chunk]:
    settings = IngestSettings()
    doc = pymupdf.open(sample_pdf)
    ocr = get_engine("rapidocr")
    pages = [read_page(doc, n, settings, ocr) for n in range(1, doc.page_count + 1)]
    return chunk_pages(pages, settings.chunk_words)


def _find(chunks: list[Chunk], needle: str) -> Chunk:
    found = [c for c in chunks if needle in c.text]
    assert len(found) == 1, f"expected one chunk with {needle!r}, got {[c.text[:60] for c in found]}"
    return found[0]


def test_sample_manual_chunks(sample_chunks: list[Chunk]) -> None:
    wiring = _find(sample_chunks, "three-phase motor")
    assert PUMP_INTRO in wiring.text and wiring.section == "Chapter 2 Wiring", wiring
    assert wiring.figure_refs[:2] == ("Figure 2-1", "Table 2-1"), wiring.figure_refs
    assert "Figure 2-1. Controller wiring diagram." in wiring.text, "caption attached as context"

    safety = _find(sample_chunks, "insulated gloves")
    assert safety.section == "Chapter 1 Safety > 1.1 General precautions" and safety.pages == (1,)

    table = _find(sample_chunks, "| F3 | Motor contactor coil | 20 AMP |")
    assert table.kind == "table" and table.text.startswith("Table 2-1. Fuse ratings.") and not table.ocr
    assert table.section == "Chapter 2 Wiring > 2.2 Fuse ratings", table.section

    steps = _find(sample_chunks, "1. Switch off and lock out the main breaker.")
    assert all(f"{i}. " in steps.text for i in range(1, 5)), steps.text
    assert steps.section == "Chapter 3 Troubleshooting > 3.2 Replacing the contactor", steps.section


def test_sample_manual_ocr_chunks(sample_chunks: list[Chunk]) -> None:
    scanned = _find(sample_chunks, "lithium grease")
    assert scanned.ocr and scanned.pages == (6,), scanned
    assert scanned.section == "Appendix A Maintenance schedule", "an OCR'd appendix title closes chapter 3"
    junk_layer = _find(sample_chunks, "frost damage")
    assert junk_layer.ocr and junk_layer.pages == (7,) and junk_layer.section == "Appendix B Storage", (
        junk_layer
    )
    bad = [c.text for c in sample_chunks if is_garbled(c.text)]
    assert not bad, f"junk text reached the chunks: {bad}"


def test_big_table_splits_into_row_groups_with_header() -> None:
    from ingest.chunking import split_table

    head = ["Table 1-2.—Standard sizes", "| Gauge | Diameter | Area |", "| --- | --- | --- |"]
    rows = [f"| {i} | {i * 3}.2 mils | {i * 7} CM |" for i in range(60)]
    parts = split_table("\n".join(head + rows), 120)
    assert len(parts) > 1, "a 60-row table is past the limit and must be split"
    seen = []
    for part in parts:
        lines = part.split("\n")
        assert lines[:3] == head, f"every part repeats caption and header, got {lines[:3]}"
        assert len(part.split()) <= 120, "each part fits the word budget"
        seen.extend(lines[3:])
    assert seen == rows, "every row appears once, in order"
    small = "\n".join(head + rows[:3])
    assert split_table(small, 120) == [small], "a table that fits stays one chunk"
