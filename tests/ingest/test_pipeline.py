"""End-to-end ingest on real PDFs: the sample manual, re-ingest, replace, remove, bad input."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest
from chroma_server import both_backends

from manualrag.engine import Engine
from manualrag.types import IngestReport
from pdfgen import ManualBuilder, sample_manual


@pytest.fixture
def ingested(ingested_engine: Engine, sample_pdf: Path):  # type: ignore[no-untyped-def]
    (info,) = ingested_engine.manuals()
    report = IngestReport(path=str(sample_pdf), name=info.name, status="ingested", pages=info.pages,
                          chunks=info.chunks, figures=info.figures, figures_with_ocr=info.figures_with_ocr,
                          ocr_pages=info.ocr_pages)
    return ingested_engine, report


def test_sample_manual_report(ingested) -> None:  # type: ignore[no-untyped-def]
    engine, report = ingested
    assert report.pages == 7
    assert report.chunks >= 6, f"expected a chunk per text section, got {report.chunks}"
    assert report.figures >= 2, "the vector wiring diagram and the raster front panel"
    assert report.figures_with_ocr >= 1, "the raster front panel's labels must be OCR'd"
    assert report.ocr_pages >= 2, "the scanned page and the junk-layer page must be OCR'd"
    (info,) = engine.manuals()
    assert info.ingested_at and info.embedder == "minilm-l6-v2" and len(info.sha256) == 64
    kinds = {r.kind for r in engine.store.library.records_of(info.ingest_id)}
    assert kinds == {"text", "table", "figure", "page"}, f"expected every record kind, got {kinds}"
    pages = {r.page for r in engine.store.library.records_of(info.ingest_id) if r.kind == "page"}
    assert engine.store.count() == info.chunks + info.figures + len(pages), "one vector per chunk, figure and page"
    assert engine.store.abs_path(info.pdf_path).exists(), "a copy of the PDF is kept for page views"


def test_search_finds_each_kind_of_content(ingested) -> None:  # type: ignore[no-untyped-def]
    engine, _ = ingested
    cases = [
        ("What does fault code F07452 mean?", 4, None),
        ("fuse rating of the motor contactor coil", 3, None),
        ("controller wiring diagram", 2, "figure"),
        ("how often should the motor bearings be greased", 6, None),  # scanned page, OCR only
        ("storage temperature range for the pump", 7, None),  # junk text layer, OCR'd
    ]
    for query, page, kind in cases:
        hits = engine.search(query, k=5).hits
        pages = [h.page for h in hits]
        assert page in pages[:3], f"{query!r}: expected page {page} in the top 3, got {pages}"
        if kind:
            match = next(h for h in hits if h.page == page)
            assert any(h.kind == kind and h.page == page for h in hits), f"{query!r}: expected a {kind} hit"
            figure = next(h for h in hits if h.kind == "figure" and h.page == page)
            assert figure.figure == "Figure 2-1" and Path(figure.image).is_file(), f"figure hit: {figure}"
            del match


def test_exact_code_beats_paraphrase(ingested) -> None:  # type: ignore[no-untyped-def]
    engine, _ = ingested
    top = engine.search("F07452", k=3).hits[0]
    assert top.page == 4 and "F07452" in top.text, f"an exact code must rank its page first, got {top}"


def test_table_stays_one_chunk(ingested) -> None:  # type: ignore[no-untyped-def]
    engine, _ = ingested
    tables = [h for h in engine.search("fuse ratings table", k=8).hits if h.kind == "table"]
    assert tables, "the fuse table must come back as a table record"
    assert all(code in tables[0].text for code in ("F1", "F2", "F3", "20 AMP")), tables[0].text


def test_reingest_unchanged_is_noop(ingested) -> None:  # type: ignore[no-untyped-def]
    engine, report = ingested
    before = engine.store.count()
    (again,) = engine.ingest([Path(report.path)])
    assert again.status == "unchanged"
    assert engine.store.count() == before, "no records may be added for an unchanged file"


@both_backends
def test_changed_file_replaces_records(ingested, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, report = ingested
    changed = tmp_path / report.name
    m = ManualBuilder()
    m.text_page("Chapter 1 Revised", ["The revised controller uses fuse F9 rated 7 AMP for the heater."])
    m.save(changed)
    (second,) = engine.ingest([changed])
    assert second.status == "replaced", second.error
    assert len(engine.manuals()) == 1
    (info,) = engine.manuals()
    assert engine.store.count() == engine.store.library.count(info.ingest_id) == second.chunks + second.figures + 1, (
        "old records must be gone: the new passage and its page"
    )
    assert engine.search("F07452", k=3).hits == [] or all(
        "F07452" not in h.text for h in engine.search("F07452", k=3).hits
    ), "text of the old version must not be found"
    assert any("F9" in h.text for h in engine.search("heater fuse F9", k=3).hits)


@both_backends
def test_remove(ingested) -> None:  # type: ignore[no-untyped-def]
    engine, report = ingested
    assert engine.remove(report.name)
    assert engine.manuals() == [] and engine.store.count() == 0
    assert engine.search("contactor", k=5).hits == []


# -- bad input ------------------------------------------------------------------------------


def _bad_files(folder: Path, good: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    files = {
        "corrupt": folder / "corrupt.pdf",
        "truncated": folder / "truncated.pdf",
        "not_pdf": folder / "photo.pdf",
        "empty": folder / "empty.pdf",
        "encrypted": folder / "locked.pdf",
        "zero_pages": folder / "zero.pdf",
    }
    files["corrupt"].write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["not_pdf"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 300)
    files["empty"].write_bytes(b"")
    doc = pymupdf.open(good)
    doc.save(files["encrypted"], encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")
    files["zero_pages"].write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    return files


def test_bad_files_fail_alone_with_reasons(engine: Engine, sample_pdf: Path, tmp_path: Path) -> None:
    bad = _bad_files(tmp_path / "bad", sample_pdf)
    reports = engine.ingest([*bad.values(), sample_pdf])
    by_name = {Path(r.path).name: r for r in reports}
    assert by_name[sample_pdf.name].status == "ingested", "the good manual must still go in"
    for kind, path in bad.items():
        r = by_name[path.name]
        assert r.status == "failed", f"{kind} should fail"
        assert r.error and "\n" not in r.error and "Traceback" not in r.error, f"{kind}: one-line reason, got {r.error!r}"
    assert "password" in by_name["locked.pdf"].error.lower()
    assert "not a pdf" in by_name["photo.pdf"].error.lower()
    assert [m.name for m in engine.manuals()] == [sample_pdf.name], "failed files must leave nothing visible"
    assert engine.store.library.stale() == [], "failed runs must leave nothing to purge"


def test_owner_password_only_pdf_is_readable(engine: Engine, sample_pdf: Path, tmp_path: Path) -> None:
    path = tmp_path / "owner-only.pdf"
    pymupdf.open(sample_pdf).save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="")
    (report,) = engine.ingest([path])
    assert report.status == "ingested", report.error


def test_folder_ingest(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "library"
    sample_manual(folder / "a.pdf")
    m = ManualBuilder()
    m.text_page("Other", ["A second manual about hydraulic valves and seals."])
    m.save(folder / "sub" / "b.PDF")
    (folder / "notes.txt").write_text("not a manual")
    reports = engine.ingest([folder])
    assert sorted(r.name for r in reports) == ["a.pdf", "b.PDF"]
    hits = engine.search("hydraulic valves", manuals=["b.PDF"], k=3).hits
    assert hits and all(h.manual == "b.PDF" for h in hits)
