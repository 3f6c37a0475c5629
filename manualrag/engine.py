"""The composition root: builds the embedder, store and retriever once, lazily.

The CLI and the web app both talk to an ``Engine``; nothing else wires parts together.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

from manualrag import logs
from manualrag.errors import QuestionTooLong
from manualrag.settings import Settings
from manualrag.types import Answer, IngestReport, ManualInfo

log = logging.getLogger("manualrag.requests")


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    @cached_property
    def embedder(self):  # type: ignore[no-untyped-def]
        from rag.embedders import get_embedder

        return get_embedder(self.settings.embed)

    @cached_property
    def store(self):  # type: ignore[no-untyped-def]
        # Opening the store needs the embedder's id, not the model: `list` and
        # `remove` stay fast because torch is never imported for them.
        from rag.embedders import settings_embedder_id
        from rag.store import Store

        return Store(self.settings, settings_embedder_id(self.settings.embed))

    @cached_property
    def retriever(self):  # type: ignore[no-untyped-def]
        from rag.retrieve import Retriever

        return Retriever(self.store, self.embedder, self.settings.retrieval)

    def ingest(
        self, paths: Sequence[Path], progress_for: Callable[[Path], Callable[[str, int, int], None]] | None = None
    ) -> list[IngestReport]:
        from ingest.pipeline import ingest_paths

        return ingest_paths(paths, self.settings, self.store, self.embedder, progress_for)

    def ingest_upload(
        self, data: bytes, filename: str, progress: Callable[[str, int, int], None] | None = None
    ) -> IngestReport:
        """Ingest an uploaded file. Its name is only a label: it is stored under a generated path."""
        import uuid

        from ingest.pipeline import ingest_file, safe_manual_name

        name = safe_manual_name(filename)
        uploads = self.store.root / "uploads"
        path = uploads / f"{uuid.uuid4().hex}.pdf"
        # Written under the write lock: a writer that starts finds only files nobody is using
        # in uploads/ (left by a crash or a full disk) and removes them (Store.purge).
        with self.store.writer():
            try:
                uploads.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                kwargs = {"progress": progress} if progress else {}
                report = ingest_file(path, self.settings, self.store, self.embedder, name=name, **kwargs)
            finally:
                path.unlink(missing_ok=True)  # the store keeps its own copy of what it ingested
        report.path = filename
        return report

    def reingest(self, name: str, progress: Callable[[str, int, int], None] | None = None) -> IngestReport:
        """Ingest a library manual again from its stored copy (after a pipeline or settings change).

        The old generation stays visible until the new one commits, as for any ingest.
        """
        from ingest.pipeline import ingest_file

        from manualrag.errors import ManualNotFound

        with self.store.writer():
            info = self.store.manual(name)
            if info is None:
                raise ManualNotFound(name)
            kwargs = {"progress": progress} if progress else {}
            source = self.store.abs_path(info.pdf_path)
            report = ingest_file(
                source, self.settings, self.store, self.embedder, name=name, force=True, **kwargs
            )
        report.path = name
        return report

    def search(self, query: str, manuals: Sequence[str] | None = None, k: int | None = None,
               kinds: Sequence[str] | None = None):  # type: ignore[no-untyped-def]
        self.check_question(query)
        result = self.retriever.search(query, manuals, k, kinds)
        logs.event(log, "search", retrieve_ms=logs.ms(result.seconds), manuals=list(manuals or []) or "all",
                   kinds=list(kinds or []) or "all", hits=len(result.hits),
                   pages=len({(h.manual, h.page) for h in result.hits}))
        return result

    def search_image(self, image: Path, manuals: Sequence[str] | None = None, k: int | None = None):  # type: ignore[no-untyped-def]
        """Figures that look like a photo, with a passage of each one's page."""
        from manualrag.errors import EmbedderUnavailable
        from rag.embedders import IMAGE_SEARCH_HINT, accepts_images

        if not accepts_images(self.settings.embed.model):
            raise EmbedderUnavailable(IMAGE_SEARCH_HINT)  # before loading a model that could not do it
        result = self.retriever.search_image(image, manuals, k)
        logs.event(log, "search_image", retrieve_ms=logs.ms(result.seconds), manuals=list(manuals or []) or "all",
                   hits=len(result.hits))
        return result

    @cached_property
    def answerer(self):  # type: ignore[no-untyped-def]
        """The answer stage over the configured endpoint or the embedded model (started lazily)."""
        from rag.answer import Answerer
        from rag.llm import resolve_chat_model

        chat = resolve_chat_model(self.settings, self.settings.store.path / "runtime")
        return Answerer(chat, self.settings.llm)

    def check_question(self, question: str) -> None:
        """Refuse a question over ``retrieval.max_question_chars`` before any model or index is touched."""
        limit = self.settings.retrieval.max_question_chars
        if len(question) > limit:
            raise QuestionTooLong(len(question), limit)

    def ask(self, question: str, manuals: Sequence[str] | None = None, history: Sequence[Answer] = ()):  # type: ignore[no-untyped-def]
        """Retrieve, then stream the answer: one ``Evidence``, ``Status`` / ``Token`` events, then one ``Answer``.

        Follow-ups are rewritten into a standalone query from the earlier turns first,
        so "and the tail lamp?" searches for what it means. A question that is too long
        raises ``QuestionTooLong`` here, at the call, not at the first event.
        """
        self.check_question(question)
        return self._ask(question, manuals, history)

    def _ask(self, question: str, manuals: Sequence[str] | None, history: Sequence[Answer]):  # type: ignore[no-untyped-def]
        from rag.answer import Evidence, rewrite_query

        started = time.perf_counter()
        query = question
        if history:
            query = rewrite_query(history, question, self.answerer.chat)
        rewrite_s = time.perf_counter() - started
        result = self.search(query, manuals)
        yield Evidence(result.hits, question)
        hits, pages, not_covered, meaning = self.context(question, result, manuals)
        for event in self.answerer.ask(question, hits, history, pages, not_covered, meaning, result.pages_named):
            if isinstance(event, Answer):
                event.retrieval_s = result.seconds
                event.query = query
                self._log_answer(event, manuals, rewrite_s if history else None, time.perf_counter() - started)
            yield event

    def context(self, question: str, result, manuals: Sequence[str] | None):  # type: ignore[no-untyped-def]
        """What the answer stage reads besides the question: the hits (catalog facts first),
        the text of their pages, the codes the question names that no manual mentions, and
        the embedder's cosines to the question (evidence by meaning; None when turned off)."""
        from rag.evidence import by_meaning

        pages = self.retriever.page_texts(result.hits, overleaf=True)
        hits = self.retriever.catalog_facts(question, result) + result.hits
        embedder = self.embedder
        wanted = self.settings.llm.evidence_by_meaning and hits and not embedder.remote
        # Retrieval embedded the question already, unless a follow-up was rewritten first.
        vector = result.vector if result.query == question.strip() else None
        meaning = by_meaning(embedder, question, vector) if wanted else None
        return hits, pages, self.retriever.not_covered(question, manuals), meaning

    def _log_answer(self, answer: Answer, manuals: Sequence[str] | None, rewrite_s: float | None,
                    total_s: float) -> None:
        # Timings and counts only: questions and answers stay in app.db, not in the log.
        logs.event(
            log, "ask", logging.WARNING if answer.error else logging.INFO,
            manuals=list(manuals or []) or "all", hits=len(answer.hits), sources=answer.sources,
            citations=len(answer.citations), cited_pages=len({(c.manual, c.page) for c in answer.citations}),
            answerable=answer.answerable, model=answer.model, error=answer.error or None,
            rewrite_ms=logs.ms(rewrite_s), retrieve_ms=logs.ms(answer.retrieval_s), load_ms=logs.ms(answer.load_s),
            first_token_ms=logs.ms(answer.first_token_s), llm_ms=logs.ms(answer.total_s), total_ms=logs.ms(total_s),
        )

    def close(self) -> None:
        if "answerer" in self.__dict__:
            self.answerer.chat.close()

    def manuals(self) -> list[ManualInfo]:
        return self.store.manuals()

    def remove(self, name: str) -> bool:
        store = self.store
        with store.write_lock():
            return store.remove(Path(name).name)
