"""Figure extraction on real PDFs built by tests/pdfgen.py, read by the real RapidOCR."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest
from pdfgen import A4, PUMP_INTRO, ManualBuilder, label_diagram_png
from PIL import Image

from ingest.figure_text import captions, looks_like_words, text_blocks
from ingest.figures import _is_prose, _rows, find_figures, repeated_images
from ingest.layout import load as load_layout
from ingest.ocr import OcrEngine, get_engine
from manualrag.settings import IngestSettings, Settings
from manualrag.types import Figure, OcrLine

ROOT = Path(__file__).resolve().parents[2]
WIRING = ["MAIN BREAKER", "CONTACTOR K1", "OVERLOAD RELAY", "MOTOR M1", "FUSE F3 20 AMP", "TERMINAL TB1"]
PANEL = ["DISPLAY", "RESET BUTTON", "STATUS LED", "FAULT CODE"]


@pytest.fixture(scope="module")
def ocr() -> OcrEngine:
    return get_engine("rapidocr")


@pytest.fixture
def cfg(settings: Settings) -> IngestSettings:
    """The ingest group of the shared ``settings`` fixture (tests/conftest.py)."""
    return settings.ingest


def build(tmp_path: Path, make) -> pymupdf.Document:  # type: ignore[no-untyped-def]
    m = ManualBuilder()
    make(m)
    return pymupdf.open(m.save(tmp_path / "manual.pdf"))


def figures_of(doc: pymupdf.Document, number: int, cfg: IngestSettings, ocr: OcrEngine | None,
               skip: set[int] | None = None) -> list[Figure]:
    figures, warnings = find_figures(doc, number, cfg, ocr, skip or set())
    assert warnings == [], f"page {number}: expected no warnings, got {warnings}"
    return figures


def describe(figures: list[Figure]) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(f.label, f.source, tuple(round(v) for v in f.bbox)) for f in figures]


def png_size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as img:
        return img.size


def test_vector_diagram_found_with_its_own_text_and_caption(tmp_path: Path, cfg: IngestSettings) -> None:
    doc = build(tmp_path, lambda m: m.vector_figure_page("Chapter 2 Wiring", PUMP_INTRO, WIRING,
                                                         "Figure 2-1. Controller wiring diagram."))
    figures = figures_of(doc, 1, cfg, None)  # vector labels are text: no OCR needed
    assert len(figures) == 1, f"expected one vector figure, got {describe(figures)}"
    fig = figures[0]
    assert (fig.page, fig.index, fig.source, fig.label) == (1, 1, "vector", "Figure 2-1"), describe(figures)
    assert fig.caption == "Figure 2-1. Controller wiring diagram.", f"caption as printed, got {fig.caption!r}"
    missing = [label for label in WIRING if label not in " ".join(fig.ocr_text.split())]
    assert not missing, f"labels {missing} missing from the figure text {fig.ocr_text!r}"
    assert "Controller wiring" not in fig.ocr_text, f"the caption is not a label: {fig.ocr_text!r}"
    assert "wiring layout is shown in figure 2-1" in fig.nearby_text, f"got nearby {fig.nearby_text!r}"
    width, height = png_size(fig.png)
    x0, y0, x1, y1 = fig.bbox
    assert abs(width - (x1 - x0) * cfg.figure_dpi / 72) < 0.05 * width, f"crop {width}px for {fig.bbox}"
    assert 150 < y1 - y0 < 200 and height > 400, f"crop should frame the diagram: bbox {fig.bbox}, {height}px"


def test_page_border_does_not_swallow_the_diagram(tmp_path: Path, cfg: IngestSettings) -> None:
    doc = build(tmp_path, lambda m: m.vector_figure_page("Wiring", PUMP_INTRO, WIRING[:3],
                                                         "Figure 2-1. Controller wiring diagram.",
                                                         page_border=True))
    figures = figures_of(doc, 1, cfg, None)
    assert [f.label for f in figures] == ["Figure 2-1"], f"expected only the diagram, got {describe(figures)}"
    _, y0, _, y1 = figures[0].bbox
    assert y1 - y0 < 200, f"the box should be the diagram, not the page border: {figures[0].bbox}"


def test_raster_diagram_found_with_ocr_labels_and_caption(tmp_path: Path, cfg: IngestSettings,
                                                          ocr: OcrEngine) -> None:
    doc = build(tmp_path, lambda m: m.raster_figure_page(
        "Chapter 3", "Fault codes appear on the display panel shown in figure 3-1. Reset after cooling.",
        PANEL, "Figure 3-1. Front panel."))
    figures = figures_of(doc, 1, cfg, ocr)
    assert describe(figures)[0][:2] == ("Figure 3-1", "raster") and len(figures) == 1, describe(figures)
    fig = figures[0]
    assert fig.caption == "Figure 3-1. Front panel.", fig.caption
    words = set(fig.ocr_text.upper().split())
    missing = {"DISPLAY", "RESET", "BUTTON", "STATUS", "LED", "FAULT", "CODE"} - words
    assert not missing, f"OCR missed {missing}; read {fig.ocr_text!r}"
    assert "display panel shown in figure 3-1" in fig.nearby_text, f"got nearby {fig.nearby_text!r}"
    assert png_size(fig.png)[0] > 1000, "the stored crop is at figure_dpi (483 pt at 200 dpi)"


def test_parts_side_by_side_share_their_caption(tmp_path: Path, cfg: IngestSettings) -> None:
    def make(m: ManualBuilder) -> None:
        m.image_row_page([["TERMINAL A"], ["TERMINAL B"]], "Figure 4-2. Terminal strip, A and B.")
        m.image_row_page([["LEFT HALF"], ["RIGHT HALF"]], "Figure 4-3. Tiled diagram.", gap=0)

    doc = build(tmp_path, make)
    for number, label in [(1, "Figure 4-2"), (2, "Figure 4-3")]:
        figures = figures_of(doc, number, cfg, None)
        assert [f.label for f in figures] == [label], f"page {number}: one figure, got {describe(figures)}"
        x0, _, x1, _ = figures[0].bbox
        assert x0 < 80 and x1 > 510, f"page {number}: the figure should span both parts: {figures[0].bbox}"


def test_figures_in_reading_order_with_their_own_captions(tmp_path: Path, cfg: IngestSettings) -> None:
    def make(m: ManualBuilder) -> None:
        w = m.raster_figure_page("Two figures", "The pump is shown in figure 5-1.", ["PUMP"],
                                 "Figure 5-1. Pump.")
        w.page.insert_image(pymupdf.Rect(56, w.y + 20, 539, w.y + 220),
                            stream=label_diagram_png(["VALVE"]))
        w.page.insert_text((56, w.y + 238), "Figure 5-2. Valve.", fontsize=9.5, fontname="hebo")

    doc = build(tmp_path, make)
    figures = figures_of(doc, 1, cfg, None)
    got = [(f.index, f.label, f.caption) for f in figures]
    assert got == [(1, "Figure 5-1", "Figure 5-1. Pump."), (2, "Figure 5-2", "Figure 5-2. Valve.")], got


def test_decoration_is_not_a_figure(tmp_path: Path, cfg: IngestSettings) -> None:
    def make(m: ManualBuilder) -> None:
        m.decorated_page("Safety", ["Disconnect power before opening the cabinet. " * 4],
                         "NOTE: capacitors hold a charge for five minutes after the supply is removed. " * 6)
        for n in range(3):
            m.text_page(f"Section {n}", ["Routine maintenance keeps the pump running."])
        m.stamp_logo()

    doc = build(tmp_path, make)
    logos = repeated_images(doc)
    logo_xrefs = {img[0] for img in doc[1].get_images(full=True)}
    assert logos == logo_xrefs, f"the letterhead on every page is decoration: {logo_xrefs}, got {logos}"
    for number in range(1, doc.page_count + 1):
        figures = figures_of(doc, number, cfg, None, logos)
        assert figures == [], f"page {number}: border, rule, icon, note box, logo: {describe(figures)}"
    # Without the repeat rule the 210 pt letterhead would pass for an uncaptioned figure:
    assert figures_of(doc, 2, cfg, None, set()) != [], "the logo test must be able to fail"


def test_small_uncaptioned_image_dropped_big_one_kept(tmp_path: Path, cfg: IngestSettings) -> None:
    def make(m: ManualBuilder) -> None:
        m.image_page(["SEAL"], (400, 80, 500, 160), "A cover with a seal and no figure.")
        m.image_page(["PUMP", "MOTOR", "VALVE"], (56, 200, 539, 420),
                     "Plenty of text around this picture. " * 5)
        m.vector_figure_page("Wiring", "An uncaptioned drawing: one row of boxes in a frame.", WIRING[:3], "")

    doc = build(tmp_path, make)
    assert figures_of(doc, 1, cfg, None) == [], "a 100 pt uncaptioned image is a seal or logo"
    for number, source in [(2, "raster"), (3, "vector")]:
        kept = figures_of(doc, number, cfg, None)
        assert [(f.label, f.source) for f in kept] == [("", source)], f"a big diagram stays: {describe(kept)}"


def test_table_grid_is_not_a_figure(tmp_path: Path, cfg: IngestSettings) -> None:
    doc = build(tmp_path, lambda m: m.table_page(
        "Fuse ratings", "Replace fuses only with the ratings given below.",
        [["Fuse", "Circuit", "Rating"], ["F1", "Control transformer", "2 AMP"], ["F2", "Lamps", "1 AMP"],
         ["F3", "Contactor coil", "20 AMP"]], "Table 2-1. Fuse ratings."))
    assert doc[0].cluster_drawings(), "the page must have line-art for this test to mean anything"
    figures = figures_of(doc, 1, cfg, None)
    assert figures == [], f"a table is chunked as text, not returned as a figure: {describe(figures)}"


def test_scanned_text_pages_are_left_to_page_ocr(tmp_path: Path, cfg: IngestSettings,
                                                  ocr: OcrEngine) -> None:
    lines = ["Appendix A Maintenance schedule", "Inspect the impeller every 500 operating hours.",
             "Grease the motor bearings every 2000 hours with lithium grease."]

    def make(m: ManualBuilder) -> None:
        m.scanned_page(lines)
        m.junk_layer_page(lines)

    doc = build(tmp_path, make)
    for layout in (None, load_layout()):
        for number in (1, 2):
            figures, warnings = find_figures(doc, number, cfg, ocr, set(), layout=layout)
            assert figures == [] and warnings == [], (
                f"page {number} is a scan of text, not a figure ({layout=}): {describe(figures)}"
            )


def test_a_figure_inside_a_scanned_page_is_cropped_and_read(tmp_path: Path, cfg: IngestSettings,
                                                            ocr: OcrEngine) -> None:
    def make(m: ManualBuilder) -> None:
        for n in (1, 2, 3):
            m.scanned_figure_page("2 Wiring", [PUMP_INTRO, "Tighten every terminal before restoring power. " * 3],
                                  WIRING, f"Figure 2-{n}.—Pump controller wiring.")

    doc = build(tmp_path, make)
    skip = repeated_images(doc)
    assert skip == set(), "three scans drawn at the same place are pages, not a repeated letterhead"
    assert figures_of(doc, 1, cfg, ocr, skip) == [], "without a layout model the scan is left to page OCR"
    figures, warnings = find_figures(doc, 2, cfg, ocr, skip, layout=load_layout())
    assert warnings == [] and len(figures) == 1, describe(figures)
    (fig,) = figures
    x0, y0, x1, y1 = fig.bbox
    assert (y1 - y0) < 0.4 * A4[1], f"the diagram, not the whole page: {fig.bbox}"
    for label in ("MAIN BREAKER", "OVERLOAD RELAY", "FUSE F3 20 AMP"):
        assert label in fig.ocr_text, f"{label!r} not read inside the crop: {fig.ocr_text!r}"
    assert "isolate the supply" not in fig.ocr_text, "the paragraph above is the page's text, not a label"


def test_page_without_figures(tmp_path: Path, cfg: IngestSettings, ocr: OcrEngine) -> None:
    doc = build(tmp_path, lambda m: m.text_page("Chapter 1", ["Only words here. " * 30], subheading="1.1"))
    assert find_figures(doc, 1, cfg, ocr, set()) == ([], []), "a text page: no figures, no warnings"


def test_bomb_image_skipped_with_warning_without_decoding(tmp_path: Path) -> None:
    m = ManualBuilder()
    m.bomb_page((12000, 12000), "Figure 5-1. Pump.")  # 144 M pixels: ~430 MB if decoded
    pdf = m.save(tmp_path / "bomb.pdf")
    # A fresh process, so the peak RSS it reports is this page's alone.
    script = f"""
import json, pymupdf
def peak_kb():  # this process's own peak: ru_maxrss also counts the parent it was forked from
    return int(next(ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')))
from ingest.figures import find_figures, repeated_images
from manualrag.settings import IngestSettings
doc = pymupdf.open({str(pdf)!r})
base = peak_kb()
skip = repeated_images(doc)
figures, warnings = find_figures(doc, 1, IngestSettings(), None, skip)
grown = (peak_kb() - base) / 1024
print(json.dumps({{"labels": [f.label for f in figures], "warnings": warnings, "grown_mb": grown}}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORT_DISABLE_TELEMETRY": "1"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=60, check=False)
    assert run.returncode == 0, f"the bomb page crashed the process: {run.stderr[-2000:]}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["labels"] == ["Figure 5-1"], f"the good figure on the page survives: {result}"
    assert any("12000x12000" in w and "max_image_pixels" in w for w in result["warnings"]), result["warnings"]
    assert result["grown_mb"] < 150, f"the bomb was decoded: RSS grew {result['grown_mb']:.0f} MB"


# -- pure logic -------------------------------------------------------------------------------


def _line(text: str, x0: float, y0: float, h: float = 18) -> OcrLine:
    return OcrLine(text, (x0, y0, x0 + 10 * len(text), y0 + h), 0.99)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # A label and its value on one row stay together, though OCR boxes differ by a few px.
        ([_line("3 AMP", 1380, 125), _line("15 AMP", 1380, 139), _line("CONDENSER FAN MOTOR", 1149, 141)],
         "3 AMP\nCONDENSER FAN MOTOR 15 AMP"),
        ([_line("B", 24, 10), _line("A", 10, 12), _line("C", 10, 60)], "A B\nC"),
        # A wide gap is a column break (symbol charts, legend tables).
        ([_line("RESERVOIR", 10, 10), _line("ACCUMULATOR", 400, 12)], "RESERVOIR | ACCUMULATOR"),
        ([], ""),
    ],
)
def test_ocr_rows(lines: list[OcrLine], expected: str) -> None:
    assert _rows(lines) == expected


@pytest.mark.parametrize(
    ("texts", "prose"),
    [
        (["Inspect the impeller every 500 operating hours.", "Grease the motor bearings every 2000 hours.",
          "Drain the casing before storage."], True),
        (["RESERVOIR", "CHECK VALVE", "PILOT OPERATED CHECK", "SOLENOID SPRING RETURN"], False),
        (["Two long lines of text are not yet a page.", "Another line of prose here."], False),
    ],
)
def test_prose_or_labels(texts: list[str], prose: bool) -> None:
    assert _is_prose([_line(t, 0, 30 * i) for i, t in enumerate(texts)]) is prose


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("The wiring layout is shown in figure 2-1.", True),
        ("uìÜ• î§ •ìê ë£îé•î†ü è£†° îü =2666 ëêê• †ë è¶é•", False),  # a junk font's text layer
        ("", False),
    ],
)
def test_looks_like_words(text: str, words: bool) -> None:
    assert looks_like_words(text) is words


@pytest.mark.parametrize(
    ("printed", "label"),
    [
        ("Figure 4-12.—Refrigerant piping diagram.", "Figure 4-12"),
        ("Figure 1B", "Figure 1B"),
        (("Figure 2-6 shows how a branch line is joined to a larger header by reducing the tee "
          "so that the joint does not restrict the flow."), None),  # a body sentence, not a caption
    ],
)
def test_caption_lines(tmp_path: Path, printed: str, label: str | None) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(56, 56, 540, 200), printed, fontsize=10)
    found = [c.label for c in captions(text_blocks(page))]
    assert found == ([label] if label else []), f"{printed!r}: expected {label}, got {found}"
