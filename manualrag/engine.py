"""The composition root: builds the embedder, store and retriever once, lazily.

The CLI and the web app both talk to an ``Engine``; nothing else wires parts together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

from manualrag.settings import Settings
from manualrag.types import Answer, IngestReport, ManualInfo


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
        from rag.embedders import embedder_id
        from rag.store import Store

        return Store(self.settings, embedder_id(self.settings.embed.model))

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
        uploads.mkdir(parents=True, exist_ok=True)
        path = uploads / f"{uuid.uuid4().hex}.pdf"
        path.write_bytes(data)
        try:
            with self.store.writer():
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
        return self.retriever.search(query, manuals, k, kinds)

    @cached_property
    def answerer(self):  # type: ignore[no-untyped-def]
        """The answer stage over the configured endpoint or the embedded model (started lazily)."""
        from rag.answer import Answerer
        from rag.llm import resolve_chat_model

        chat = resolve_chat_model(self.settings, self.settings.store.path / "runtime")
        return Answerer(chat, self.settings.llm)

    def ask(self, question: str, manuals: Sequence[str] | None = None, history: Sequence[Answer] = ()):  # type: ignore[no-untyped-def]
        """Retrieve, then stream the answer: ``Status`` / ``Token`` events, then one ``Answer``.

        Follow-ups are rewritten into a standalone query from the earlier turns first,
        so "and the tail lamp?" searches for what it means.
        """
        from rag.answer import rewrite_query

        query = question
        if history:
            query = rewrite_query(history, question, self.answerer.chat)
        result = self.search(query, manuals)
        for event in self.answerer.ask(question, result.hits, history):
            if isinstance(event, Answer):
                event.retrieval_s = result.seconds
                event.query = query
            yield event

    def close(self) -> None:
        if "answerer" in self.__dict__:
            self.answerer.chat.close()

    def manuals(self) -> list[ManualInfo]:
        return self.store.manuals()

    def remove(self, name: str) -> bool:
        store = self.store
        with store.write_lock():
            return store.remove(Path(name).name)
