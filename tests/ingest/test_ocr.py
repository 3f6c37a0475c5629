"""Both OCR engines on real rendered images: a clean diagram and a degraded scan."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageFilter

from ingest.ocr import EasyOcrEngine, RapidOcrEngine, get_engine, lines_to_text
from manualrag.errors import OcrUnavailable
from pdfgen import label_diagram_png

LABELS = ["CONTACTOR K1", "FUSE F3", "MOTOR M1", "RESET BUTTON", "STATUS LED", "TERMINAL TB1"]


def _degrade(png: bytes) -> bytes:
    """A photocopy: downscaled, blurred, greyed."""
    with Image.open(io.BytesIO(png)) as img:
        small = img.convert("L").resize((img.width * 2 // 3, img.height * 2 // 3))
        out = io.BytesIO()
        small.filter(ImageFilter.GaussianBlur(0.8)).save(out, "PNG")
        return out.getvalue()


def _found(text: str) -> list[str]:
    flat = " ".join(text.upper().split())
    return [label for label in LABELS if label in flat]


@pytest.fixture(scope="module")
def diagram() -> bytes:
    return label_diagram_png(LABELS)


def test_rapidocr_reads_diagram_labels(diagram: bytes) -> None:
    engine = get_engine("rapidocr")
    assert isinstance(engine, RapidOcrEngine)
    lines = engine.read(diagram)
    found = _found(lines_to_text(lines))
    assert len(found) >= 5, f"expected at least 5 of {LABELS}, read {[line.text for line in lines]}"
    assert all(0.0 <= line.confidence <= 1.0 for line in lines)
    tops = [line.bbox[1] for line in lines]
    assert tops.index(min(tops)) < tops.index(max(tops)), "lines come top to bottom"


def test_rapidocr_degraded_scan(diagram: bytes) -> None:
    lines = get_engine("rapidocr").read(_degrade(diagram))
    found = _found(lines_to_text(lines))
    assert len(found) >= 4, f"degraded scan: expected 4+ labels, read {[line.text for line in lines]}"


def test_rapidocr_blank_image_reads_nothing() -> None:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(out, "PNG")
    assert get_engine("rapidocr").read(out.getvalue()) == []


def test_easyocr_offline_reads_diagram(diagram: bytes, tmp_path: Path) -> None:
    engine = EasyOcrEngine(tmp_path / "easyocr")  # weights from the offline package, no download
    lines = engine.read(diagram)
    found = _found(lines_to_text(lines))
    assert len(found) >= 4, f"expected at least 4 of {LABELS}, read {[line.text for line in lines]}"


# A schematic prints each resistor's name and value up its side.
SIDEWAYS = ["RCOLLECTOR 3.9K", "RBIAS2 24K", "REMITTER 1K"]


@pytest.fixture(scope="module")
def sideways() -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=200)
    for i, label in enumerate(SIDEWAYS):
        page.draw_line((50 + i * 80, 20), (50 + i * 80, 180))
        page.insert_text((60 + i * 80, 170), label, fontsize=11, fontname="helv", rotate=90)
    return page.get_pixmap(dpi=144).tobytes("png")


def test_rapidocr_reads_labels_turned_on_their_side(sideways: bytes) -> None:
    engine = get_engine("rapidocr")
    read = sorted(line.text for line in engine.read(sideways, turned=True))
    assert read == sorted(SIDEWAYS), read


def test_easyocr_reads_labels_turned_on_their_side(sideways: bytes, tmp_path: Path) -> None:
    engine = EasyOcrEngine(tmp_path / "easyocr")
    text = " ".join(line.text.upper() for line in engine.read(sideways, turned=True))
    found = [label for label in SIDEWAYS if label.split()[0] in text]
    assert len(found) >= 2, text


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(OcrUnavailable, match="rapidocr"):
        get_engine("tesseract")


def test_lines_to_text_groups_rows() -> None:
    from manualrag.types import OcrLine

    lines = [
        OcrLine("LEFT", (0, 10, 40, 30), 0.9),
        OcrLine("RIGHT", (100, 12, 150, 31), 0.9),
        OcrLine("BELOW", (0, 60, 50, 80), 0.9),
    ]
    assert lines_to_text(lines) == "LEFT RIGHT\nBELOW"
