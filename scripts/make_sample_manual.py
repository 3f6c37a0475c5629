"""Writes data/sample/p200-pump-controller.pdf, the bundled sample manual.

It is the same manual the tests build (tests/pdfgen.py): safety text, a vector wiring
diagram, a fuse table, a raster front-panel figure, a procedure, a scanned page and
a page whose text layer is font-encoding junk, so a first run shows every path.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pdfgen import sample_manual  # noqa: E402

if __name__ == "__main__":
    out = sample_manual(ROOT / "data" / "sample" / "p200-pump-controller.pdf")
    print(out)
