"""ingest.pdf on real PDFs made here with PyMuPDF, read with real OCR (RapidOCR)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pymupdf
import pytest
from pdfgen import A4, MARGIN, ManualBuilder, junk, sample_manual

from ingest.ocr import OcrEngine, get_engine
from ingest.pdf import (
    body_font_size,
    is_caption,
    is_garbled,
    known_word_share,
    open_pdf,
    read_page,
    text_layer_problem,
)
from ingest.spans import page_words
from manualrag.errors import UnreadablePdf
from manualrag.settings import IngestSettings
from manualrag.types import OcrLine, Page

FUSES = [
    ["Fuse", "Circuit", "Rating"],
    ["F1", "Control transformer", "2 AMP"],
    ["F2", "Indicator lamps", "1 AMP"],
    ["F3", "Motor contactor coil", "20 AMP"],
]


@pytest.fixture(scope="module")
def cfg() -> IngestSettings:
    return IngestSettings()


@pytest.fixture(scope="module")
def ocr() -> OcrEngine:
    return get_engine("rapidocr")


@pytest.fixture(scope="module")
def sample(sample_pdf: Path) -> pymupdf.Document:
    return pymupdf.open(sample_pdf)


@pytest.fixture(scope="module")
def sample_pages(sample: pymupdf.Document, cfg: IngestSettings, ocr: OcrEngine) -> dict[int, Page]:
    return {n: read_page(sample, n, cfg, ocr) for n in range(1, sample.page_count + 1)}


def texts(page: Page, kind: str | None = None) -> list[str]:
    return [b.text for b in page.blocks if kind is None or b.kind == kind]


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


# ------------------------------------------------------------------------------- open_pdf


def _zero_pages(path: Path) -> None:
    """A well-formed PDF (valid xref) whose page tree is empty: PyMuPDF refuses to save one."""
    objects = [b"<</Type /Catalog /Pages 2 0 R>>", b"<</Type /Pages /Kids [] /Count 0>>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj %s endobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 3\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer <</Size 3 /Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(out))


def _encrypted(path: Path, user_pw: str) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret wiring")
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw=user_pw, permissions=0)


def _truncated(path: Path, keep: float = 0.1) -> None:
    data = sample_manual(path.with_name("full.pdf")).read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    ("make", "overrides", "reason"),
    [
        (None, {}, "file not found"),
        (lambda p: p.write_bytes(b""), {}, "the file is empty"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 2000), {}, "not a PDF file"),
        (
            lambda p: p.write_bytes(b"<html>%PDF-1.4 is mentioned but this is a web page</html>"),
            {},
            "damaged",
        ),
        (lambda p: p.write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 200), {}, "damaged"),
        (_truncated, {}, "damaged"),
        (lambda p: _truncated(p, keep=0.5), {}, "incomplete (truncated)"),
        (_zero_pages, {}, "no pages"),
        (lambda p: _encrypted(p, "user"), {}, "encrypted with a password: remove the password"),
        (lambda p: sample_manual(p), {"max_pages": 3}, "over the 3-page limit"),
        (lambda p: sample_manual(p), {"max_file_mb": 0}, "over the 0 MB limit"),
    ],
    ids=[
        "missing",
        "empty",
        "png-named-pdf",
        "html-with-signature",
        "garbage",
        "truncated-early",
        "truncated-late",
        "zero-pages",
        "user-password",
        "too-many-pages",
        "too-large",
    ],
)
def test_open_pdf_refuses_with_a_reason(tmp_path: Path, make, overrides: dict, reason: str) -> None:
    path = tmp_path / "manual.pdf"
    if make:
        make(path)
    with pytest.raises(UnreadablePdf) as err:
        open_pdf(path, IngestSettings(**overrides))
    assert reason in err.value.reason, f"expected {reason!r} in the reason, got {err.value.reason!r}"
    assert err.value.path == str(path)


def test_open_pdf_repairs_a_complete_file_with_a_broken_xref(tmp_path: Path, cfg: IngestSettings) -> None:
    data = sample_manual(tmp_path / "good.pdf").read_bytes()
    start = data.rindex(b"startxref")
    path = tmp_path / "bad-xref.pdf"
    path.write_bytes(data[:start] + b"startxref\n123\n%%EOF\n")  # points nowhere: MuPDF rebuilds the xref
    doc = open_pdf(path, cfg)
    assert doc.is_repaired and doc.page_count == 7, (
        "a complete file with a broken xref is repaired, not refused"
    )
    assert "Chapter 1 Safety" in doc.load_page(0).get_text()


def test_open_pdf_opens_owner_password_only_files(tmp_path: Path, cfg: IngestSettings) -> None:
    path = tmp_path / "owner-only.pdf"
    _encrypted(path, user_pw="")
    doc = open_pdf(path, cfg)
    assert "secret wiring" in doc.load_page(0).get_text(), "owner-password-only PDF should open and read"


def test_open_pdf_checks_content_not_name(tmp_path: Path, cfg: IngestSettings) -> None:
    path = tmp_path / "manual.bin"
    sample_manual(tmp_path / "m.pdf").rename(path)
    assert open_pdf(path, cfg).page_count == 7, "a PDF with another extension should open"


# ------------------------------------------------------------------------ garbled detection


_TABLE_WORDS = (
    "hose size dash number inside diameter outside reinforcement inches pounds foot standard steel braid psi "
    "per minute gallons table pressure working burst bend radius fitting temperature suction return maximum "
    "velocity spiral cover layers"
)
_GERMAN = (
    "Vor Beginn der Arbeiten ist die Anlage spannungsfrei zu schalten und gegen Wiedereinschalten zu "
    "sichern. Die Sicherungen im Schaltschrank dürfen nur durch Elektrofachkräfte gewechselt werden."
)
_DIGIT_JUNK = " ".join(junk(w) for w in _TABLE_WORDS.split()) + " >6@ =4?? 6A@D= @=>664466 ?6=BA 6@4D66A" * 30


@pytest.mark.parametrize(
    ("text", "garbled"),
    [
        ("The rated head of a pump is the height to which it lifts water at its rated flow.", False),
        # a scanned manual's junk font layer: letters extract as symbols and accented letters
        ("•ìê °£ê§§¶£ê §Æî•éì •¶£ü§ †ëë •ìê ìêÜ•ê£ Ü• î•§ §ê• °†îü•", True),
        (junk("Store the pump in a dry room between 5 and 40 degrees Celsius."), True),
        ("P14C 15 AMP", False),
        ("6666 ?66 ?DA A=6 DA6", False),  # digits alone never judge a block (the font check does)
        ("HVACPUB 30518", False),
        ("LUBRICATION", False),
        ("PRECHARGED ACCUMULATORS", False),
        ("1. 8.41 kPa (b) 2.16 kPa 2. 5.73 kPa (b) 3.90 kPa 3. 6.12 kPa (b) 1.85 kPa", False),
        ("Die Sicherung muss vor dem Öffnen des Gehäuses entfernt werden, sonst droht Stromschlag.", False),
        ("Débranchez l'alimentation avant d'ouvrir le boîtier de commande et attendez cinq minutes.", False),
        # ASCII junk (a shifted alphabet): no English words, too few vowels
        ("Wkh udwhg khdg ri d sxps lv wkh khljkw wr zklfk lw oliwv zdwhu dw lwv udwhg iorz.", True),
        ("", False),
        # A table in a junk font: a few junk words among digit junk in ASCII symbols (digits
        # extract as "=@>6" and the like), so under 20% odd characters, yet not one English
        # word in 20+ distinct tokens
        (_DIGIT_JUNK, True),
        (_GERMAN, False),
    ],
)
def test_is_garbled(text: str, garbled: bool) -> None:
    assert is_garbled(text, 0.5) is garbled, (
        f"expected is_garbled={garbled} for {text!r} (known share {known_word_share(text):.2f})"
    )


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("Disconnect the power before opening the cabinet.", 0.8, 1.0),
        ("ìêÜ•êè á∞ Ü á¶£üê£", 0.0, 0.01),
        ("12 34 56", 1.0, 1.0),
    ],
)
def test_known_word_share(text: str, low: float, high: float) -> None:
    share = known_word_share(text)
    assert low <= share <= high, f"known_word_share({text!r}) = {share}, expected within [{low}, {high}]"


@pytest.mark.parametrize(
    ("text", "bold", "expected"),
    [
        ("Figure 2-1. Controller wiring diagram.", False, True),
        ("Table 1-1.—Pipe Friction Losses", False, True),
        ("Table 2-1 lists the fuse ratings for each circuit.", False, False),
        ("Fig. 2 Pump", True, True),
        ("Fig. 2 Pump", False, False),
        ("The figure shows a pump.", True, False),
    ],
)
def test_is_caption(text: str, bold: bool, expected: bool) -> None:
    assert is_caption(text, bold) is expected, f"is_caption({text!r}, bold={bold}) should be {expected}"


# ---------------------------------------------------------------------------- read_page


def test_headings_text_and_captions(sample_pages: dict[int, Page]) -> None:
    first, second = sample_pages[1], sample_pages[2]
    assert texts(first, "heading") == ["Chapter 1 Safety", "1.1 General precautions"], first.blocks
    assert any(t.startswith("WARNING: Disconnect power") for t in texts(first, "text")), texts(first)
    assert texts(second, "caption") == ["Figure 2-1. Controller wiring diagram."], second.blocks
    assert not first.ocr and not first.warnings, "a clean page needs no OCR and has no warnings"
    body = [b for b in first.blocks if b.kind == "text"]
    assert all(b.size == 10.5 and not b.bold and not b.ocr for b in body), body


def test_table_is_markdown_with_caption_and_not_duplicated(sample_pages: dict[int, Page]) -> None:
    page = sample_pages[3]
    tables = [b for b in page.blocks if b.kind == "table"]
    assert len(tables) == 1, f"expected one table block, got {page.blocks}"
    lines = tables[0].text.splitlines()
    assert lines[:3] == ["Table 2-1. Fuse ratings.", "| Fuse | Circuit | Rating |", "| --- | --- | --- |"], (
        lines
    )
    assert "| F3 | Motor contactor coil | 20 AMP |" in lines, lines
    others = " ".join(b.text for b in page.blocks if b.kind != "table")
    assert "Indicator lamps" not in others and "Table 2-1" not in others, f"table text duplicated: {others!r}"


def test_steps_stay_separate_blocks(sample_pages: dict[int, Page]) -> None:
    steps = [t for t in texts(sample_pages[5]) if re.match(r"\d\. ", t)]
    assert [s[:2] for s in steps] == ["1.", "2.", "3.", "4."], texts(sample_pages[5])


def test_scanned_page_is_read_by_ocr(sample_pages: dict[int, Page]) -> None:
    page = sample_pages[6]
    text = " ".join(texts(page))
    for word in ("impeller", "500", "lithium", "grease", "maintenance"):
        assert word in words_of(text), f"OCR of the scanned page should read {word!r}: {text!r}"
    assert page.ocr and all(b.ocr for b in page.blocks), page.blocks
    # OCR boxes are mapped back to PDF points, inside the scanned image on the page
    for block in page.blocks:
        x0, y0, x1, y1 = block.bbox
        assert MARGIN - 2 <= x0 < x1 <= A4[0] - MARGIN + 2 and 80 <= y0 < y1 <= 160, block


def test_junk_text_layer_is_replaced_by_ocr(sample_pages: dict[int, Page]) -> None:
    page = sample_pages[7]
    text = " ".join(texts(page))
    for word in ("store", "dry", "celsius", "drain", "frost", "40"):
        assert word in words_of(text), f"OCR should replace the junk layer and read {word!r}: {text!r}"
    assert not is_garbled(text), f"no junk may remain: {text!r}"
    assert page.ocr


def test_without_ocr_garbled_text_is_dropped_with_a_warning(
    sample: pymupdf.Document, cfg: IngestSettings
) -> None:
    junk_page = read_page(sample, 7, cfg, None)
    scanned = read_page(sample, 6, cfg, None)
    assert junk_page.blocks == [] and scanned.blocks == [], (junk_page.blocks, scanned.blocks)
    assert "broken text layer" in " ".join(junk_page.warnings), junk_page.warnings
    assert "scanned" in " ".join(scanned.warnings), scanned.warnings
    assert not junk_page.ocr


@pytest.mark.parametrize(("number", "problem"), [(1, None), (3, None), (6, "scanned"), (7, "garbled")])
def test_text_layer_problem(sample: pymupdf.Document, cfg: IngestSettings, number: int, problem) -> None:
    assert text_layer_problem(sample.load_page(number - 1), cfg) == problem


def test_exclude_drops_figure_text_but_keeps_caption(sample: pymupdf.Document, cfg: IngestSettings) -> None:
    plain = read_page(sample, 2, cfg, None)
    assert any("MAIN BREAKER" in t for t in texts(plain)), "without exclude the labels are page text"
    frame = (MARGIN, 150.0, A4[0] - MARGIN, 320.0)
    page = read_page(sample, 2, cfg, None, exclude=[frame])
    assert not any("MAIN BREAKER" in t or "TERMINAL TB1" in t for t in texts(page)), texts(page)
    assert texts(page, "caption") == ["Figure 2-1. Controller wiring diagram."], texts(page)


def test_junk_table_is_read_by_ocr_into_cells(tmp_path: Path, cfg: IngestSettings, ocr: OcrEngine) -> None:
    m = ManualBuilder()
    m.junk_table_page(
        "2.2 Fuse ratings",
        "Replace fuses only with the ratings given below.",
        FUSES,
        "Table 2-1. Fuse ratings.",
    )
    doc = pymupdf.open(m.save(tmp_path / "junk-table.pdf"))
    page = read_page(doc, 1, cfg, ocr)
    tables = [b for b in page.blocks if b.kind == "table"]
    assert len(tables) == 1 and tables[0].ocr, page.blocks
    rows = tables[0].text.splitlines()
    assert rows[0] == "Table 2-1. Fuse ratings.", rows
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows[1:]]
    assert ["F2", "Indicator lamps", "1 AMP"] in cells and [
        "F3",
        "Motor contactor coil",
        "20 AMP",
    ] in cells, cells
    assert texts(page, "heading") == ["2.2 Fuse ratings"], "the clean heading stays text-layer"


def test_running_headers_and_page_numbers_are_dropped(tmp_path: Path, cfg: IngestSettings) -> None:
    m = ManualBuilder()
    w = m.text_page("Chapter 4 Maintenance", ["Check the brushes every month and replace worn ones."])
    w.page.insert_text((A4[0] / 2, A4[1] - 30), "4-12", fontsize=9)
    w.page.insert_text((MARGIN, 36), "P-200 Service Manual", fontsize=8)
    w.page.insert_text((A4[0] / 2, A4[1] - 30 - 12), junk("=3A"), fontsize=9)
    page = read_page(pymupdf.open(m.save(tmp_path / "furniture.pdf")), 1, cfg, None)
    assert texts(page) == ["Chapter 4 Maintenance", "Check the brushes every month and replace worn ones."], (
        texts(page)
    )


def test_stacked_chapter_title_is_one_heading(tmp_path: Path, cfg: IngestSettings) -> None:
    m = ManualBuilder()
    w = m.new_page()
    w.heading("CHAPTER 2", size=14)
    w.heading("PIPING PRACTICES", size=18)
    w.paragraph("Joints must be as strong as the pipe itself and free of leaks. " * 3)
    w.heading("Cutting Copper Tube", size=12)
    w.paragraph("Turn the cutter a quarter turn at a time, so the tube wall is not crushed.")
    doc = pymupdf.open(m.save(tmp_path / "stacked.pdf"))
    page = read_page(doc, 1, cfg, None)
    assert texts(page, "heading") == ["CHAPTER 2 PIPING PRACTICES", "Cutting Copper Tube"], page.blocks
    assert body_font_size(doc) == 10.5


def test_rotated_pages_read_like_upright_ones(sample_pdf: Path, cfg: IngestSettings, ocr: OcrEngine) -> None:
    doc = pymupdf.open(sample_pdf)
    for page in doc:
        page.set_rotation(90)
    table = read_page(doc, 3, cfg, ocr)
    scanned = read_page(doc, 6, cfg, ocr)
    assert any(
        b.kind == "table" and "| F1 | Control transformer | 2 AMP |" in b.text for b in table.blocks
    ), table
    assert "lithium" in words_of(" ".join(texts(scanned))), (
        f"OCR must find the scan on a rotated page: {scanned}"
    )
    assert doc.load_page(5).rotation == 90, "the page's rotation is put back after reading"


class _BrokenOcr(OcrEngine):
    """An engine that fails, standing in for an OCR crash on one page."""

    name = "broken"

    def read(self, png: bytes, turned: bool = False) -> list[OcrLine]:
        raise RuntimeError("onnxruntime session died")


def test_a_failing_page_never_raises(sample: pymupdf.Document, cfg: IngestSettings) -> None:
    missing = read_page(sample, 99, cfg, None)
    assert missing.number == 99 and missing.blocks == [] and "could not be read" in missing.warnings[0]
    page = read_page(sample, 7, cfg, _BrokenOcr())
    assert "OCR failed (RuntimeError)" in " ".join(page.warnings), page.warnings
    assert not page.ocr and page.blocks == [], page.blocks


def _runs(page: pymupdf.Page, y: float, runs: list[tuple[str, str, bool]]) -> None:
    """Write (text, font, raised) runs one after another on one line; raised is superscript."""
    x = MARGIN
    for text, font, raised in runs:
        size = 6 if raised else 10
        page.insert_text((x, y - 4 if raised else y), text, fontsize=size, fontname=font)
        x += pymupdf.get_text_length(text, fontname=font, fontsize=size)


def _read_back(tmp_path: Path, cfg: IngestSettings, write: Callable[[pymupdf.Page], None]) -> str:
    """The text read_page gets from a one-page PDF that `write` drew, saved and reopened."""
    doc = pymupdf.open()
    write(doc.new_page(width=A4[0], height=A4[1]))
    path = tmp_path / "page.pdf"
    doc.save(path)
    with pymupdf.open(path) as reopened:
        return "\n".join(b.text for b in read_page(reopened, 1, cfg, None).blocks)


def test_letter_spaced_headings_are_read_as_words(tmp_path: Path, cfg: IngestSettings) -> None:
    """Display type set with a space after every capital reads as words, split where the gap
    is wider; a formula of single letters ("M x N") and ordinary text are left alone."""

    def write(page: pymupdf.Page) -> None:
        page.insert_text((MARGIN, 120), "C A M R Y    H Y B R I D    M O D E L S", fontsize=16,
                         fontname="hebo")
        page.insert_text((MARGIN, 160), "Each model lists its wheels and its engine.", fontsize=10)
        page.insert_text((MARGIN, 180), "The output has the shape M x N x 2 for each box.", fontsize=10)

    text = _read_back(tmp_path, cfg, write)
    assert "CAMRY HYBRID MODELS" in text, text
    assert "Each model lists its wheels and its engine." in text
    assert "M x N x 2" in text, "lower-case single letters are not letter-spacing"


def test_a_space_set_in_a_font_of_its_own_still_parts_the_words(tmp_path: Path, cfg: IngestSettings) -> None:
    """Software manuals set a keyword in bold, the space in another font, the name in a third:
    the space is a span of its own, and the words stay apart."""

    def write(page: pymupdf.Page) -> None:
        _runs(page, 120, [
            ("class", "cobo", False), (" ", "helv", False), ("pump.drivers.SoftStarter", "cour", False),
            (" ", "helv", False), ("(ramp_s)", "cour", False),
        ])
        page.insert_text((MARGIN, 160), "The soft starter ramps the motor voltage up.", fontsize=10)

    text = _read_back(tmp_path, cfg, write)
    assert "class pump.drivers.SoftStarter (ramp_s)" in text, text


def test_footnote_marks_leave_the_words_they_follow(tmp_path: Path, cfg: IngestSettings) -> None:
    """A brochure's superscript footnote marks ("Auto Stop¹⁴") would glue to the word and
    hide it from search; an exponent after a number or a unit ("mm²") stays."""

    def write(page: pymupdf.Page) -> None:
        _runs(page, 120, [("Auto Stop", "helv", False), ("14", "helv", True),
                          (" works from the app.", "helv", False), ("5,8", "helv", True)])
        _runs(page, 140, [("Use 2.5 mm", "helv", False), ("2", "helv", True),
                          (" wire for the pump motor.", "helv", False)])
        _runs(page, 160, [("The area is 4", "helv", False), ("2", "helv", True),
                          (" = 16 square units.", "helv", False)])

    text = _read_back(tmp_path, cfg, write)
    assert "Auto Stop works from the app." in text, text
    assert "Use 2.5 mm² wire for the pump motor." in text, text
    assert "The area is 4² = 16 square units." in text, "an exponent is no digit of the number"


def test_words_keep_a_value_apart_from_its_footnote_mark() -> None:
    """Tables are read word by word: "12.5" with a raised "3" is no "12.53"."""
    page = pymupdf.open().new_page(width=A4[0], height=A4[1])
    _runs(page, 120, [("Oil sump 12.5", "helv", False), ("3", "helv", True),
                      (" L  Auto Stop", "helv", False), ("14", "helv", True)])
    assert [w[4] for w in page.get_text("words")][2] == "12.53", "what plain words make of it"
    assert [w[4] for w in page_words(page)] == ["Oil", "sump", "12.5³", "L", "Auto", "Stop"]


def _spec_page(doc: pymupdf.Document) -> None:
    """A brochure's spec page: model names once at the top, prose between, then rows of a
    label and one value per model with no rules, a unit wrapped under each value."""
    page = doc.new_page(width=A4[0], height=A4[1])
    columns = [300, 360, 420, 480]
    page.insert_text((MARGIN, 60), "SPECIFICATIONS", fontsize=14, fontname="hebo")
    for x, (top, bottom) in zip(columns, [("LE", ""), ("XLE", ""), ("LE", "Hybrid"), ("XLE", "Hybrid")]):
        page.insert_text((x, 90), top, fontsize=9, fontname="hebo")
        if bottom:
            page.insert_text((x, 100), bottom, fontsize=9, fontname="hebo")
    page.insert_text((MARGIN, 130), "Every model comes with a five-year corrosion warranty.", fontsize=10)
    rows = [
        ("Fuel tank (gal.)", ["15.8", "15.8", "13.2", "13.2"], None),
        ("Power output", ["203", "203", "118", "118"], ["(152 kW)", "(152 kW)", "(88 kW)", "(88 kW)"]),
        ("Curb weight (lb.)", ["3310", "3380", "3480", "3565"], None),
        ("Seating capacity", ["5", "5", "5", "5"], None),
    ]
    y = 170
    for label, values, wrapped in rows:
        page.insert_text((MARGIN, y), label, fontsize=9)
        for x, value in zip(columns, values):
            page.insert_text((x, y), value, fontsize=9)
        if wrapped:
            y += 11
            for x, value in zip(columns, wrapped):
                page.insert_text((x, y), value, fontsize=9)
        y += 18


def _map_page(doc: pymupdf.Document) -> None:
    """Numbers standing on a map, under a title: no labels on their left, no names above."""
    page = doc.new_page(width=A4[0], height=A4[1])
    page.insert_text((MARGIN, 60), "Market areas of the region", fontsize=12)
    for row, y in enumerate(range(120, 220, 20)):
        for col, x in enumerate(range(200, 520, 70)):
            page.insert_text((x + 7 * row, y), str(row * 5 + col + 1), fontsize=9)


def test_a_spec_table_without_rules_is_read_by_its_columns(tmp_path: Path, cfg: IngestSettings) -> None:
    doc = pymupdf.open()
    _spec_page(doc)
    _map_page(doc)
    path = tmp_path / "specs.pdf"
    doc.save(path)
    with pymupdf.open(path) as reopened:
        spec = read_page(reopened, 1, cfg, None)
        scattered = read_page(reopened, 2, cfg, None)
    tables = [b.text for b in spec.blocks if b.kind == "table"]
    assert len(tables) == 1, spec.blocks
    lines = tables[0].splitlines()
    assert lines[0] == "|  | LE | XLE | LE Hybrid | XLE Hybrid |", "names stacked over two lines are one column's"
    assert "| Fuel tank (gal.) | 15.8 | 15.8 | 13.2 | 13.2 |" in lines
    assert "| Power output | 203 (152 kW) | 203 (152 kW) | 118 (88 kW) | 118 (88 kW) |" in lines, \
        "a unit wrapped under its value stays in its row"
    prose = " ".join(b.text for b in spec.blocks if b.kind != "table")
    assert "five-year corrosion warranty" in prose, "the prose between names and rows is still text"
    assert not any(b.kind == "table" for b in scattered.blocks), "numbers on a map are not a table"


def test_a_table_ruled_with_stretched_images_is_a_table(tmp_path: Path, cfg: IngestSettings) -> None:
    m = ManualBuilder()
    m.table_page("Instruction summary", "The instructions of the 12-bit core.",
                 [["Syntax", "Description"], ["CLRW", "Write zero to W"], ["CLRWDT", "Reset watchdog timer"],
                  ["SLEEP", "Enter sleep mode"]], "", rule_images=True)  # no caption: no layout model
    doc = pymupdf.open(m.save(tmp_path / "image-rules.pdf"))
    assert not doc[0].get_cdrawings() and len(doc[0].get_image_info()) == 8, "rules must be images only"
    page = read_page(doc, 1, cfg, None)
    tables = [b.text for b in page.blocks if b.kind == "table"]
    assert len(tables) == 1, page.blocks
    assert "| CLRWDT | Reset watchdog timer |" in tables[0].splitlines(), "each row keeps its cells together"



def test_a_hanging_indent_entry_stays_one_paragraph(tmp_path: Path, cfg: IngestSettings) -> None:
    """An option list with hanging indents: MuPDF starts a block where the indent changes,
    which cut each entry after its first line."""
    entry = "padding-left:28pt;text-indent:-28pt;text-align:justify;font-family:serif;font-size:10pt;margin:0 0 12pt 0"
    item = "padding-left:28pt;font-family:serif;font-size:10pt;margin:0"
    html = (f'<p style="{entry}">GAIN=x sets the loop gain the controller starts from after a reset or a power '
            "failure. The default value is 4.5 (unitless). GAIN can be overridden by the tuning wizard on the front "
            "panel of the controller.</p>"
            f'<p style="{entry}">Every controller kit comes with these parts in the box, packed in one bag:</p>'
            f'<p style="{item}">Mounting bracket</p><p style="{item}">Spare fuse</p>'
            # A line of code that goes on indented is code's own layout: it keeps its line.
            '<p style="font-family:monospace;font-size:9pt;margin:12pt 0 0 0">dict(type = \'Resize\', size = (13, 8),</p>'
            '<p style="font-family:monospace;font-size:9pt;margin:0;padding-left:20pt">keep=True)]</p>')
    doc = pymupdf.open()
    doc.new_page(width=A4[0], height=A4[1]).insert_htmlbox(pymupdf.Rect(MARGIN, 80, 300, 400), html)
    blocks = [b for b in doc[0].get_text("dict")["blocks"] if b.get("lines")]
    assert "".join(s["text"] for s in blocks[0]["lines"][-1]["spans"]).startswith("GAIN=x"), \
        "MuPDF must split the entry at its indent for this test to mean anything"
    path = tmp_path / "options.pdf"
    doc.save(path)
    with pymupdf.open(path) as reopened:
        read = [b.text for b in read_page(reopened, 1, cfg, None).blocks]
    gain = next(t for t in read if t.startswith("GAIN=x"))
    assert "The default value is 4.5 (unitless)." in gain and gain.endswith("front panel of the controller."), read
    assert any(t.startswith("Every controller kit") and t.endswith("packed in one bag:") for t in read), read
    assert not any("one bag: Mounting" in t for t in read), "items under a line that ends its sentence stay apart"
    assert "keep=True)]" in read and not any("8), keep" in t for t in read), read


def test_ligatures_are_spelled_out(tmp_path: Path, cfg: IngestSettings) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=A4[0], height=A4[1])
    page.insert_htmlbox(pymupdf.Rect(MARGIN, 80, 400, 200),
                        '<p style="font-family:serif">Write the configuration to the flash file first.</p>')
    assert "\ufb01" in page.get_text(flags=pymupdf.TEXTFLAGS_TEXT), "the typesetter must join fi for this test to mean anything"
    path = tmp_path / "ligatures.pdf"
    doc.save(path)
    with pymupdf.open(path) as reopened:
        read = " ".join(b.text for b in read_page(reopened, 1, cfg, None).blocks)
        words = [w[4] for w in page_words(reopened[0])]
    assert "Write the configuration to the flash file first." in read, read
    assert "configuration" in words and "file" in words, words
