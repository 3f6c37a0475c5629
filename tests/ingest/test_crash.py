"""A killed ingest never leaves a partial manual visible, and the next run completes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from manualrag.engine import Engine
from manualrag.settings import Settings
from pdfgen import ManualBuilder

ROOT = Path(__file__).resolve().parents[2]


def _long_manual(path: Path, pages: int = 30) -> Path:
    m = ManualBuilder()
    for n in range(pages):
        m.text_page(
            f"Chapter {n + 1} Pump station {n + 1}",
            [f"Station {n + 1} uses breaker Q{n + 1:03d} rated {10 + n} AMP. " * 6,
             f"Inspect valve V{n + 1:03d} every {100 + n} hours and log pressure readings. " * 5],
        )
        if n % 6 == 5:
            m.scanned_page([f"Service sheet {n + 1}", f"Torque for flange bolts: {20 + n} N.m"])
    return m.save(path)


def _pending(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM pending").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_during_ingest_then_resume(settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pdf = _long_manual(tmp_path / "station.pdf")
    store = settings.store.path
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "manualrag.cli", "ingest", "--store", str(store), "--workers", "1", "-q", str(pdf)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while _pending(store / "library.db") == 0:
        assert proc.poll() is None, f"ingest ended before it could be killed: {proc.stdout.read()!r}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "ingest never started writing"
        time.sleep(0.05)
    time.sleep(1.5)  # well inside page parsing of a 35-page manual
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    assert engine.manuals() == [], "a killed ingest must not leave a visible manual"
    assert engine.search("breaker Q001", k=5).hits == []
    assert engine.store.library.stale(), "the killed run must be known as left over"

    (report,) = engine.ingest([pdf])
    assert report.status == "ingested", report.error
    assert engine.store.library.stale() == []
    assert engine.store.count() == report.chunks + report.figures, "leftover records must be purged"
    top = engine.search("breaker Q007", k=3).hits
    assert top and top[0].page == 8, f"expected the page of station 7, got {[h.page for h in top]}"
