"""Junk text layers decoded vs. OCR'd: how many pages decode, what it costs, and how the
decoded text agrees with OCR of the same pages.

    .venv/bin/python benchmarks/bench_font_decode.py [PDF] [--pages 13-38] [--show 2]

Every page whose text layer is junk (``text_layer_problem`` says "garbled") is read twice,
in page order: once as ingest reads it (one ``FontDecoder`` for the document: decode what
it learned, OCR single words to learn the rest), once with OCR only (no decoder). The
agreement is over lower-cased word tokens (difflib matching blocks), and over characters.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from ingest import page_ocr  # noqa: E402
from ingest.figures import find_figures, repeated_images  # noqa: E402
from ingest.font_decode import FontDecoder  # noqa: E402
from ingest.ocr import get_engine  # noqa: E402
from ingest.pdf import open_pdf, read_page, text_layer_problem  # noqa: E402
from manualrag.settings import IngestSettings  # noqa: E402


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def agreement(a: str, b: str) -> tuple[float, float]:
    """(word, character) agreement of two readings of a page, 1.0 when identical."""
    wa, wb = _words(a), _words(b)
    matched = sum(m.size for m in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_matching_blocks())
    chars = difflib.SequenceMatcher(None, " ".join(wa), " ".join(wb), autojunk=False).ratio()
    return matched / max(len(wa), len(wb), 1), chars


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pdf", nargs="?", default=str(ROOT.parent / "shared/manuals/neets_part_04.pdf"))
    ap.add_argument("--pages", default="", help="1-based range to consider, e.g. 13-38")
    ap.add_argument("--show", type=int, default=2, help="print where the readings differ on this many pages")
    args = ap.parse_args()

    settings = IngestSettings()
    doc = open_pdf(Path(args.pdf), settings)
    first, _, last = args.pages.partition("-")
    numbers = range(int(first), int(last or first) + 1) if args.pages else range(1, doc.page_count + 1)
    skip = repeated_images(doc)
    figures = {n: [f.bbox for f in find_figures(doc, n, settings, None, set(skip))[0]] for n in numbers}
    junk = [n for n in numbers if text_layer_problem(doc[n - 1], settings, figures[n]) == "garbled"]
    ocr = get_engine(settings.ocr_engine, threads=2)
    ocr.read(doc[0].get_pixmap(dpi=20).tobytes("png"))  # load the models outside the timings

    reads = [0]
    read_box = page_ocr.LineReader.read

    def counted(self: page_ocr.LineReader, box: tuple[float, float, float, float]) -> str:
        reads[0] += 1
        return read_box(self, box)

    page_ocr.LineReader.read = counted  # type: ignore[method-assign]
    decoder = FontDecoder()
    decoded, ocrd, rows, texts = 0, 0, [], {}
    decode_cpu = ocr_cpu = 0.0
    for n in junk:
        cpu = time.process_time()
        page = read_page(doc, n, settings, ocr, figures[n], decoder=decoder)
        decode_cpu += time.process_time() - cpu
        cpu = time.process_time()
        reference = read_page(doc, n, settings, ocr, figures[n])
        ocr_cpu += time.process_time() - cpu
        decoded += not page.ocr
        ocrd += page.ocr
        texts[n] = ("\n".join(b.text for b in page.blocks), "\n".join(b.text for b in reference.blocks))
        rows.append((n, *agreement(*texts[n]), page.ocr))

    print(f"pdf: {args.pdf}  junk-text-layer pages: {len(junk)} {junk}")
    print(f"decoded without page OCR: {decoded}; still OCR'd (a character not learned): {ocrd} "
          f"{[n for n, *_, o in rows if o]}")
    print(f"words read by OCR to learn the fonts: {reads[0]}")
    print(f"CPU seconds, these pages: {decode_cpu:.1f} decoding (learning included) vs {ocr_cpu:.1f} OCR")
    if rows:
        words = sum(r[1] for r in rows) / len(rows)
        chars = sum(r[2] for r in rows) / len(rows)
        print(f"agreement with OCR of the same pages (page mean): words {words:.4f}, characters {chars:.4f}")
        lowest = sorted(rows, key=lambda r: r[1])[:5]
        print("lowest: " + ", ".join(f"p{n} {w:.3f}/{c:.3f}" for n, w, c, _ in lowest))
        for n, *_ in lowest[: args.show]:
            mine, ocrs = (t.split() for t in texts[n])
            for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, mine, ocrs, autojunk=False).get_opcodes():
                if op != "equal":
                    print(f"  p{n} decoded {' '.join(mine[a0:a1])!r:40.40} OCR {' '.join(ocrs[b0:b1])!r:.40}")
    for font in sorted(decoder.fonts()):
        print(f"font {font}: {len(decoder.known(font))} characters learned")


if __name__ == "__main__":
    main()
