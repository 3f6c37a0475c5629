"""Read every page of a manual with OCR, chunk it, and print what it cost.

    python benchmarks/bench_pages.py /path/to/manual.pdf [--pages 1-40] [--dump out.json]

Prints pages flagged (junk text layer / scanned), pages OCR'd, seconds in read_page and
in OCR, table count, chunk count and word distribution. ``--dump`` writes the pages and
chunks as JSON (benchmarks/out/ is git-ignored) to inspect or to re-chunk without OCR.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.chunking import chunk_pages
from ingest.ocr import OcrEngine, get_engine
from ingest.pdf import open_pdf, read_page, text_layer_problem
from manualrag.settings import IngestSettings
from manualrag.types import OcrLine


class TimedOcr(OcrEngine):
    """Counts calls and seconds spent in the wrapped engine."""

    def __init__(self, inner: OcrEngine) -> None:
        self.inner, self.name, self.calls, self.seconds = inner, inner.name, 0, 0.0

    def read(self, png: bytes) -> list[OcrLine]:
        start = time.perf_counter()
        try:
            return self.inner.read(png)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - start


def _range(spec: str, count: int) -> list[int]:
    if not spec:
        return list(range(1, count + 1))
    first, _, last = spec.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--pages", default="", help="1-based range, e.g. 10-40")
    parser.add_argument("--dump", type=Path, help="write pages and chunks as JSON here")
    parser.add_argument("--no-ocr", action="store_true")
    args = parser.parse_args()

    settings = IngestSettings()
    doc = open_pdf(args.pdf, settings)
    numbers = _range(args.pages, doc.page_count)

    start = time.perf_counter()
    flagged = {n: p for n in numbers if (p := text_layer_problem(doc.load_page(n - 1), settings))}
    detect_s = time.perf_counter() - start

    load = time.perf_counter()
    ocr = None if args.no_ocr else TimedOcr(get_engine(settings.ocr_engine))
    load_s = time.perf_counter() - load
    start = time.perf_counter()
    pages = [read_page(doc, n, settings, ocr) for n in numbers]
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    chunks = chunk_pages(pages, settings.chunk_words)
    chunk_s = time.perf_counter() - start

    words = [len(c.text.split()) for c in chunks if c.kind == "text"]
    tables = [c for c in chunks if c.kind == "table"]
    print(f"pages: {len(numbers)}   load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"flagged: {len(flagged)} ({sum(v == 'garbled' for v in flagged.values())} junk text layer, "
        f"{sum(v == 'scanned' for v in flagged.values())} scanned) in {detect_s:.1f} s: {sorted(flagged)}"
    )
    print(
        f"read_page: {read_s:.1f} s total, {read_s / len(numbers):.2f} s/page; OCR engine load {load_s:.1f} s"
    )
    if ocr:
        print(
            f"OCR: {sum(p.ocr for p in pages)} pages, {ocr.calls} calls, {ocr.seconds:.1f} s "
            f"({ocr.seconds / max(ocr.calls, 1):.2f} s/call); non-OCR time {read_s - ocr.seconds:.1f} s"
        )
    print(f"warnings: {sum(len(p.warnings) for p in pages)}  {[w for p in pages for w in p.warnings][:5]}")
    print(
        f"chunks: {len(chunks)} ({len(tables)} tables, {sum(c.ocr for c in chunks)} with OCR text) "
        f"in {chunk_s:.2f} s"
    )
    if words:
        q = statistics.quantiles(words, n=10)
        print(
            f"text chunk words: min {min(words)}, p10 {q[0]:.0f}, median {statistics.median(words):.0f}, "
            f"p90 {q[-1]:.0f}, max {max(words)}; over {settings.chunk_words}: "
            f"{sum(w > settings.chunk_words for w in words)}"
        )
    if args.dump:
        args.dump.parent.mkdir(parents=True, exist_ok=True)
        args.dump.write_text(
            json.dumps({"pages": [asdict(p) for p in pages], "chunks": [asdict(c) for c in chunks]}, indent=1)
        )
        print(f"wrote {args.dump}")


if __name__ == "__main__":
    main()
