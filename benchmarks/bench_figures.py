"""Figure extraction on a real manual: captions found, OCR coverage, time, memory.

    python benchmarks/bench_figures.py [PDF] [--no-ocr] [--pages 100-110] [--dump DIR]
        [--gold ../shared/eval/neets_dev.json]

The reference is the text layer: every line that ``parse_caption()`` reads as a Figure
and that is printed as a caption (label then punctuation, or the label alone). A figure
counts as found when ``find_figures`` returns it on that page with that label.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import pymupdf

from ingest.figures import find_figures, repeated_images
from ingest.labels import parse_caption
from ingest.ocr import get_engine
from manualrag.settings import IngestSettings

# As NEETS prints captions: "Figure 3-11.—Wiring diagram.", "Figure 1B". Not "figure 2-25)."
# inside a sentence, nor "REFER TO FIGURE 1A." in the assignment questions.
_PRINTED = re.compile(r"^\s*(?:Figure|Fig\.)\s+[A-Z]?\d+(?:-\d+)?[A-Z]?(?:\s*[.:—–]|\s*$)")


def reference_captions(doc: pymupdf.Document, pages: list[int]) -> tuple[int, set[tuple[int, str]]]:
    """(lines parse_caption accepts as Figures, the (page, label) of printed captions)."""
    raw, printed = 0, set()
    for number in pages:
        for line in doc[number - 1].get_text("text").splitlines():
            parsed = parse_caption(line)
            if parsed and parsed[0].startswith("Figure"):
                raw += 1
                if _PRINTED.match(line):
                    printed.add((number, parsed[0]))
    return raw, printed


def page_range(spec: str, count: int) -> list[int]:
    if not spec:
        return list(range(1, count + 1))
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pdf", nargs="?", default=str(ROOT / "../shared/manuals/neets_part_04.pdf"))
    ap.add_argument("--no-ocr", action="store_true", help="find and crop only")
    ap.add_argument("--pages", default="", help="a page or range, 1-based: 107 or 100-110")
    ap.add_argument("--dump", default="", help="folder to write the crops to")
    ap.add_argument("--gold", default=str(ROOT / "../shared/eval/neets_dev.json"),
                    help="gold questions: check their figures are found with the answer's words")
    args = ap.parse_args()

    settings = IngestSettings()
    doc = pymupdf.open(args.pdf)
    pages = page_range(args.pages, doc.page_count)
    ocr = None
    if not args.no_ocr:
        ocr = get_engine(settings.ocr_engine, threads=2)
        ocr.read(doc[0].get_pixmap(dpi=20).tobytes("png"))  # load the models outside the timing
    dump = Path(args.dump) if args.dump else None
    if dump:
        dump.mkdir(parents=True, exist_ok=True)

    start, cpu_start = time.perf_counter(), time.process_time()
    skip = repeated_images(doc)
    figures, warnings, page_secs = [], [], {}
    for number in pages:
        t = time.perf_counter()
        found, warns = find_figures(doc, number, settings, ocr, skip)
        page_secs[number] = time.perf_counter() - t
        figures += found
        warnings += warns
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    raw, reference = reference_captions(doc, pages)
    got = {(f.page, f.label) for f in figures if f.label}
    found = reference & got
    raster = [f for f in figures if f.source == "raster"]
    with_ocr = [f for f in raster if f.ocr_text.strip()]
    uncaptioned = [f for f in figures if not f.label]
    print(f"pdf: {args.pdf} ({len(pages)} pages)  repeated images skipped: {sorted(skip)}")
    print(f"caption lines parse_caption reads as Figures: {raw}; "
          f"printed captions (page, label): {len(reference)}")
    print(f"figures returned: {len(figures)} ({len(raster)} raster, {len(figures) - len(raster)} vector)")
    print(f"captioned figures found with right page and label: {len(found)}/{len(reference)}")
    for page, label in sorted(reference - got):
        print(f"  missed: page {page} {label}")
    for page, label in sorted(got - reference):
        print(f"  labelled but not a printed Figure caption: page {page} {label}")
    print(f"uncaptioned figures (check by eye): {len(uncaptioned)}: "
          + ", ".join(f"p{f.page}#{f.index}" for f in uncaptioned))
    if ocr is not None:
        print(f"raster figures with OCR text: {len(with_ocr)}/{len(raster)}; without: "
              + ", ".join(f"p{f.page}#{f.index} {f.label}" for f in raster if f not in with_ocr))
    slow = sorted(page_secs.items(), key=lambda kv: -kv[1])[:5]
    # CPU seconds too: on a shared machine wall time says as much about the neighbours.
    print(f"seconds: {seconds:.1f} wall, {cpu:.1f} CPU (all threads), median page {statistics.median(page_secs.values()):.2f}, slowest "
          + ", ".join(f"p{n} {s:.1f}s" for n, s in slow))
    print(f"peak RSS: {rss_mb:.0f} MB")
    for warning in warnings:
        print(f"warning: {warning}")

    if Path(args.gold).is_file():
        for q in json.loads(Path(args.gold).read_text()):
            if q.get("kind") != "figure" or not q.get("figure"):
                continue
            hit = next((f for f in figures if f.label == q["figure"] and f.page in q["pages"]), None)
            words = hit.embed_text().lower() if hit else ""
            ok = [w for w in q["must_contain"] if w.lower() in words]
            print(f"gold {q['id']}: {q['figure']} p{q['pages']}: {'found' if hit else 'MISSING'}, "
                  f"words {len(ok)}/{len(q['must_contain'])} {q['must_contain']}")
    if dump:
        for f in figures:
            (dump / f"{f.key}.png").write_bytes(f.png)
            text = f"{f.caption}\n--- ocr\n{f.ocr_text}\n--- nearby\n{f.nearby_text}\n"
            (dump / f"{f.key}.txt").write_text(text)


if __name__ == "__main__":
    main()
