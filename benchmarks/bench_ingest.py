"""Ingest benchmark: manualrag's full ingest vs. a plain text-only baseline, same machine, one run.

    .venv/bin/python benchmarks/bench_ingest.py [PDF] [--workers N] [--embedder SPEC] [--no-baseline]

Baseline: PyMuPDF page text, 180-word chunks, the same MiniLM embedder, nothing else.
Prints times, CPU seconds, pages/s, peak RSS (the process tree, workers included) and what
was found.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from manualrag.engine import Engine  # noqa: E402
from manualrag.settings import Settings  # noqa: E402


class PeakRss:
    """Polls the RSS of this process and its children; keeps the peak of the sum (shared
    pages count once per process, so this is an upper bound), and this process's own peak."""

    def __init__(self) -> None:
        self.peak = 0
        self.parent_peak = 0
        self.at_peak: list[int] = []  # this process's RSS, then its children's, when the sum peaked
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            sizes = []
            for proc in [me, *me.children(recursive=True)]:
                try:
                    sizes.append(proc.memory_info().rss)
                except psutil.Error:
                    continue
            self.parent_peak = max(self.parent_peak, sizes[0])
            if sum(sizes) > self.peak:
                self.peak, self.at_peak = sum(sizes), sizes
            time.sleep(0.1)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers, once it
    has shut down): unlike wall time, hardly changed by other work on the machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def baseline(pdf: Path, embedder) -> dict[str, float]:  # type: ignore[no-untyped-def]
    import pymupdf

    cpu = cpu_seconds()
    started = time.perf_counter()
    with pymupdf.open(pdf) as doc:
        pages = [page.get_text() for page in doc]
    chunks = []
    for text in pages:
        words = text.split()
        chunks.extend(" ".join(words[i : i + 180]) for i in range(0, len(words), 180))
    embedder.embed_texts(chunks)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds() - cpu, 1),
            "pages_per_s": round(len(pages) / seconds, 2), "chunks": len(chunks)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pdf", nargs="?", default=str(ROOT.parent / "shared/manuals/neets_part_04.pdf"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ocr", default="rapidocr")
    parser.add_argument("--store", help="ingest into this (new) store and keep it, e.g. for eval and bench_search")
    parser.add_argument("--embedder", help="embedder spec (default: minilm), e.g. clip:FOLDER from bench_embedders.py")
    parser.add_argument("--no-baseline", action="store_true", help="skip the text-only baseline")
    args = parser.parse_args()
    pdf = Path(args.pdf)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None)
        settings.store.path = Path(args.store) if args.store else Path(tmp) / "store"
        settings.ingest.workers = args.workers
        settings.ingest.ocr_engine = args.ocr
        if args.embedder:
            settings.embed.model = args.embedder
        engine = Engine(settings)
        embedder = engine.embedder  # load once, outside both timings
        embedder.embed_texts(["warm up"])

        base: dict[str, float] = {}
        if not args.no_baseline:
            with PeakRss() as base_rss:
                base = baseline(pdf, embedder)
            base["peak_rss_mb"] = round(base_rss.peak / 2**20)

        with PeakRss() as rss:
            cpu = cpu_seconds()
            started = time.perf_counter()
            (report,) = engine.ingest([pdf])
            seconds = time.perf_counter() - started
            cpu = cpu_seconds() - cpu
        full = {
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "pages_per_s": round(report.pages / seconds, 2),
            "peak_rss_mb": round(rss.peak / 2**20),
            "parent_peak_rss_mb": round(rss.parent_peak / 2**20),
            "rss_at_peak_mb": [round(n / 2**20) for n in rss.at_peak],  # this process, then its workers
            **{k: getattr(report, k) for k in ("status", "pages", "chunks", "figures", "figures_with_ocr", "ocr_pages")},
            "warnings": len(report.warnings),
            "error": report.error,
        }
        captioned = sum(1 for r in engine.store.library.records_of(engine.store.manual(pdf.name).ingest_id)
                        if r.kind == "figure" and r.figure.startswith("Figure")) if report.status != "failed" else 0
        full["figures_with_caption_label"] = captioned

    out = {"pdf": pdf.name, "cpu_count": os.cpu_count(), "workers": args.workers, "ocr": args.ocr,
           "embedder": embedder.id, "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
           "manualrag": full, "baseline_text_only": base,
           "ratio_to_baseline": round(full["seconds"] / max(base.get("seconds", 0.0), 1e-9), 2) if base else None}
    if base:  # barely moved by other work on the machine, unlike the wall-clock ratio
        out["cpu_ratio_to_baseline"] = round(full["cpu_seconds"] / max(base["cpu_seconds"], 1e-9), 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
