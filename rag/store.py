"""The store: one Chroma collection for text and figures, plus the library catalog.

Chroma holds the vectors (embedded ``PersistentClient`` or a server through
``HttpClient``); the SQLite library beside it holds the catalog, the keyword index
and the records' display data (see rag/library.py for why and for the visibility
rule that makes ingest crash-safe). Searches only see generations the catalog
points at, so a half-written manual is never visible.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from manualrag.errors import StoreBusy, StoreError
from manualrag.logs import safe_url
from manualrag.settings import INGEST_VERSION, Settings
from manualrag.types import ManualInfo, Record
from rag.library import Library
from rag.shared_chroma import ProcessSync, forget_cached_client

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
log = logging.getLogger(__name__)

ADD_BATCH = 512  # Chroma rejects very large single adds; this is well under its limit
# A figure embedded by its pixels has a second vector in the collection, under the
# figure record's id plus this suffix; search maps it back, so the figure shows once.
IMAGE_SUFFIX = "#image"


def chroma_client(settings: Settings):  # type: ignore[no-untyped-def]
    """The embedded client on ``<store>/chroma``, or the configured server's (checked alive)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    url = settings.store.chroma_url
    if url:
        from urllib.parse import urlparse

        parsed = urlparse(url)
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname or "127.0.0.1",
                port=parsed.port or 8000,
                ssl=parsed.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as err:  # noqa: BLE001 - connection errors come in many types
            raise StoreError(
                f"cannot reach the Chroma server at {safe_url(url)} ({type(err).__name__}); start it "
                "(chroma run --path DIR --port N) or unset MANUALRAG_STORE__CHROMA_URL"
            ) from err
        return client
    path = settings.store.path / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class Store:
    def __init__(self, settings: Settings, embedder_id: str) -> None:
        self.settings = settings
        self.root = settings.store.path
        self.root.mkdir(parents=True, exist_ok=True)
        self.embedder_id = embedder_id
        self.collection_name = settings.collection_name(embedder_id)
        self.library = Library(self.root / "library.db")
        # Embedded Chroma shared with other processes (app and CLI): see rag/shared_chroma.py.
        self._sync = None if settings.store.chroma_url else ProcessSync(self.root, self.library)
        self._open()

    def _open(self) -> None:
        settings, embedder_id = self.settings, self.embedder_id
        self._client = chroma_client(settings)
        metadata: dict[str, str | int] = {
            "hnsw:space": "cosine", "embedder": embedder_id, "ingest_version": INGEST_VERSION
        }
        if settings.store.chroma_url:
            # On a server, the collection is marked with the library (catalog, keyword index,
            # generations) that writes it: a second library writing the same collection would
            # purge and hide records it does not know, so it is refused instead.
            metadata["library"] = self.library.library_id()
        self.collection = self._client.get_or_create_collection(
            self.collection_name, embedding_function=None, metadata=metadata
        )
        owner = (self.collection.metadata or {}).get("library")
        if settings.store.chroma_url and owner != metadata["library"]:
            raise StoreError(
                f"the collection {self.collection_name} on {safe_url(settings.store.chroma_url)} belongs "
                "to another "
                f"manualrag library, not the one in {self.root}: point MANUALRAG_STORE__PATH at the library "
                "that wrote it, or give this one its own MANUALRAG_STORE__COLLECTION_PREFIX"
            )

    # -- paths -------------------------------------------------------------------------

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    @property
    def pdf_dir(self) -> Path:
        return self.root / "manuals"

    def abs_path(self, relative: str) -> Path:
        return self.root / relative

    # -- writer lock -------------------------------------------------------------------

    @contextmanager
    def write_lock(self, wait: bool = True) -> Iterator[None]:
        """One writer per store folder at a time, across processes.

        Readers never take it: the catalog's visibility rule keeps them consistent.
        """
        path = self.root / "write.lock"
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                busy = f"another manualrag process is writing to {self.root} (an ingest, or an upload in the app)"
                if not wait:
                    raise StoreBusy(f"{busy}; wait for it to finish") from err
                # Say why nothing happens: the other writer may take minutes.
                log.warning("%s; waiting for it to finish", busy)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._current()  # writing on a stale index would lose the other writer's vectors
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def writer(self) -> Iterator[None]:
        """The write lock, after finishing what a crashed writer left behind."""
        with self.write_lock():
            self.purge()
            yield

    # -- catalog -----------------------------------------------------------------------

    def manuals(self) -> list[ManualInfo]:
        return self.library.manuals(self.collection_name)

    def manual(self, name: str) -> ManualInfo | None:
        return self.library.manual(self.collection_name, name)

    def visible_ids(self, names: Sequence[str] | None = None) -> list[str]:
        return self.library.visible_ids(self.collection_name, names)

    # -- writing a generation -------------------------------------------------------------

    def begin(self, name: str) -> str:
        ingest_id = uuid.uuid4().hex
        self.library.begin(self.collection_name, name, ingest_id)
        return ingest_id

    def add(self, ingest_id: str, records: Sequence[Record], vectors: np.ndarray) -> None:
        """Write records of a pending generation: invisible until ``commit``."""
        if len(records) != len(vectors):
            raise ValueError("one vector per record")
        with self._changing():
            for start in range(0, len(records), ADD_BATCH):
                part = records[start : start + ADD_BATCH]
                self.collection.add(
                    ids=[r.id for r in part],
                    embeddings=vectors[start : start + ADD_BATCH].astype(np.float32),
                    metadatas=[self._metadata(ingest_id, r) for r in part],
                    documents=[r.embed_text or r.text for r in part],
                )
        self.library.add_records(self.collection_name, ingest_id, records)

    def add_images(self, ingest_id: str, figures: Sequence[Record], vectors: np.ndarray) -> None:
        """The pixel vectors of figure records already added: same generation, same collection.

        The catalog and keyword index keep one row per figure (its words); only Chroma
        holds the second vector, tagged ``modality: image`` and linked by ``figure_id``.
        """
        if len(figures) != len(vectors):
            raise ValueError("one vector per figure")
        if not figures:
            return
        with self._changing():
            for start in range(0, len(figures), ADD_BATCH):
                part = figures[start : start + ADD_BATCH]
                self.collection.add(
                    ids=[f"{r.id}{IMAGE_SUFFIX}" for r in part],
                    embeddings=vectors[start : start + ADD_BATCH].astype(np.float32),
                    metadatas=[
                        self._metadata(ingest_id, r) | {"modality": "image", "figure_id": r.id} for r in part
                    ],
                    documents=[r.image for r in part],
                )

    def _metadata(self, ingest_id: str, record: Record) -> dict[str, str | int | float | bool]:
        # Provenance travels with each vector, so a Chroma server's data is self-describing.
        return {
            "ingest_id": ingest_id,
            "manual": record.manual,
            "page": record.page,
            "kind": record.kind,
            "figure": record.figure,
            "section": record.section[:500],
            "image": record.image,
            "bbox": ",".join(f"{v:.1f}" for v in record.bbox) if record.bbox else "",
            "embedder": self.embedder_id,
            "ingest_version": INGEST_VERSION,
            "modality": "text",  # what the vector was computed from; figure pixels say "image"
        }

    def commit(self, info: ManualInfo) -> None:
        """Make the pending generation visible and retire the previous one."""
        self.library.commit(self.collection_name, info)
        self.purge()

    def abandon(self, ingest_id: str) -> None:
        self.library.abandon(ingest_id)
        self.purge()

    def remove(self, name: str) -> bool:
        removed = self.library.remove(self.collection_name, name)
        if removed is None:
            return False
        self.purge()
        return True

    def purge(self) -> int:
        """Delete records of retired, abandoned or crashed generations. Returns how many ids."""
        purged = 0
        for ingest_id, collection in self.library.stale():
            with self._changing():
                if collection == self.collection_name:
                    self.collection.delete(where={"ingest_id": ingest_id})
                else:
                    try:
                        self._client.get_collection(collection).delete(where={"ingest_id": ingest_id})
                    except Exception:  # noqa: BLE001 - the other collection may be gone already
                        pass
            shutil.rmtree(self.figures_dir / ingest_id, ignore_errors=True)
            self.library.forget(ingest_id)
            purged += 1
        self._drop_unused_pdfs()
        self._drop_uploads()
        return purged

    def drop_stale_uploads(self) -> int:
        """At the app's start: drop what a crash or a full disk left in ``uploads/``; how many files.
        Skipped while another process writes (the next writer's ``purge`` does it then)."""
        try:
            with self.write_lock(wait=False):
                return self._drop_uploads()
        except StoreBusy:
            return 0

    def _drop_uploads(self) -> int:
        # An upload's file is written and deleted under the write lock (Engine.ingest_upload),
        # so whatever is there when a writer starts belongs to nobody.
        dropped = 0
        uploads = self.root / "uploads"
        for path in uploads.iterdir() if uploads.is_dir() else ():
            if path.is_file():
                path.unlink(missing_ok=True)
                dropped += 1
        if dropped:
            log.info("removed %d stale upload file(s) from %s", dropped, uploads)
        return dropped

    def _drop_unused_pdfs(self) -> None:
        if not self.pdf_dir.exists():
            return
        used = {Path(m.pdf_path).name for c in self.library.collections() for m in self.library.manuals(c)}
        for pdf in self.pdf_dir.glob("*.pdf"):
            if pdf.name not in used and not pdf.name.startswith("."):
                pdf.unlink(missing_ok=True)

    # -- reading -------------------------------------------------------------------------

    def dense(
        self,
        vector: np.ndarray,
        ingest_ids: Sequence[str],
        limit: int,
        kinds: Sequence[str] | None = None,
        whole_library: bool = False,
        modality: str | None = None,
    ) -> list[tuple[str, float]]:
        """Nearest records among visible generations: (id, cosine similarity).

        ``modality`` "text" or "image" searches only vectors made from words or only
        figure pixels (None: both). Pixel vectors come back as their figure record's id,
        each figure once.

        A metadata filter makes Chroma test every candidate against the id list, which
        grows with the library (p95 586 ms at 100k records, 177 manuals). Across the
        whole library almost every record is visible, so the search runs unfiltered
        with some slack and drops the few invisible ones (a pending ingest) afterwards.
        """
        if not ingest_ids:
            return []
        # After the caller read the visible generations: one committed by another process
        # since this one last looked is in the files but not yet in this process's index.
        self._current()
        kind_clause = ({"kind": {"$in": list(kinds)}} if len(kinds) > 1 else {"kind": kinds[0]}) if kinds else None
        clauses = [c for c in (kind_clause, {"modality": modality} if modality else None) if c]
        if whole_library:
            visible = set(ingest_ids)
            where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
            found = self._query(vector, limit * 2, where, with_generation=True)
            kept = [(rid, sim) for rid, sim, gen in found if gen in visible]
            if len(kept) >= limit or len(found) < limit * 2:
                return _once_per_record(kept[:limit])
            # An ingest in progress crowds the top: fall back to the exact filter.
        gen_clause = {"ingest_id": {"$in": list(ingest_ids)}} if len(ingest_ids) > 1 else {"ingest_id": ingest_ids[0]}
        where = gen_clause if not clauses else {"$and": [gen_clause, *clauses]}
        return _once_per_record([(rid, sim) for rid, sim, _ in self._query(vector, limit, where)])

    def _query(
        self, vector: np.ndarray, n: int, where: dict[str, object] | None, with_generation: bool = False
    ) -> list[tuple[str, float, str]]:
        result = self.collection.query(
            query_embeddings=[vector.astype(np.float32)],
            n_results=n,
            where=where,
            include=["distances", "metadatas"] if with_generation else ["distances"],
        )
        ids = result["ids"][0]
        distances = result["distances"][0] if result["distances"] else [1.0] * len(ids)
        metadatas = result["metadatas"][0] if with_generation and result["metadatas"] else [{}] * len(ids)
        return [
            (i, 1.0 - float(d), str((m or {}).get("ingest_id", "")))
            for i, d, m in zip(ids, distances, metadatas, strict=True)
        ]

    def count(self) -> int:
        self._current()
        return int(self.collection.count())

    def chroma_collection(self, name: str):  # type: ignore[no-untyped-def]
        """Any collection of this store's Chroma by name (the library has one per embedder)."""
        self._current()
        return self._client.get_collection(name)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by record id (ids not in the collection are left out)."""
        self._current()
        got = self.collection.get(ids=list(ids), include=["embeddings"])
        return {rid: np.asarray(vector) for rid, vector in zip(got["ids"], got["embeddings"], strict=True)}

    # -- other processes -----------------------------------------------------------------

    def _current(self) -> None:
        """Reload the embedded index if another process wrote to it since this one looked."""
        if self._sync is None:
            return
        with self._sync.mutex:
            moved = self._sync.moved()
            if moved is None:
                return
            with self._sync.reloading():
                forget_cached_client(self.root / "chroma")
                self._open()
            self._sync.seen(moved)

    @contextmanager
    def _changing(self) -> Iterator[None]:
        if self._sync is None:
            yield
            return
        self._current()
        with self._sync.changing():
            yield


def _once_per_record(found: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Pixel vectors as their figure record's id; a figure found twice keeps its best score."""
    seen: set[str] = set()
    out: list[tuple[str, float]] = []
    for rid, sim in found:
        rid = rid.removesuffix(IMAGE_SUFFIX)
        if rid not in seen:
            seen.add(rid)
            out.append((rid, sim))
    return out
