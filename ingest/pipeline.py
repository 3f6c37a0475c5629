"""Ingest orchestration: PDF files in, one visible generation per manual in the store.

The stages are plain functions (pdf.py, figures.py, chunking.py, ocr.py); this module
only runs them in order, spreads page work over processes, embeds, and hands the
records to the store inside a generation that becomes visible in one step.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from manualrag import logs
from manualrag.errors import ManualragError, UnreadablePdf
from manualrag.settings import IngestSettings, Settings
from manualrag.types import Chunk, Figure, IngestReport, ManualInfo, Page, Record, labels_heading
from rag.embedders import Embedder
from rag.store import Store

log = logging.getLogger(__name__)

# Below this many pages a process pool costs more (spawn + model load) than it saves.
POOL_MIN_PAGES = 12

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_manual_name(filename: str) -> str:
    """A display name from an uploaded file's name: no folders, no control or odd characters."""
    import re
    import unicodedata

    base = re.split(r"[\\/]", filename or "")[-1]
    # NFKC, not NFC: fullwidth and other compatibility lookalikes ("ｍａｎｕａｌ.pdf") fold into the
    # plain name, so an upload cannot pose as another manual under a name that looks the same.
    base = unicodedata.normalize("NFKC", base)
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*`$;&')
    base = base.strip(" .-") or "manual"  # "-rf.pdf" would read as an option in `manualrag remove`
    stem, ext = (base[:-4], base[-4:]) if base.lower().endswith(".pdf") else (base, ".pdf")
    return stem[:146] + ext


def find_pdfs(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders searched recursively for *.pdf (any case)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".pdf"))
        else:
            found.append(path)
    return found


# -- page work, in worker processes or inline ---------------------------------------------


@dataclass(frozen=True)
class _Job:
    path: str
    settings: IngestSettings
    out_dir: str
    skip_xrefs: frozenset[int]
    ocr_threads: int
    manual: str = ""
    log: logs.LogConfig | None = None  # a spawned worker logs like its parent


class _StageLogged:
    """An OCR engine that logs the ``ocr`` stage when it first reads (in the process doing it).

    OCR runs inside page parsing, page by page, only where a page needs it: the
    first read is the moment this manual's OCR starts in this process.
    """

    def __init__(self, engine: object, manual: str) -> None:
        self._engine = engine
        self._manual = manual
        self._started = False

    def read(self, png: bytes, turned: bool = False):  # type: ignore[no-untyped-def]
        if not self._started:
            self._started = True
            logs.event(log, "ingest.stage", stage="ocr", manual=self._manual)
        return self._engine.read(png, turned)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)


_worker: dict[str, object] = {}


def _init_worker(job: _Job) -> None:
    import pymupdf

    from ingest.font_decode import FontDecoder
    from ingest.ocr import get_engine

    logs.apply_in_worker(job.log)
    _worker["job"] = job
    _worker["doc"] = pymupdf.open(job.path)
    _worker["decoder"] = FontDecoder()  # junk-font readings learned from this worker's OCR
    if job.settings.layout_model:
        from ingest.layout import load

        _worker["layout"] = load(threads=job.ocr_threads)  # None when not installed; loads on first use
    try:
        _worker["ocr"] = _StageLogged(get_engine(job.settings.ocr_engine, threads=job.ocr_threads), job.manual)
    except ManualragError as err:
        _worker["ocr"] = None
        _worker["ocr_error"] = str(err)


def _init_pool_worker(job: _Job, parent: int) -> None:
    """A pool worker: exits when the process that started it is gone (a SIGKILLed `manualrag
    ingest` or app cannot stop its pool, and each worker holds 0.3-0.95 GB), then sets up."""
    import os
    import threading

    def watch() -> None:
        while os.getppid() == parent:  # the watchdog of rag/local_llm.py's llama server, in-process
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="manualrag-parent-watch", daemon=True).start()
    _init_worker(job)


def _release_memory() -> None:
    """Hand back, after each page, what a worker's OCR and rendering freed: MuPDF's cache of
    decoded images, and the heap glibc keeps. OCR frees hundreds of MB a call in pieces
    glibc holds on to: a worker grew to ~950 MB through NEETS without this, ~300 MB between
    pages with it, for about the CPU the smaller detector input (ocr.DET_MAX_SIDE) saves.
    Only in workers: the inline path runs in the app's process, which renders pages too."""
    import ctypes

    import pymupdf

    pymupdf.TOOLS.store_shrink(100)
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing more to hand back
        pass


def _parse_page(number: int) -> tuple[Page, list[Figure]]:
    """Figures first (their boxes are excluded from body text), then the page's text."""
    from ingest.figures import captions_from_ocr, find_figures
    from ingest.pdf import read_page

    job: _Job = _worker["job"]  # type: ignore[assignment]
    doc = _worker["doc"]
    ocr = _worker.get("ocr")
    warnings: list[str] = []
    if ocr is None and "ocr_error" in _worker:
        warnings.append(f"OCR unavailable: {_worker['ocr_error']}")
    try:
        figures, fig_warnings = find_figures(doc, number, job.settings, ocr, set(job.skip_xrefs),
                                             layout=_worker.get("layout"))
        warnings.extend(fig_warnings)
    except Exception as err:  # noqa: BLE001 - one bad page never sinks a manual
        figures = []
        warnings.append(f"page {number}: figures skipped ({type(err).__name__}: {err})")
    page = read_page(doc, number, job.settings, ocr, exclude=[f.bbox for f in figures if not f.in_picture],
                     decoder=_worker["decoder"])  # type: ignore[arg-type]
    captions_from_ocr(figures, page)
    page.warnings = warnings + page.warnings
    out_dir = Path(job.out_dir)
    for figure in figures:
        if figure.png:
            out_dir.mkdir(parents=True, exist_ok=True)
            name = f"{figure.key}.png"
            (out_dir / name).write_bytes(figure.png)
            figure.image_path = f"figures/{out_dir.name}/{name}"
            figure.png = b""  # the file is written; don't ship pixels back to the parent
    return page, figures


def _parse_page_in_worker(number: int) -> tuple[Page, list[Figure]]:
    try:
        return _parse_page(number)
    finally:
        _release_memory()


def _parse_pages(job: _Job, page_count: int, workers: int, progress: Progress) -> Iterator[tuple[Page, list[Figure]]]:
    import os
    from concurrent.futures import TimeoutError as FuturesTimeout

    numbers = range(1, page_count + 1)
    limit = job.settings.parse_timeout_s
    began = time.monotonic()
    if workers <= 1 or page_count < POOL_MIN_PAGES:
        _init_worker(job)
        try:
            for done, number in enumerate(numbers, 1):
                if time.monotonic() - began > limit:  # between pages: a page stuck inline can't be stopped
                    raise _too_slow(job, limit)
                yield _parse_page(number)
                progress("pages", done, page_count)
        finally:
            _worker.clear()
        return
    # spawn, not fork: the parent may hold torch threads, which don't survive a fork.
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_pool_worker,
                               initargs=(job, os.getpid()))
    try:
        # map's timeout counts from this call: the whole manual's page reading, however it is split.
        results = pool.map(_parse_page_in_worker, numbers, chunksize=2, timeout=limit)
        for done, result in enumerate(results, 1):
            yield result
            progress("pages", done, page_count)
    except FuturesTimeout:
        # A stalled worker never returns: stop them all, or leaving the `with` would wait forever.
        for process in list(pool._processes.values()):  # noqa: SLF001 - no public way before 3.14
            process.kill()
        raise _too_slow(job, limit) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _too_slow(job: _Job, limit: float) -> UnreadablePdf:
    return UnreadablePdf(
        job.path,
        f"reading its pages took longer than {limit:g} s (MANUALRAG_INGEST__PARSE_TIMEOUT_S): "
        "nothing from this file was kept; check the file, or raise the limit for a very long manual",
    )


# -- records ------------------------------------------------------------------------------


def _section_by_page(passages: Sequence[Chunk | Record]) -> dict[int, str]:
    """The section each page opens in: that of the first passage on it."""
    sections: dict[int, str] = {}
    for passage in passages:
        for page in passage.pages:
            sections.setdefault(page, passage.section)
    return sections


def build_records(name: str, ingest_id: str, chunks: list[Chunk], figures: list[Figure]) -> list[Record]:
    prefix = ingest_id[:12]
    labels = {f.label for f in figures if f.label}
    sections = _section_by_page(chunks)
    records: list[Record] = []
    for n, chunk in enumerate(chunks):
        linked = next((ref for ref in chunk.figure_refs if ref in labels), "")
        records.append(
            Record(
                id=f"{prefix}-c{n:05d}",
                manual=name,
                page=chunk.pages[0],
                kind=chunk.kind,
                text=chunk.text,
                embed_text=chunk.embed_text(),
                pages=chunk.pages,
                section=chunk.section,
                figure=linked,
                figure_refs=chunk.figure_refs,
                bbox=chunk.bbox,
                ocr=chunk.ocr,
            )
        )
    for n, figure in enumerate(figures):
        records.append(
            Record(
                id=f"{prefix}-f{n:05d}",
                manual=name,
                page=figure.page,
                kind="figure",
                text=figure.text(),
                embed_text=figure.embed_text(),
                pages=(figure.page,),
                section=sections.get(figure.page, ""),
                figure=figure.label,
                caption=figure.caption,
                image=figure.image_path,
                bbox=figure.bbox,
                ocr=bool(figure.ocr_text),
            )
        )
    return records


def page_text(page: Page, figures: list[Figure]) -> str:
    """A whole page as one passage: its blocks in reading order (tables as markdown), then
    each figure's caption and the labels read inside it. Paragraphs are separated by blank
    lines, so the answer stage can cut it into sentences, table rows and label lines."""
    parts = [b.text.strip() for b in page.blocks if b.text.strip()]
    for figure in figures:
        if figure.ocr_text:
            parts.append(f"{labels_heading(figure.label, figure.page)}\n{figure.ocr_text.strip()}")
    return "\n\n".join(parts)


def build_page_records(name: str, ingest_id: str, pages: list[Page], figures: list[Figure],
                       records: list[Record]) -> list[Record]:
    """One record per page with any words: the coarse granularity of retrieval."""
    prefix = ingest_id[:12]
    by_page: dict[int, list[Figure]] = {}
    for figure in figures:
        by_page.setdefault(figure.page, []).append(figure)
    sections = _section_by_page([r for r in records if r.kind != "figure"])
    out: list[Record] = []
    for page in pages:
        text = page_text(page, by_page.get(page.number, []))
        if not text:
            continue
        out.append(
            Record(
                id=f"{prefix}-p{page.number:05d}",
                manual=name,
                page=page.number,
                kind="page",
                text=text,
                pages=(page.number,),
                section=sections.get(page.number, ""),
                ocr=page.ocr,
            )
        )
    return out


def page_vectors(page_records: list[Record], records: list[Record], vectors):  # type: ignore[no-untyped-def]
    """A page's vector: the normalised mean of its records' vectors (passages, tables,
    figures). MiniLM reads 256 tokens, a page holds 500-800 words: the mean covers all of
    it and costs no embedding."""
    import numpy as np

    rows: dict[int, list[int]] = {}
    for i, record in enumerate(records):
        for number in record.pages or (record.page,):
            rows.setdefault(number, []).append(i)
    dim = vectors.shape[1] if len(vectors) else 0
    out = np.zeros((len(page_records), dim), dtype=np.float32)
    for j, page in enumerate(page_records):
        members = rows.get(page.page)
        if members:
            mean = vectors[members].mean(axis=0)
            out[j] = mean / max(float(np.linalg.norm(mean)), 1e-9)
    return out


# -- one file -------------------------------------------------------------------------------


def _noop(stage: str, done: int, total: int) -> None:
    pass


def ingest_file(
    path: Path,
    settings: Settings,
    store: Store,
    embedder: Embedder,
    progress: Progress = _noop,
    name: str | None = None,
    force: bool = False,
) -> IngestReport:
    """Ingest one PDF as manual ``name`` (default: the file's name).

    ``force`` ingests again even when the library holds this very file (re-ingest
    after a pipeline or settings change).

    Never raises for bad input: the report carries the reason.
    """
    from ingest.active_content import active_content
    from ingest.chunking import chunk_pages, is_furniture
    from ingest.figures import repeated_images
    from ingest.page_labels import page_labels
    from ingest.pdf import open_pdf

    import numpy as np

    started = time.perf_counter()
    name = name or path.name
    report = IngestReport(path=str(path), name=name)
    try:
        doc = open_pdf(path, settings.ingest)
    except UnreadablePdf as err:
        report.error = err.reason
        _log_failed(report, started)
        return report
    try:
        sha = sha256_file(path)
        current = store.manual(name)
        if current and current.sha256 == sha and not force:
            report.status = "unchanged"
            report.pages, report.chunks, report.figures = current.pages, current.chunks, current.figures
            report.figures_with_ocr, report.ocr_pages = current.figures_with_ocr, current.ocr_pages
            logs.event(log, "ingest.done", manual=name, status=report.status,
                       total_ms=logs.ms(time.perf_counter() - started))
            return report
        page_count = doc.page_count
        labels = page_labels(doc)
        skip = frozenset(repeated_images(doc))
        report.warnings.extend(active_content(doc))  # scripts, attachments: never run or extracted
    finally:
        doc.close()

    ingest_id = store.begin(name)
    try:
        workers = max(1, settings.ingest.workers)
        job = _Job(
            path=str(path),
            settings=settings.ingest,
            out_dir=str(store.figures_dir / ingest_id),
            skip_xrefs=skip,
            ocr_threads=1 if workers > 1 else 2,
            manual=name,
            log=logs.active(),
        )
        logs.event(log, "ingest.stage", stage="parse", manual=name, pages=page_count)
        pages: list[Page] = []
        figures: list[Figure] = []
        for page, page_figures in _parse_pages(job, page_count, workers, progress):
            pages.append(page)
            figures.extend(page_figures)
            report.warnings.extend(page.warnings)
        chunks = chunk_pages(pages, settings.ingest.chunk_words)
        records = build_records(name, ingest_id, chunks, figures)
        if not records:
            raise UnreadablePdf(str(path), "no text or figures could be read from any page")
        logs.event(log, "ingest.stage", stage="embed", manual=name, records=len(records))
        vectors = embed_records(embedder, records, progress)
        pictured, pixels = embed_figure_images(embedder, records, store.root, progress)
        whole_pages = build_page_records(name, ingest_id, pages, figures, records)
        page_vecs = page_vectors(whole_pages, records, vectors)
        # A page none of whose words made a record of its own: all of it bold labels taken
        # for headings (a brochure's "LE 17-in. alloy wheel" under each photo), or furniture.
        # The first is embedded as the page it is; the second is left out.
        alone = [i for i, v in enumerate(page_vecs) if not v.any() and not is_furniture(whole_pages[i].text)]
        if alone:
            page_vecs[alone] = embedder.embed_texts([whole_pages[i].text for i in alone])
        covered = [i for i, v in enumerate(page_vecs) if v.any()]
        whole_pages, page_vecs = [whole_pages[i] for i in covered], page_vecs[covered]
        logs.event(log, "ingest.stage", stage="write", manual=name, records=len(records))
        store.add(ingest_id, records + whole_pages, np.concatenate([vectors, page_vecs]))
        store.add_images(ingest_id, pictured, pixels)
        store.pdf_dir.mkdir(parents=True, exist_ok=True)
        stored_pdf = store.pdf_dir / f"{sha}.pdf"
        if not stored_pdf.exists():
            tmp = stored_pdf.with_name(f".{sha}.tmp")
            shutil.copyfile(path, tmp)
            tmp.replace(stored_pdf)
        report.pages = page_count
        report.chunks = len(chunks)
        report.figures = len(figures)
        report.figures_with_ocr = sum(1 for f in figures if f.ocr_text)
        report.ocr_pages = sum(1 for p in pages if p.ocr)
        report.seconds = round(time.perf_counter() - started, 2)
        report.status = "replaced" if store.manual(name) else "ingested"
        store.commit(
            ManualInfo(
                name=name,
                sha256=sha,
                ingest_id=ingest_id,
                pdf_path=f"manuals/{stored_pdf.name}",
                pages=report.pages,
                chunks=report.chunks,
                figures=report.figures,
                figures_with_ocr=report.figures_with_ocr,
                ocr_pages=report.ocr_pages,
                warnings=report.warnings[:200],
                embedder=embedder.id,
                seconds=report.seconds,
                page_labels=labels,
            )
        )
        logs.event(log, "ingest.done", manual=name, status=report.status, pages=report.pages,
                   chunks=report.chunks, figures=report.figures, ocr_pages=report.ocr_pages,
                   warnings=len(report.warnings), total_ms=logs.ms(report.seconds))
        return report
    except BaseException as err:
        store.abandon(ingest_id)
        if isinstance(err, UnreadablePdf):
            report.error = err.reason
            _log_failed(report, started)
            return report
        if isinstance(err, ManualragError):
            report.error = str(err)
            _log_failed(report, started)
            return report
        if isinstance(err, Exception):
            log.exception("ingest of %s failed", path)
            report.error = f"unexpected error ({type(err).__name__}: {err}); nothing from this file was kept"
            _log_failed(report, started)
            return report
        raise  # KeyboardInterrupt and friends: the generation is abandoned, then stop


def _log_failed(report: IngestReport, started: float) -> None:
    logs.event(log, "ingest.failed", logging.WARNING, manual=report.name, error=report.error,
               total_ms=logs.ms(time.perf_counter() - started))


def embed_records(embedder: Embedder, records: list[Record], progress: Progress = _noop):  # type: ignore[no-untyped-def]
    import numpy as np

    texts = [r.embed_text or r.text for r in records]
    step = max(embedder.batch_size, 1) * 4
    parts = []
    for start in range(0, len(texts), step):
        parts.append(embedder.embed_texts(texts[start : start + step]))
        progress("embedding", min(start + step, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


def embed_figure_images(embedder: Embedder, records: list[Record], root: Path, progress: Progress = _noop):  # type: ignore[no-untyped-def]
    """With a pixel embedder: figure records that have a PNG, and their image vectors.

    These go beside the figures' word vectors in the same collection (Store.add_images).
    A text-only embedder returns nothing: its figures live by their words alone.
    """
    import numpy as np

    figures = [r for r in records if r.kind == "figure" and r.image] if embedder.image_input else []
    step = max(embedder.batch_size, 1)
    parts = []
    for start in range(0, len(figures), step):
        parts.append(embedder.embed_images([root / r.image for r in figures[start : start + step]]))
        progress("figure images", min(start + step, len(figures)), len(figures))
    return figures, np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


def ingest_paths(
    paths: Iterable[Path],
    settings: Settings,
    store: Store,
    embedder: Embedder,
    progress_for: Callable[[Path], Progress] | None = None,
) -> list[IngestReport]:
    """Ingest many files; one bad file never stops the others."""
    reports = []
    with store.writer():
        for path in find_pdfs(paths):
            progress = progress_for(path) if progress_for else _noop
            reports.append(ingest_file(path, settings, store, embedder, progress))
    return reports
