"""Work that outlives one run of the page: answers being written, uploads being ingested.

Streamlit reruns the page script on every click and stops the run in progress.
An answer streamed inside the script would die with it, so each question runs in
an ``AnswerJob`` thread that saves its turn itself; the page only watches it and
picks the stream up again after a rerun. Uploads go to one ``UploadQueue`` per
engine: a worker thread ingests them one at a time (the store has one writer
anyway) while searches and answers keep running.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from manualrag.conversations import Conversations
from manualrag.engine import Engine
from manualrag.errors import ManualragError
from manualrag.types import Answer, IngestReport

log = logging.getLogger(__name__)

PDF_MAGIC = b"%PDF-"
MAGIC_WINDOW = 1024  # readers accept a PDF header anywhere in the first KiB
KEEP_FINISHED_S = 24 * 3600


# -- answers ----------------------------------------------------------------------------------------


class AnswerJob:
    """One question answered in a thread; the page polls ``wait`` and draws ``text``."""

    def __init__(
        self,
        engine: Engine,
        conversations: Conversations,
        conversation_id: str,
        question: str,
        manuals: Sequence[str],
        history: Sequence[Answer],
    ) -> None:
        self.question = question
        self.conversation_id = conversation_id
        self.manuals = tuple(manuals)
        self.text = ""  # streamed so far (citations not yet checked)
        self.status = "searching the manuals…"
        self.turn_id: int | None = None
        self.evidence = None  # rag.answer.Evidence: retrieval's best hits, shown before the answer
        self.asked_at = time.time()
        self.first_token_at: float | None = None
        self.finished_at: float | None = None
        self.done = False
        self._version = 0
        self._changed = threading.Condition()
        self._engine = engine
        self._conversations = conversations
        self._history = list(history)
        self._thread = threading.Thread(target=self._run, name="manualrag-answer", daemon=True)
        self._thread.start()

    def _bump(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Block until something changed after version `seen` (or `timeout`); the new version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != seen or self.done, timeout)
            return self._version

    def _run(self) -> None:
        from rag.answer import AnswerEvent, Evidence, Status, Token, follow

        def show(event: AnswerEvent) -> None:
            if isinstance(event, Token):
                if self.first_token_at is None:
                    self.first_token_at = time.time()
                self.text += event.text
            elif isinstance(event, Evidence):
                self.evidence = event
                self.status = "reading the manuals…"
            elif isinstance(event, Status):
                self.status = event.text
                if event.restart:  # a withheld draft: the next one replaces it
                    self.text = ""
            if self.first_token_at is None and isinstance(event, Token | Answer):
                self.status = "writing the answer…"
            self._bump()

        try:
            events = self._engine.ask(self.question, self.manuals or None, self._history)
            answer = follow(events, show, self.question).answer
        except ManualragError as err:
            answer = Answer(question=self.question, text="", error=str(err), answerable=False)
        except Exception as err:  # noqa: BLE001 - the page shows one line, the log keeps the traceback
            # The conversation's id, never the question: questions stay in app.db, out of the log.
            log.exception("answering a question in conversation %s failed", self.conversation_id)
            answer = Answer(
                question=self.question,
                text="",
                answerable=False,
                error=f"unexpected error while answering ({type(err).__name__}); see the server log",
            )
        self.finished_at = time.time()
        try:
            self.turn_id = self._conversations.add_turn(
                self.conversation_id,
                answer,
                manuals=self.manuals,
                query=answer.query,
                asked_at=self.asked_at,
                first_token_at=self.first_token_at,
                finished_at=self.finished_at,
            )
        except Exception:  # noqa: BLE001 - a full disk must not leave the page waiting forever
            log.exception("saving an answer in conversation %s failed", self.conversation_id)
        self.done = True
        self._bump()


# -- uploads ----------------------------------------------------------------------------------------

JobState = Literal["queued", "running", "done", "failed", "rejected", "duplicate"]


@dataclass
class UploadJob:
    id: str
    filename: str  # only ever shown, never used as a path
    kind: Literal["upload", "reingest"] = "upload"
    size: int = 0
    sha256: str = ""
    state: JobState = "queued"
    stage: str = ""
    done: int = 0
    total: int = 0
    message: str = ""  # the one line shown when finished
    report: IngestReport | None = None
    submitted_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    spilled: Path | None = None  # where the upload waits for its turn (on disk, not in memory)
    owner: str = ""  # the browser that sent it (its owner token): queue caps count per browser
    manual: str = ""  # the manual's name in the library
    may_replace: bool = False  # staff's uploads may replace a manual of the same name

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary(report: IngestReport) -> str:
    """ "7 pages, 12 text chunks, 2 figures (1 with OCR text), 1 page OCR'd"."""
    text = (
        f"{_n(report.pages, 'page')}, {_n(report.chunks, 'text chunk')}, {_n(report.figures, 'figure')} "
        f"({report.figures_with_ocr} with OCR text), {_n(report.ocr_pages, 'page')} OCR'd"
    )
    if report.warnings:
        text += f", {_n(len(report.warnings), 'warning')}"
    return text


def _name_taken(name: str, where: str) -> str:
    place = "is already in the library" if where == "library" else "is already being added"
    return f"a different manual named {name} {place}: rename the file, or ask support staff to replace it"


def _unlink(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def _drop_dead_queues(root: Path) -> None:
    """Remove the queue folders of processes that no longer run (a crashed or killed app)."""
    for folder in root.iterdir() if root.is_dir() else ():
        if not folder.name.isdigit() or int(folder.name) == os.getpid():
            continue
        try:
            os.kill(int(folder.name), 0)
            continue  # alive: another app on this store, with its own queue
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue  # alive, another user's


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


class UploadQueue:
    """Checks uploads, then ingests them one at a time in a worker thread.

    Waiting uploads are files under ``<store>/queue/<pid>/`` (not ``uploads/``, which every
    writer empties), capped in total and per browser: a queue of 200 MiB PDFs held in memory
    had no bound. The folder is this process's: folders of processes that are gone (a crash,
    a SIGKILL) are removed when a queue starts.
    """

    def __init__(
        self,
        engine: Engine,
        max_bytes: int,
        max_queued_bytes: int = 2 << 30,
        max_queued_per_owner: int = 600 << 20,
    ) -> None:
        self.engine = engine
        self.max_bytes = max_bytes
        self.max_queued_bytes = max_queued_bytes
        self.max_queued_per_owner = max_queued_per_owner
        self.spill_dir = engine.settings.store.path / "queue" / str(os.getpid())
        _drop_dead_queues(self.spill_dir.parent)
        self._jobs: dict[str, UploadJob] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None

    # -- submitting -------------------------------------------------------------------------

    def submit_upload(self, filename: str, data: bytes, *, may_replace: bool, owner: str = "") -> UploadJob:
        """Queue one uploaded file, or return it already rejected with the reason."""
        from ingest.pipeline import safe_manual_name

        name = safe_manual_name(filename)
        job = UploadJob(id=uuid.uuid4().hex, filename=filename, size=len(data), manual=name, owner=owner)
        if len(data) > self.max_bytes:
            return self._finish_early(
                job, "rejected", f"too large ({_mib(len(data))}; the limit is {_mib(self.max_bytes)})"
            )
        if not data:
            return self._finish_early(job, "rejected", "the file is empty")
        if PDF_MAGIC not in data[:MAGIC_WINDOW]:
            # By content, not by name: a renamed Word file or image is caught here.
            return self._finish_early(job, "rejected", "not a PDF (the file does not start like one)")
        job.sha256 = hashlib.sha256(data).hexdigest()
        with self._lock:
            same = next((m for m in self.engine.manuals() if m.sha256 == job.sha256), None)
            if same is not None:
                return self._finish_early(
                    job, "duplicate", f"already in the library as {same.name}", locked=True
                )
            twin = next((j for j in self._jobs.values() if j.active and j.sha256 == job.sha256), None)
            if twin is not None:
                return self._finish_early(
                    job, "duplicate", f"already being added as {twin.manual}", locked=True
                )
            taken = self._taken(name)
            if taken and not may_replace:
                return self._finish_early(job, "rejected", _name_taken(name, taken), locked=True)
            full = self._queue_full(job)
            if full:
                return self._finish_early(job, "rejected", full, locked=True)
            try:
                self.spill_dir.mkdir(parents=True, exist_ok=True)
                job.spilled = self.spill_dir / f"{job.id}.pdf"
                job.spilled.write_bytes(data)
            except OSError as err:
                _unlink(job.spilled)
                why = f"could not be queued ({err.strerror or err}): try again later"
                return self._finish_early(job, "rejected", why, locked=True)
            job.may_replace = may_replace
            self._jobs[job.id] = job
            self._forget_old()
        self._start()
        return job

    def _taken(self, name: str) -> str:
        """Where a manual of this name already is ('library' or 'queue'), '' when the name is free.

        Names compare case-insensitively: "P200.pdf" must not stand in for "p200.pdf". Uploads
        still queued count too, or a second upload of another file under the same name would
        replace the first as soon as both were ingested.
        """
        key = name.casefold()
        if any(m.name.casefold() == key for m in self.engine.manuals()):
            return "library"
        if any(j.active and j.kind == "upload" and j.manual.casefold() == key for j in self._jobs.values()):
            return "queue"
        return ""

    def _queue_full(self, job: UploadJob) -> str:
        """Why ``job`` would overfill the queue ('' when it fits); the lock is held."""
        waiting = [j for j in self._jobs.values() if j.active and j.spilled is not None]
        total = sum(j.size for j in waiting) + job.size
        if total > self.max_queued_bytes:
            return (
                f"the upload queue is full ({_mib(total - job.size)} waiting; the limit is "
                f"{_mib(self.max_queued_bytes)}): add it when the uploads before it are done"
            )
        mine = sum(j.size for j in waiting if j.owner == job.owner) + job.size
        if job.owner and mine > self.max_queued_per_owner:
            return (
                f"your uploads waiting to be added would pass {_mib(self.max_queued_per_owner)}: "
                "add it when yours before it are done"
            )
        return ""

    def _forget_old(self) -> None:
        # Finished jobs are kept a day for the pages that show them, then dropped.
        cutoff = time.time() - KEEP_FINISHED_S
        for old in [
            j.id for j in self._jobs.values() if j.finished_at is not None and j.finished_at < cutoff
        ]:
            del self._jobs[old]

    def submit_reingest(self, name: str) -> UploadJob:
        """Queue a fresh ingest of a library manual from its stored PDF (staff only: the caller checks)."""
        job = UploadJob(id=uuid.uuid4().hex, filename=name, kind="reingest", manual=name)
        with self._lock:
            self._jobs[job.id] = job
        self._start()
        return job

    def _finish_early(self, job: UploadJob, state: JobState, message: str, locked: bool = False) -> UploadJob:
        job.state, job.message, job.finished_at = state, message, time.time()
        if locked:
            self._jobs[job.id] = job
        else:
            with self._lock:
                self._jobs[job.id] = job
        return job

    # -- reading ----------------------------------------------------------------------------

    def jobs(self, ids: Sequence[str] | None = None) -> list[UploadJob]:
        with self._lock:
            found = (
                list(self._jobs.values()) if ids is None else [self._jobs[i] for i in ids if i in self._jobs]
            )
        return sorted(found, key=lambda j: j.submitted_at)

    def busy(self) -> bool:
        with self._lock:
            return any(j.active for j in self._jobs.values())

    # -- the worker -------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="manualrag-ingest", daemon=True)
                self._worker.start()
        self._wake.set()

    def _next(self) -> UploadJob | None:
        with self._lock:
            return next(
                (j for j in sorted(self._jobs.values(), key=lambda j: j.submitted_at) if j.state == "queued"),
                None,
            )

    def _work(self) -> None:
        while True:
            job = self._next()
            if job is None:
                # Clear before the second look: a submit in between sets it again.
                self._wake.clear()
                if self._next() is None:
                    self._wake.wait()
                continue
            self._run(job)

    def _run(self, job: UploadJob) -> None:
        job.state = "running"
        job.stage = "reading"

        def progress(stage: str, done: int, total: int) -> None:
            job.stage, job.done, job.total = stage, done, total

        try:
            if job.kind == "reingest":
                report = self.engine.reingest(job.manual, progress)
            elif not job.may_replace and any(
                m.name.casefold() == job.manual.casefold() for m in self.engine.manuals()
            ):
                # Added by another process (`manualrag ingest`) while this one waited its turn.
                job.state, job.message = "rejected", _name_taken(job.manual, "library")
                return
            else:
                assert job.spilled is not None
                report = self.engine.ingest_upload(job.spilled.read_bytes(), job.filename, progress)
            job.report = report
            if report.status == "failed":
                job.state, job.message = "failed", report.error or "could not be read"
            else:
                job.manual = report.name or job.manual
                job.state = "done"
                verb = {"ingested": "added", "replaced": "replaced", "unchanged": "unchanged"}[report.status]
                job.message = f"{verb}: {summary(report)}"
        except ManualragError as err:
            job.state, job.message = "failed", str(err)
        except Exception as err:  # noqa: BLE001 - one line for the page, the traceback for the log
            log.exception("ingest of upload %r failed", job.filename)
            job.state, job.message = "failed", f"unexpected error ({type(err).__name__}); nothing was kept"
        finally:
            _unlink(job.spilled)  # the store keeps its own copy
            job.finished_at = time.time()
