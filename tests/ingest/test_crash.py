"""A killed ingest never leaves a partial manual visible, and the next run completes it.

`manualrag ingest` runs as a real process with JSON logs on stderr; the test reads its
``ingest.stage`` events and sends SIGKILL to the process group the moment the wanted
stage starts (parse, ocr, embed or write). Then, in a fresh engine: nothing of the
manual is visible or found, the leftover is known, and the next run ingests it with
exactly the record counts of a clean ingest, with no orphan vector left in Chroma.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pdfgen import ManualBuilder

from manualrag.engine import Engine
from manualrag.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["parse", "ocr", "embed", "write"]
# Each case is a full ingest after a process start (30-60 s on a busy 2-core machine): the
# kill before anything is written and the kill after vectors are written run every time.
CASES = [pytest.param(s, marks=pytest.mark.slow) if s in ("ocr", "embed") else s for s in STAGES]


def _long_manual(path: Path, pages: int = 18) -> Path:
    """Text pages with a scanned page every sixth (OCR takes seconds), sections with many
    short steps (enough records that the store write takes a while)."""
    m = ManualBuilder()
    for n in range(pages):
        w = m.text_page(
            f"Chapter {n + 1} Pump station {n + 1}",
            [f"Station {n + 1} uses breaker Q{n + 1:03d} rated {10 + n} AMP. " * 6,
             f"Inspect valve V{n + 1:03d} every {100 + n} hours and log pressure readings. " * 5],
        )  # fmt: skip
        for step in range(3):
            w.heading(f"{n + 1}.{step + 1} Step {step + 1} at station {n + 1}", size=12.5)
            w.paragraph(f"Close valve V{n + 1:03d}-{step} and wait {step + 2} minutes.")
        if n % 6 == 5:
            m.scanned_page([f"Service sheet {n + 1}", f"Torque for flange bolts: {20 + n} N.m"])
    return m.save(path)


@pytest.fixture(scope="module")
def station_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _long_manual(tmp_path_factory.mktemp("crash") / "station.pdf")


@pytest.fixture(scope="module")
def clean(station_pdf: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Record counts of an uninterrupted ingest of the same file: what every resumed run must match."""
    settings = Settings(_env_file=None)
    settings.store.path = tmp_path_factory.mktemp("clean") / "store"
    settings.ingest.workers = 1
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    (report,) = engine.ingest([station_pdf])
    assert report.status == "ingested", report.error
    counts = {"chunks": report.chunks, "figures": report.figures, "ocr_pages": report.ocr_pages,
              "vectors": engine.store.count()}  # fmt: skip
    engine.store.library.close()
    assert counts["ocr_pages"] == 3 and counts["vectors"] >= 70, counts
    return counts


def _kill_at(stage: str, pdf: Path, store: Path) -> list[str]:
    """Run `manualrag ingest` and SIGKILL it as soon as ``stage`` starts; the stages seen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANUALRAG_")}
    env.update(PYTHONPATH=str(ROOT), MANUALRAG_LOG__FORMAT="json", MANUALRAG_LOG__LEVEL="INFO")
    proc = subprocess.Popen(
        [sys.executable, "-m", "manualrag.cli", "ingest", "--store", str(store), "--workers", "1", "-q", str(pdf)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    seen: list[str] = []
    deadline = time.monotonic() + 300
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a progress bar or a library's own print
            if event.get("event") == "ingest.stage":
                assert event.get("manual") == pdf.name, event
                seen.append(event["stage"])
                if event["stage"] == stage:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
            assert time.monotonic() < deadline, f"no {stage} stage within 300 s; saw {seen}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        f"the ingest ended before {stage} (exit {proc.returncode}, saw {seen})"
    )
    return seen


@pytest.mark.parametrize("stage", CASES)
def test_kill_during_stage_then_resume(
    stage: str,
    station_pdf: Path,
    clean: dict[str, int],
    settings: Settings,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    store = settings.store.path
    seen = _kill_at(stage, station_pdf, store)
    assert seen == STAGES[: STAGES.index(stage) + 1], f"stages in order up to {stage}, got {seen}"

    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    assert engine.manuals() == [], "a killed ingest must not leave a visible manual"
    for query in ("breaker Q001", "Torque for flange bolts", "Close valve V007-1"):
        assert engine.search(query, k=5).hits == [], f"{query!r} found text of a killed ingest"
    assert engine.store.library.stale(), "the killed run must be known as left over"

    (report,) = engine.ingest([station_pdf])
    assert report.status == "ingested", report.error
    assert {"chunks": report.chunks, "figures": report.figures, "ocr_pages": report.ocr_pages,
            "vectors": engine.store.count()} == clean, "the resumed run must match a clean ingest exactly"  # fmt: skip
    assert engine.store.library.stale() == []
    (info,) = engine.manuals()
    assert _names(engine.store.figures_dir) in ([], [info.ingest_id]), "no leftover figures"
    assert _names(engine.store.pdf_dir) == [f"{info.sha256}.pdf"], "one stored copy of the PDF"
    top = engine.search("breaker Q007", k=3).hits
    assert top and top[0].page == 8, f"expected the page of station 7, got {[h.page for h in top]}"
    engine.store.library.close()


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_kill_while_replacing_keeps_the_previous_generation(settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A changed file's ingest killed while it writes: the old version stays whole and
    searchable; the next run replaces it with nothing of either version left over."""
    old = ManualBuilder()
    old.text_page("Chapter 1 Pump station", ["The old pump station uses breaker Z900 rated 5 AMP."])
    pdf = old.save(tmp_path / "v1" / "station.pdf")
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    (first,) = engine.ingest([pdf])
    assert first.status == "ingested", first.error
    before = engine.manuals()
    engine.store.library.close()

    new = _long_manual(tmp_path / "v2" / "station.pdf", pages=5)  # same name, new content, no scans
    seen = _kill_at("write", new, settings.store.path)
    assert seen == ["parse", "embed", "write"], seen

    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    assert engine.manuals() == before, "the previous generation must stay the visible one, unchanged"
    top = engine.search("breaker Z900", k=3).hits
    assert top and "Z900" in top[0].text, "the previous version is still found"
    assert all("Q003" not in h.text for h in engine.search("breaker Q003", k=5).hits), "nothing of the new one"

    (report,) = engine.ingest([new])
    assert report.status == "replaced", report.error
    (info,) = [m for m in engine.manuals() if m.name == report.name]
    assert engine.store.count() == engine.store.library.count(info.ingest_id), "no orphan vectors of either version"
    assert engine.store.count() == report.chunks + report.figures + report.pages, "a vector per part and per page"
    assert engine.store.library.stale() == []
    assert all("Z900" not in h.text for h in engine.search("breaker Z900", k=5).hits), "the old version is gone"
    top = engine.search("breaker Q003", k=3).hits
    assert top and top[0].page == 3, [h.page for h in top]
    engine.store.library.close()
