"""Junk text layers decoded from what OCR read of a few words: the decoder's logic, and real
PDFs whose font has a broken ToUnicode map, read with real OCR."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest
from pdfgen import ManualBuilder, broken

from ingest.font_decode import MAX_TRIES, FontDecoder, phrases
from ingest.ocr import OcrEngine, get_engine
from ingest.pdf import read_page
from manualrag.settings import IngestSettings
from manualrag.types import OcrLine

FONT = "Junk"


def glyphs(text: str, font: str = FONT) -> list[tuple[str, str]]:
    return [(char, font) for char in text]


def taught(*truths: str) -> FontDecoder:
    decoder = FontDecoder()
    for truth in truths:
        decoder.learn(glyphs(broken(truth)), truth, {FONT})
    return decoder


# ------------------------------------------------------------------------ the decoder itself


def test_learned_substitution_decodes_new_text() -> None:
    decoder = taught("The pump starts when the float rises.", "Check the fuse rating.")
    assert decoder.decode(FONT, broken("the pump rating")) == "the pump rating"
    assert decoder.decode(FONT, broken("The float")) == "The float"
    assert decoder.fonts() == {FONT}


def test_a_character_never_read_is_unknown() -> None:
    decoder = taught("the pump starts")
    assert decoder.decode(FONT, broken("the pump starts up")) == "the pump starts up", "every letter was read"
    assert decoder.decode(FONT, broken("the valve")) is None, "v, a, l were never read: not decodable"
    assert decoder.decode("Other", broken("the pump")) is None, "nothing was learned for another font"


@pytest.mark.parametrize(
    ("reading", "learned", "unknown"),
    [
        ("the pump starts when the float rises", "thepumsarwnflio", ""),
        # OCR split "pump" and ran "when the" together: the other words still pair
        ("the pu mp starts whenthe float rises", "thesarflio", "pumwn"),
        # OCR missed "starts": the rest pairs along the runs of equal word lengths
        ("the pump when the float rises", "thepumwnflosari", ""),
        # nothing in common but the word count: no pair is trusted
        ("a b c d e f g", "", "thepumsarwnflio"),
    ],
)
def test_words_pair_by_length_around_ocr_slips(reading: str, learned: str, unknown: str) -> None:
    decoder = FontDecoder()
    decoder.learn(glyphs(broken("the pump starts when the float rises")), reading, {FONT})
    for char in learned:
        assert decoder.decode(FONT, broken(char)) == char, f"{char!r} should decode after {reading!r}"
    for char in unknown:
        assert decoder.decode(FONT, broken(char)) is None, f"{char!r} was never paired in {reading!r}"


def test_a_misreading_is_outvoted() -> None:
    decoder = FontDecoder()
    for _ in range(9):
        decoder.learn(glyphs(broken("the float rises")), "the float rises", {FONT})
    decoder.learn(glyphs(broken("the float rises")), "the float rlses", {FONT})
    assert decoder.decode(FONT, broken("rises")) == "rises", "9 readings of i against 1 of l"


def test_disagreeing_readings_leave_a_character_unknown_and_wanted() -> None:
    decoder = FontDecoder()
    decoder.learn(glyphs("x"), "a", {FONT})
    decoder.learn(glyphs("x"), "o", {FONT})
    assert decoder.decode(FONT, "x") is None, "read once as a, once as o: neither may be used"
    assert decoder.wants(glyphs("xx"), {FONT}) == {("x", FONT)}
    for _ in range(MAX_TRIES):
        decoder.learn(glyphs("x"), "e", {FONT})
    assert decoder.wants(glyphs("x"), {FONT}) == set(), "after MAX_TRIES readings a line is not read again"


def test_one_reading_decodes_but_a_second_is_wanted_to_be_sure() -> None:
    decoder = taught("pump")
    assert decoder.decode(FONT, broken("pump")) == "pump"
    wanted = decoder.wants(glyphs(broken("pump")), {FONT})
    assert wanted == {(broken("u"), FONT), (broken("m"), FONT)}, f"p was read twice, u and m once: {wanted}"


def test_only_junk_fonts_learn() -> None:
    decoder = FontDecoder()
    line = [(c, "Bold") for c in "Note: "] + glyphs(broken("the pump"))
    assert decoder.learn(line, "Note: the pump", {FONT}) == len("thepump")
    assert decoder.fonts() == {FONT}


def test_a_font_ocr_reads_as_printed_is_not_junk() -> None:
    # Identifiers in a code font look like junk words, but OCR reads them as the text layer
    # gives them; so does a math italic letter, as its plain form.
    decoder = taught("The pump starts when the float rises.")
    code = "img_norm_cfg mmdet.ops CrossEntropyLoss"
    decoder.learn(glyphs(code, "Mono"), code, {"Mono"})
    decoder.learn(glyphs("𝑥𝑦𝑧𝑎𝑏𝑐𝑑𝑒𝑓𝑔", "Math"), "xyzabcdefg", {"Math"})
    assert decoder.readable("Mono") and decoder.readable("Math") and not decoder.readable(FONT)
    assert decoder.fonts() == {FONT}, "only the junk font is carried to later pages"
    few = FontDecoder()
    few.learn(glyphs("cfg", "Mono"), "cfg", {"Mono"})
    assert not few.readable("Mono"), "three characters read as printed prove nothing yet"


def test_a_line_whose_space_is_junk_too_pairs_character_by_character() -> None:
    decoder = FontDecoder()
    junk_line = broken("the pump").replace(" ", "\x03")  # the space glyph extracts as a control code
    decoder.learn(glyphs(junk_line), "the pump", {FONT})
    assert decoder.decode(FONT, junk_line) == "the pump"


def test_short_words_are_read_with_their_neighbours() -> None:
    def word(text: str, x: float) -> tuple[tuple[float, float, float, float], list[tuple[str, str]]]:
        return ((x, 10.0, x + 6 * len(text), 20.0), glyphs(text))

    line = [word("copper", 0), word("+", 40), word("tin", 50), word("alloy", 70)]
    read = phrases(line)
    assert read[0] == line[0] and read[2] == line[2], "words of 3 letters or more are read alone"
    box, joined = read[1]
    assert "".join(c for c, _ in joined) == "copper + tin", f"'+' is read with its neighbours: {joined}"
    assert box == (0, 10.0, 68, 20.0), f"the box spans the three words: {box}"


# ------------------------------------------------------------------- real PDFs, real OCR

PARAGRAPHS = [
    "The friction loss of steel pipe is 14.26 feet of head for each hundred feet of pipe at full flow.",
    "Plastic pipe has about 25 percent less friction than steel pipe, and it weighs far less.",
    "Flexible hose is used where the line must move often, as on portable pumps.",
]
LATER = [
    "A length of steel pipe weighs more than a length of plastic pipe of the same bore.",
    "Portable pumps use flexible hose because the line moves often.",
]


class CountingOcr(OcrEngine):
    """The real engine, counting whole-image reads and reads of single words or lines."""

    def __init__(self, inner: OcrEngine) -> None:
        self.inner, self.name, self.reads, self.lines = inner, inner.name, 0, 0

    def read(self, png: bytes, turned: bool = False) -> list[OcrLine]:
        self.reads += 1
        return self.inner.read(png, turned)

    def read_line(self, png: bytes) -> str:
        self.lines += 1
        return self.inner.read_line(png)


@pytest.fixture(scope="module")
def broken_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    m = ManualBuilder()
    m.broken_font_page("Chapter 1 Piping", PARAGRAPHS)
    m.broken_font_page("Weight", LATER)
    m.broken_font_page("Summary", PARAGRAPHS + LATER)
    m.table_page(
        "Friction",
        "The values below are for a hundred feet of run at 5 feet per second.",
        [["Pipe", "Feet"], ["Steel", "14.26"], ["Plastic", "10.53"]],
        "Table 1-1. Friction loss.",
        fontname="tiro",
    )
    m.broken_font_page("Review", PARAGRAPHS + LATER)
    return m.save(tmp_path_factory.mktemp("broken") / "broken-font.pdf")


@pytest.fixture
def counting_ocr() -> CountingOcr:
    return CountingOcr(get_engine("rapidocr"))


def text_of(page) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(b.text for b in page.blocks)


def test_broken_font_pages_are_decoded_from_a_few_ocr_words(
    broken_pdf: Path, counting_ocr: CountingOcr
) -> None:
    doc = pymupdf.open(broken_pdf)
    assert broken("steel") in doc[0].get_text(), "the test PDF must extract as junk"
    settings, decoder = IngestSettings(), FontDecoder()

    first = read_page(doc, 1, settings, counting_ocr, decoder=decoder)
    assert counting_ocr.reads == 0, "no page OCR: single words were read to learn the font"
    words = sum(len(p.split()) for p in PARAGRAPHS)
    assert 1 <= counting_ocr.lines <= words / 2, f"read {counting_ocr.lines} of {words} words to learn"
    assert not first.ocr and not any(b.ocr for b in first.blocks), "the text is the decoded text layer"
    text = text_of(first)
    for paragraph in PARAGRAPHS:
        assert paragraph in text, f"decoded text should be exact: {paragraph!r} not in {text!r}"

    for number, paragraphs in [(2, LATER), (3, PARAGRAPHS + LATER)]:
        text = text_of(read_page(doc, number, settings, counting_ocr, decoder=decoder))
        assert all(p in text for p in paragraphs), f"page {number} decoded with what was learned: {text!r}"
    assert counting_ocr.reads == 0, "no page was OCR'd"
    lines_read = counting_ocr.lines
    review = read_page(doc, 5, settings, counting_ocr, decoder=decoder)
    assert all(p in text_of(review) for p in PARAGRAPHS + LATER), text_of(review)
    assert counting_ocr.lines == lines_read, "page 5 repeats page 3, all of whose characters were read twice"

    table = read_page(doc, 4, settings, counting_ocr, decoder=decoder)
    (markdown,) = [b.text for b in table.blocks if b.kind == "table"]
    assert "| Steel | 14.26 |" in markdown and "| Plastic | 10.53 |" in markdown, markdown
    assert counting_ocr.reads == 0, "the table's cells come from decoded words, not OCR"


def test_a_later_page_in_a_code_font_costs_no_ocr(tmp_path: Path, counting_ocr: CountingOcr) -> None:
    # The first page's identifiers look like junk, so a few words are read to learn the
    # font: OCR reads them as printed. The font is not junk: a later page in it is read
    # from its text layer without reading a word, whichever worker reads it.
    m = ManualBuilder()
    w = m.new_page()
    w.paragraph("The head is configured with the following options, set in the model's config file.")
    w.paragraph("img_norm_cfg mmdet.ops GFLHead CrossEntropyLoss multiclass_nms bbox_coder", fontname="cour")
    w = m.new_page()
    w.paragraph("Build the detector from its registry and run it on the image batch.")
    w.paragraph("vx_kj = qz.zip(WQ7) if yv else jq_vk", fontname="cour")
    doc = pymupdf.open(m.save(tmp_path / "code.pdf"))
    settings, decoder = IngestSettings(), FontDecoder()
    read_page(doc, 1, settings, counting_ocr, decoder=decoder)
    assert counting_ocr.lines > 0 and decoder.readable("Courier"), "the code font was read to learn it"
    before = counting_ocr.lines, counting_ocr.reads
    second = read_page(doc, 2, settings, counting_ocr, decoder=decoder)
    assert (counting_ocr.lines, counting_ocr.reads) == before, "nothing on page 2 was OCR'd"
    assert "vx_kj = qz.zip(WQ7) if yv else jq_vk" in text_of(second), text_of(second)


def test_without_a_decoder_the_broken_font_is_ocrd(broken_pdf: Path) -> None:
    page = read_page(pymupdf.open(broken_pdf), 2, IngestSettings(), get_engine("rapidocr"))
    assert page.ocr, "no decoder: the junk text layer goes to OCR as before"
    assert "flexible hose" in text_of(page), text_of(page)


def test_decoded_table_words_keep_their_places(broken_pdf: Path) -> None:
    decoder = taught("Pipe Feet Steel 14.26 Plastic 10.53 Table")
    page = pymupdf.open(broken_pdf)[3]
    words = decoder.words(page, tuple(page.rect), {"Times-Roman"})  # type: ignore[arg-type]
    assert words is None, "the decoder learned font Junk, not Times-Roman: nothing decodes"
    decoder = FontDecoder()
    decoder.learn(glyphs(broken("Pipe Feet Steel 14.26 Plastic 10.53"), "Times-Roman"),
                  "Pipe Feet Steel 14.26 Plastic 10.53", {"Times-Roman"})
    words = decoder.words(page, tuple(page.rect), {"Times-Roman"})  # type: ignore[arg-type]
    assert words is not None
    found = {w[4]: w[:4] for w in words}
    assert {"Steel", "14.26", "Plastic", "10.53", "Friction"} <= set(found), sorted(found)
    steel, value = found["Steel"], found["14.26"]
    assert abs(steel[1] - value[1]) < 2 and steel[2] < value[0], "same row, value right of its pipe"


def test_ingest_decodes_a_broken_font_manual(engine, broken_pdf: Path) -> None:  # type: ignore[no-untyped-def]
    (report,) = engine.ingest([broken_pdf])
    assert report.status == "ingested" and report.pages == 5, report
    assert report.ocr_pages == 0, "every junk page decoded: none needed page OCR"
    (info,) = engine.manuals()
    texts = "\n".join(r.text for r in engine.store.library.records_of(info.ingest_id))
    for sentence in [*PARAGRAPHS, *LATER]:
        assert sentence in texts, f"decoded text should reach the index verbatim: {sentence!r}"
    assert "| Plastic | 10.53 |" in texts, "the broken-font table is decoded into cells"
    hits = engine.search("Which pipe has a friction loss of 10.53?", k=3).hits
    assert hits and (hits[0].page, hits[0].kind) == (4, "table"), [(h.page, h.kind) for h in hits]


def test_worker_processes_each_decode_their_pages(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ingest.pipeline import POOL_MIN_PAGES

    m = ManualBuilder()
    for n in range(POOL_MIN_PAGES):
        m.broken_font_page(f"Section {n + 1}", PARAGRAPHS if n % 2 else LATER)
    pdf = m.save(tmp_path / "broken-long.pdf")
    engine.settings.ingest.workers = 2  # a process pool: each worker learns the font itself
    (report,) = engine.ingest([pdf])
    assert report.status == "ingested" and report.ocr_pages == 0, report
    (info,) = engine.manuals()
    texts = "\n".join(r.text for r in engine.store.library.records_of(info.ingest_id))
    assert all(sentence in texts for sentence in PARAGRAPHS + LATER), texts[:500]
