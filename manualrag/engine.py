"""The composition root: builds the embedder, store and retriever once, lazily.

The CLI and the web app both talk to an ``Engine``; nothing else wires parts together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

from manualrag.settings import Settings
from manualrag.types import IngestReport, ManualInfo


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

    def search(self, query: str, manuals: Sequence[str] | None = None, k: int | None = None,
               kinds: Sequence[str] | None = None):  # type: ignore[no-untyped-def]
        return self.retriever.search(query, manuals, k, kinds)

    def manuals(self) -> list[ManualInfo]:
        return self.store.manuals()

    def remove(self, name: str) -> bool:
        store = self.store
        with store.write_lock():
            return store.remove(Path(name).name)
