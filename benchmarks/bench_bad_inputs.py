"""Time and peak memory of ingesting the worst inputs: a 1,000-page manual, a decompression bomb, a huge page.

    .venv/bin/python benchmarks/bench_bad_inputs.py [--pages 1000] [--bomb-side 15000] [--huge-points 12000]
        [--workers 2] [--only TEXT] [--all]

Each input is ingested by its own `manualrag ingest` process into a fresh store, so the
peak RSS (the process tree: CLI, page workers) is that input's alone. A one-page manual
runs first as the baseline (most of any run's memory is the embedder and OCR models).
``--all`` adds every file of the bad-input corpus (tests/badpdfs.py) with its one-line reason.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import badpdfs as bad  # noqa: E402


def tree_rss(proc: psutil.Process) -> int:
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # it has just exited
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def ingest(pdf: Path, store: Path, workers: int) -> dict[str, object]:
    """One `manualrag ingest --json` process: its report, wall time and peak tree RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANUALRAG_")}
    env.update(PYTHONPATH=str(ROOT), ORT_DISABLE_TELEMETRY="1")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "manualrag.cli", "ingest", "--json", "-q", "--workers", str(workers),
         "--store", str(store), str(pdf)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        try:
            watched = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            peak = max(peak, tree_rss(watched))
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, _ = proc.communicate()
    done.set()
    poller.join()
    wall = time.perf_counter() - started
    (report,) = json.loads(out)
    return {"report": report, "wall_s": round(wall, 1), "peak_mb": round(peak / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument(
        "--bomb-side", type=int, default=15000, help="pixels a side (RGB): 15000 is 675 MB decoded"
    )
    parser.add_argument("--huge-points", type=int, default=12_000, help="side of the huge scanned page")
    parser.add_argument("--only", default="", help="only the inputs whose label contains this")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--all", action="store_true", help="also every file of the bad-input corpus")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        good = bad.tiny_manual(folder / "good.pdf", "pump P7", pages=3)
        inputs: list[tuple[str, Callable[[], Path]]] = [
            ("baseline: 1-page manual", lambda: bad.tiny_manual(folder / "one-page.pdf")),
            (f"{args.pages}-page manual", lambda: bad.thousand_pages(folder / "long.pdf", args.pages)),
            (f"bomb {args.bomb_side}x{args.bomb_side} RGB ({args.bomb_side**2 * 3 / 1e6:,.0f} MB decoded)",
             lambda: bad.decompression_bomb(folder / "bomb.pdf", args.bomb_side)),
            (f"scanned page {args.huge_points:,} points a side",
             lambda: bad.huge_scanned_page(folder / "huge.pdf", args.huge_points)),
        ]  # fmt: skip
        if args.only:
            inputs = [(label, build) for label, build in inputs if args.only in label]
        if args.all:
            inputs += [
                ("corrupt", lambda: bad.corrupt(folder / "corrupt.pdf")),
                ("truncated", lambda: bad.truncated(folder / "truncated.pdf", good)),
                ("empty", lambda: bad.empty(folder / "empty.pdf")),
                ("PNG named .pdf", lambda: bad.not_pdf(folder / "photo.pdf")),
                ("ZIP named .pdf", lambda: bad.zip_named_pdf(folder / "report.pdf")),
                ("zero pages", lambda: bad.zero_pages(folder / "zero.pdf")),
                ("user password", lambda: bad.encrypted(folder / "locked.pdf", good)),
                ("owner password only", lambda: bad.encrypted(folder / "owner.pdf", good, user_password="")),
                ("blank pages", lambda: bad.blank_pages(folder / "blank.pdf")),
                ("6,000 pages", lambda: bad.too_many_pages(folder / "many.pdf", 6000)),
                ("JavaScript", lambda: bad.with_javascript(folder / "scripted.pdf")),
                ("attachments", lambda: bad.with_attachment(folder / "attached.pdf")),
            ]
        print(f"{'input':44} {'result':58} {'ingest s':>9} {'wall s':>7} {'peak RSS':>9}")
        for n, (label, build) in enumerate(inputs):
            pdf = build()
            result = ingest(pdf, folder / f"store-{n}", args.workers)
            report = result["report"]
            assert isinstance(report, dict)
            if report["status"] == "failed":
                outcome = f"refused: {report['error']}"
            else:
                outcome = (f"{report['status']}: {report['pages']} pages, {report['chunks']} chunks, "
                           f"{report['figures']} figures, {len(report['warnings'])} warnings")  # fmt: skip
            print(f"{label:44} {outcome[:58]:58} {report.get('seconds', 0):9.1f} {result['wall_s']:7.1f} "
                  f"{result['peak_mb']:6,} MB", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
