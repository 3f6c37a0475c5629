"""Bad input, all of it: each file gets one line saying why, the rest of the batch goes in,
nothing is written outside the store, and what a file carries besides pages (scripts,
attachments, a decompression bomb) is never run, extracted or decoded.

The corpus is built by tests/badpdfs.py and ingested in one batch by the real CLI
(`manualrag ingest`), as a user would run it; uploads go through `Engine.ingest_upload`
and the app's `UploadQueue`, as the web app sends them.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import badpdfs as bad
import pytest

from manualrag.engine import Engine
from manualrag.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MAX_PAGES = 300
MAX_FILE_MB = 3
BOMB_SIDE = 9000  # 81 M pixels (over max_image_pixels), 243 MB if decoded: quick to build


@dataclass(frozen=True)
class Bad:
    file: str
    build: Callable[[Path, Path, str], Path]  # (folder, a good PDF, URL that scripts call) -> file
    reason: str | None  # in the one-line reason; None: ingested
    warning: str = ""  # in a warning of the ingested manual


CORPUS = [
    Bad("corrupt.pdf", lambda d, g, u: bad.corrupt(d / "corrupt.pdf"), "damaged and could not be repaired"),
    Bad("truncated.pdf", lambda d, g, u: bad.truncated(d / "truncated.pdf", g), "incomplete (truncated)"),
    Bad("empty.pdf", lambda d, g, u: bad.empty(d / "empty.pdf"), "the file is empty"),
    Bad("photo.pdf", lambda d, g, u: bad.not_pdf(d / "photo.pdf"), "not a PDF file"),
    Bad("report.pdf", lambda d, g, u: bad.zip_named_pdf(d / "report.pdf"), "not a PDF file"),
    Bad("zero.pdf", lambda d, g, u: bad.zero_pages(d / "zero.pdf"), "the PDF has no pages"),
    Bad("locked.pdf", lambda d, g, u: bad.encrypted(d / "locked.pdf", g), "encrypted with a password"),
    Bad("owner-only.pdf", lambda d, g, u: bad.encrypted(d / "owner-only.pdf", g, user_password=""), None),
    Bad("blank.pdf", lambda d, g, u: bad.blank_pages(d / "blank.pdf"), "no text or figures could be read"),
    Bad("huge.pdf", lambda d, g, u: bad.oversized(d / "huge.pdf", MAX_FILE_MB + 1), f"over the {MAX_FILE_MB} MB limit"),
    Bad("long.pdf", lambda d, g, u: bad.too_many_pages(d / "long.pdf", MAX_PAGES + 1), f"over the {MAX_PAGES}-page limit"),
    Bad("scripted.pdf", lambda d, g, u: bad.with_javascript(d / "scripted.pdf", u), None, "JavaScript"),
    Bad("attached.pdf", lambda d, g, u: bad.with_attachment(d / "attached.pdf"), None, "attached files"),
    Bad("bomb.pdf", lambda d, g, u: bad.decompression_bomb(d / "bomb.pdf", BOMB_SIDE), None, "max_image_pixels"),
]  # fmt: skip
GOOD = ["first-good.pdf", "last-good.pdf"]


class Listener:
    """A local HTTP server counting requests: a script in a PDF that ran would call it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer.requests.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` but ``skip``: path -> (size, mtime in ns)."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents:
            stat = path.stat()
            out[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return out


# What a store folder may hold after ingest: anything else is a file written where it should not be.
STORE_FILES = re.compile(
    r"(chroma/.+|library\.db(-wal|-shm)?|write\.lock|chroma\.lock|"
    r"figures/[0-9a-f]{32}/[\w.-]+\.png|manuals/[0-9a-f]{64}\.pdf)"
)


def strays(store: Path) -> list[str]:
    files = [str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()]
    return [f for f in files if not STORE_FILES.fullmatch(f)]


@dataclass
class Batch:
    lines: dict[str, list[str]]  # file name -> its lines of CLI output (report, then warnings)
    exit_code: int
    store: Path
    outside_before: dict[str, tuple[int, int]]
    outside_after: dict[str, tuple[int, int]]
    script_calls: list[str]
    engine: Engine


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Batch]:  # type: ignore[no-untyped-def]
    """The whole corpus and two good manuals, in one `manualrag ingest` run."""
    top = tmp_path_factory.mktemp("bad-batch")
    folder = top / "in"
    folder.mkdir()
    good = bad.tiny_manual(top / "good.pdf", "pump P7", pages=3)  # encrypted and truncated copies of it
    listener = Listener()
    paths = [bad.tiny_manual(folder / GOOD[0], "winch W4")]
    paths += [case.build(folder, good, listener.url) for case in CORPUS]
    paths.append(bad.tiny_manual(folder / GOOD[1], "hoist H2"))
    store = top / "store"
    cwd = top / "cwd"
    cwd.mkdir()
    before = snapshot(top, store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANUALRAG_")}
    env.update(PYTHONPATH=str(ROOT), MANUALRAG_INGEST__MAX_PAGES=str(MAX_PAGES),
               MANUALRAG_INGEST__MAX_FILE_MB=str(MAX_FILE_MB), MANUALRAG_INGEST__WORKERS="1")  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "manualrag.cli", "ingest", "-q", "--store", str(store), *map(str, paths)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    listener.close()
    lines: dict[str, list[str]] = {}
    current = ""
    for line in run.stdout.splitlines():
        found = re.match(r"[✓✗] (\S+?)(?: \[\w+\])?: ", line)
        if found:
            current = Path(found.group(1)).name
            lines[current] = [line]
        elif line.startswith("    ! ") and current:
            lines[current].append(line)
        else:
            raise AssertionError(f"an output line that is neither a report nor a warning: {line!r}")
    settings = Settings(_env_file=None)
    settings.store.path = store
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    yield Batch(lines, run.returncode, store, before, snapshot(top, store), listener.requests, engine)
    engine.store.library.close()


def test_batch_goes_on_past_bad_files(batch: Batch) -> None:
    assert batch.exit_code == 0, "some manuals were ingested: the run succeeds"
    assert set(batch.lines) == {c.file for c in CORPUS} | set(GOOD), (
        f"one report per file: {sorted(batch.lines)}"
    )
    ingested = {m.name for m in batch.engine.manuals()}
    assert ingested == {c.file for c in CORPUS if c.reason is None} | set(GOOD), ingested
    for name, query in ((GOOD[0], "winch W4 brake band"), (GOOD[1], "hoist H2 brake band")):
        hits = batch.engine.search(query, manuals=[name], k=3).hits
        assert hits and hits[0].manual == name, f"{name} must be searchable after the bad files"
    assert batch.engine.store.library.stale() == [], "failed files leave nothing to purge"
    library = batch.engine.store.library
    assert batch.engine.store.count() == sum(library.count(m.ingest_id) for m in batch.engine.manuals()), (
        "no orphans: every vector belongs to a visible manual's records"
    )


@pytest.mark.parametrize("case", CORPUS, ids=[c.file for c in CORPUS])
def test_each_bad_file(batch: Batch, case: Bad) -> None:
    report, *warnings = batch.lines[case.file]
    if case.reason is not None:
        assert report.startswith("✗ ") and case.reason in report, f"expected {case.reason!r}, got {report!r}"
        assert "Traceback" not in report and "Error" not in report, f"a reason, not an exception: {report!r}"
        assert len(report) < 260, f"one short line: {report!r}"
        assert batch.engine.store.manual(case.file) is None
        return
    assert report.startswith(f"✓ {case.file} [ingested]"), report
    if case.warning:
        assert any(case.warning in w for w in warnings), (
            f"expected a warning with {case.warning!r}: {warnings}"
        )
    info = batch.engine.store.manual(case.file)
    assert info is not None and info.chunks >= 1


def test_nothing_written_outside_the_store(batch: Batch) -> None:
    assert batch.outside_after == batch.outside_before, "files outside the store changed"
    assert strays(batch.store) == [], "only the store's own files"
    assert not (batch.store / "uploads").exists() or not any((batch.store / "uploads").iterdir())


def test_scripts_and_attachments_are_never_run_or_read(batch: Batch) -> None:
    assert batch.script_calls == [], f"a script in a PDF ran: {batch.script_calls}"
    with sqlite3.connect(batch.store / "library.db") as conn:
        for marker in (bad.SCRIPT_MARKER, bad.ATTACHMENT_MARKER):
            rows = conn.execute("SELECT count(*) FROM records WHERE text LIKE ? OR data LIKE ?",
                                (f"%{marker}%", f"%{marker}%")).fetchone()[0]  # fmt: skip
            assert rows == 0, f"{marker} (inside a script or attachment) reached the library"
    for marker in (bad.SCRIPT_MARKER, bad.ATTACHMENT_MARKER):
        found = [h.manual for h in batch.engine.search(marker, k=5).hits if marker in h.text]
        assert found == [], f"{marker} is searchable in {found}"
    assert list(batch.store.rglob("payload.sh")) == [] and list(batch.store.rglob("notes.txt")) == []


def test_bomb_page_keeps_the_rest_of_its_manual(batch: Batch) -> None:
    hits = batch.engine.search("boom B1 hydraulic ram pressure", manuals=["bomb.pdf"], k=3).hits
    assert hits and hits[0].page == 1, "the text page beside the bomb pages is ingested"
    figures = [h for h in batch.engine.search("boom cylinder figure", manuals=["bomb.pdf"], k=5).hits
               if h.kind == "figure"]  # fmt: skip
    assert [f.figure for f in figures] == ["Figure 2-1"], "the good figure on the bomb's page survives"
    (_, *warnings) = batch.lines["bomb.pdf"]
    assert sum(f"{BOMB_SIDE}x{BOMB_SIDE}" in w for w in warnings) == 2, warnings


# -- uploads, as the web app sends them ---------------------------------------------------------

UPLOAD_NAMES = [
    ("../../escaped.pdf", "escaped.pdf"),
    ("..\\..\\Windows\\evil.pdf", "evil.pdf"),
    ("Ünïcødé 手册 ☃.pdf", "Ünïcødé 手册 ☃.pdf"),
    ("$(touch pwned); `id` | rm -rf ~ & x.pdf", "(touch pwned) id  rm -rf ~  x.pdf"),
    ("a\nb\x00c\r.pdf", "abc.pdf"),
    ("\u202egnp.pdf", "gnp.pdf"),
    ("-rf.pdf", "rf.pdf"),
    ("..", "manual.pdf"),
    ("x" * 400 + ".pdf", "x" * 146 + ".pdf"),
]


def test_hostile_upload_names(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a name used as a path would land here, inside the snapshot
    absolute = tmp_path / f"abs-{uuid.uuid4().hex}.pdf"
    cases = [*UPLOAD_NAMES, (str(absolute), absolute.name)]
    data = bad.tiny_manual(tmp_path / "src" / "manual.pdf", "winch W4").read_bytes()
    store = engine.store.root
    before = snapshot(tmp_path, store)
    for upload, expected in cases:
        report = engine.ingest_upload(data, upload)
        assert report.status == "ingested" and report.name == expected, f"{upload!r}: {report}"
    assert sorted(m.name for m in engine.manuals()) == sorted(e for _, e in cases)
    for _, name in cases:
        hits = engine.search("winch brake band", manuals=[name], k=2).hits
        assert hits and hits[0].manual == name, f"{name!r} is searchable under its safe name"
    assert snapshot(tmp_path, store) == before, "nothing written outside the store"
    assert not absolute.exists() and not (tmp_path / "pwned").exists()
    assert strays(store) == [], "only the store's own files"


def test_uploads_left_by_a_crash_are_removed(engine: Engine, tmp_path: Path) -> None:
    uploads = engine.store.root / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "0f3a.pdf").write_bytes(b"%PDF-1.7 half written by a process that died")
    with engine.store.write_lock():  # another process is writing: its upload may be in there
        assert engine.store.drop_stale_uploads() == 0 and (uploads / "0f3a.pdf").exists()
    assert engine.store.drop_stale_uploads() == 1, "at the app's start, with nobody writing"
    (uploads / "1b2c.pdf").write_bytes(b"%PDF-1.7 left by a full disk")
    data = bad.tiny_manual(tmp_path / "t.pdf", "crane C9").read_bytes()
    assert engine.ingest_upload(data, "t.pdf").status == "ingested"
    assert list(uploads.iterdir()) == [], "the next writer removes what it finds, and its own file"


def test_same_file_uploaded_twice_at_once(engine: Engine, tmp_path: Path) -> None:
    data = bad.tiny_manual(tmp_path / "twice.pdf", "crane C9", pages=2).read_bytes()
    engine.store  # noqa: B018 - opened before the race, as the app does
    reports: list[object] = []

    def upload() -> None:
        try:
            reports.append(engine.ingest_upload(data, "twice.pdf"))
        except Exception as err:  # noqa: BLE001 - the assertion below shows it
            reports.append(err)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    statuses = sorted(getattr(r, "status", repr(r)) for r in reports)
    assert statuses == ["ingested", "unchanged"], f"one ingest, one no-op, no error: {reports}"
    (info,) = engine.manuals()
    assert info.chunks == 2 and engine.store.count() == engine.store.library.count(info.ingest_id), (
        "exactly one generation's records"
    )
    with sqlite3.connect(engine.store.root / "library.db") as conn:
        generations = conn.execute("SELECT count(DISTINCT ingest_id) FROM records").fetchone()[0]
    assert generations == 1


def test_app_upload_queue_refuses_the_twin(engine: Engine, tmp_path: Path) -> None:
    from ui.jobs import UploadQueue

    data = bad.tiny_manual(tmp_path / "twin.pdf", "pump P7").read_bytes()
    queue = UploadQueue(engine, max_bytes=10 << 20)
    first = queue.submit_upload("twin.pdf", data, may_replace=False)
    second = queue.submit_upload("twin-copy.pdf", data, may_replace=False)
    assert second.state == "duplicate" and "already being added as twin.pdf" in second.message, second
    deadline = time.monotonic() + 300
    while first.active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.state == "done", first.message
    third = queue.submit_upload("twin-again.pdf", data, may_replace=False)
    assert third.state == "duplicate" and "already in the library as twin.pdf" in third.message, third
    assert [m.name for m in engine.manuals()] == ["twin.pdf"]


def test_a_technician_upload_never_replaces_a_manual(engine: Engine, tmp_path: Path) -> None:
    from ui.jobs import UploadQueue

    first = bad.tiny_manual(tmp_path / "a.pdf", "pump P7").read_bytes()
    other = bad.tiny_manual(tmp_path / "b.pdf", "winch W2").read_bytes()
    lookalike = bad.tiny_manual(tmp_path / "c.pdf", "crane C9").read_bytes()
    staffs = bad.tiny_manual(tmp_path / "d.pdf", "valve V4").read_bytes()
    queue = UploadQueue(engine, max_bytes=10 << 20)
    with engine.store.write_lock():  # the first upload waits its turn: it is in the queue, not the library
        queued = queue.submit_upload("pump.pdf", first, may_replace=False)
        second = queue.submit_upload("pump.pdf", other, may_replace=False)
        # Fullwidth letters: NFKC folds them into "PUMP.pdf", which must not pose as "pump.pdf".
        posing = queue.submit_upload("ＰＵＭＰ.pdf", lookalike, may_replace=False)
        assert queued.active, queued
    assert second.state == "rejected" and "pump.pdf is already being added" in second.message, second
    assert posing.manual == "PUMP.pdf", "the name is NFKC-normalised"
    assert posing.state == "rejected" and "PUMP.pdf is already being added" in posing.message, posing
    deadline = time.monotonic() + 300
    while queued.active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert queued.state == "done", queued.message
    again = queue.submit_upload("Pump.pdf", other, may_replace=False)
    assert again.state == "rejected" and "is already in the library" in again.message, again
    (info,) = engine.manuals()
    assert info.sha256 == hashlib.sha256(first).hexdigest(), "the first upload is still the manual"

    # Staff may replace it.
    replaced = queue.submit_upload("pump.pdf", staffs, may_replace=True)
    while replaced.active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert replaced.state == "done" and replaced.message.startswith("replaced"), replaced.message
    (info,) = engine.manuals()
    assert info.sha256 == hashlib.sha256(staffs).hexdigest()


# -- the long manual ------------------------------------------------------------------------------


@pytest.mark.slow
def test_thousand_page_manual(engine: Engine, tmp_path: Path) -> None:
    pdf = bad.thousand_pages(tmp_path / "valves.pdf")
    (report,) = engine.ingest([pdf])
    assert report.status == "ingested" and report.pages == 1000, report
    assert report.chunks >= 1000 and report.warnings == [], report
    hits = engine.search("When does valve V0777 close?", k=3).hits
    assert hits and hits[0].page == 777, [h.page for h in hits]


HUGE_POINTS = 12_000  # PDF pages may be up to 14,400 points a side


def test_a_huge_page_renders_within_the_pixel_cap(tmp_path: Path) -> None:
    """A 12,000-point page, rendered whole for OCR (200 dpi: 1.1 billion pixels uncapped) and for
    the page viewer, in a fresh process: the renders are capped, so peak RSS stays small."""
    import pymupdf

    pdf = tmp_path / "huge.pdf"
    with pymupdf.open() as doc:
        page = doc.new_page(width=HUGE_POINTS, height=HUGE_POINTS)
        page.insert_text((600, 600), "TERMINAL X1 MAIN SUPPLY", fontsize=240)
        doc.save(pdf)
    script = f"""
import json, time, pymupdf
def peak_kb():  # this process's own peak: ru_maxrss also counts the parent it was forked from
    return int(next(ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')))
from ingest.ocr import get_engine
from ingest.page_ocr import MAX_RENDER_PIXELS, LineReader, ocr_region, render
from ui.render import VIEW_MAX_PIXELS, page_png
from PIL import Image
import io
engine = get_engine("rapidocr", threads=1)
doc = pymupdf.open({str(pdf)!r})
page = doc[0]
began = time.perf_counter()
pix, dpi = render(page, 200)
pixels = pix.width * pix.height
del pix
lines = ocr_region(page, tuple(page.rect), [], 200, engine)
word = LineReader(page, 200, engine).read((560, 330, 3900, 660))
png, _ = page_png(__import__("pathlib").Path({str(pdf)!r}), 1, None, 110)
shown = Image.open(io.BytesIO(png)).size
peak = peak_kb() / 1024
print(json.dumps({{"pixels": pixels, "cap": MAX_RENDER_PIXELS, "dpi": dpi, "text": " ".join(t for _, t in lines),
                  "word": word, "shown": shown, "view_cap": VIEW_MAX_PIXELS, "peak_mb": peak,
                  "seconds": time.perf_counter() - began}}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORT_DISABLE_TELEMETRY": "1"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                         check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\nhuge page: {result}")
    assert result["pixels"] <= result["cap"] and result["dpi"] < 200, f"the OCR render is capped: {result}"
    assert result["shown"][0] * result["shown"][1] <= result["view_cap"], f"the viewer's render is capped: {result}"
    assert "SUPPLY" in result["text"].upper(), f"the scaled-down render is still read: {result}"
    # Uncapped, the OCR render alone is 3.3 GB (1.1 billion RGB pixels) and the viewer's 1 GB.
    assert result["peak_mb"] < 1200, f"peak RSS {result['peak_mb']:.0f} MB (RapidOCR itself is ~0.45 GB)"


def test_bomb_is_never_decoded(tmp_path: Path) -> None:
    """Reading the bomb's pages decodes no image and sends nothing to OCR.

    In a fresh process, so its peak RSS is this test's alone; OCR is RapidOCR, loaded
    before the baseline is taken, behind a wrapper that counts what it is asked to read."""
    pdf = bad.decompression_bomb(tmp_path / "bomb.pdf", BOMB_SIDE)
    script = f"""
import json, pymupdf
def peak_kb():  # this process's own peak: ru_maxrss also counts the parent it was forked from
    return int(next(ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')))
from ingest import figure_text
from ingest.ocr import get_engine
from ingest.pdf import read_page
from manualrag.settings import IngestSettings
settings = IngestSettings()
engine = get_engine(settings.ocr_engine, threads=1)
class Counting:
    calls = 0
    def __getattr__(self, name):
        return getattr(engine, name)
    def read(self, png, turned=False):
        Counting.calls += 1
        return engine.read(png, turned)
doc = pymupdf.open({str(pdf)!r})
base = peak_kb()
blocks = [len(figure_text.text_blocks(doc[n])) for n in (1, 2)]
page = read_page(doc, 3, settings, Counting())
grown = (peak_kb() - base) / 1024
print(json.dumps({{"blocks": blocks, "ocr_calls": Counting.calls, "ocr": page.ocr, "grown_mb": grown}}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORT_DISABLE_TELEMETRY": "1"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                         check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["blocks"][0] >= 2, f"page 2's text is read: {result}"
    assert result["ocr_calls"] == 0 and not result["ocr"], f"the bomb page went to OCR: {result}"
    # Decoded, the bomb is 243 MB (page 3), and so is the image declaring its size on page 2.
    assert result["grown_mb"] < 80, f"an image was decoded: RSS grew {result['grown_mb']:.0f} MB"


def test_queued_uploads_wait_on_disk_within_caps(engine: Engine, tmp_path: Path) -> None:
    from ui.jobs import UploadQueue

    stale = engine.store.root / "queue" / "999999999"  # a queue folder of a process that is gone
    stale.mkdir(parents=True)
    (stale / "old.pdf").write_bytes(b"%PDF-1.7 queued when the app was killed")
    files = [bad.tiny_manual(tmp_path / f"m{n}.pdf", f"pump P{n}").read_bytes() for n in range(4)]
    size = max(len(f) for f in files)
    queue = UploadQueue(engine, max_bytes=10 << 20, max_queued_bytes=3 * size, max_queued_per_owner=2 * size)
    assert not stale.exists(), "a dead process's queue folder is removed when a queue starts"
    with engine.store.write_lock():  # nothing is ingested yet: everything waits in the queue
        first = queue.submit_upload("m0.pdf", files[0], may_replace=False, owner="browser-a")
        second = queue.submit_upload("m1.pdf", files[1], may_replace=False, owner="browser-a")
        third = queue.submit_upload("m2.pdf", files[2], may_replace=False, owner="browser-a")
        other = queue.submit_upload("m3.pdf", files[3], may_replace=False, owner="browser-b")
        assert first.active and second.active, (first.message, second.message)
        assert third.state == "rejected" and "your uploads waiting to be added would pass" in third.message
        assert other.active, "another browser still has room in the queue"
        late = queue.submit_upload("m2.pdf", files[2], may_replace=False, owner="browser-c")
        assert late.state == "rejected" and "the upload queue is full" in late.message, late.message
        spilled = sorted(p.name for p in queue.spill_dir.iterdir())
        assert spilled == sorted(f"{j.id}.pdf" for j in (first, second, other)), "queued uploads wait on disk"
        assert not hasattr(first, "data"), "no job keeps its file in memory"
    deadline = time.monotonic() + 300
    while queue.busy() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [j.state for j in (first, second, other)] == ["done"] * 3
    assert list(queue.spill_dir.iterdir()) == [], "each file is removed once ingested"
