"""`manualrag backup` and `manualrag restore`: the whole library in one checked archive.

What goes in: the catalog and keyword index (library.db) and the conversations and
feedback (app.db), both copied with SQLite's backup API so a live app's writes never
tear them; the stored PDFs and cropped figures; and every Chroma collection the
library uses, exported through the Chroma API (ids, documents, metadata, float32
vectors) rather than as Chroma's own files. An export restores into an embedded store
or a server alike (so a backup also moves a library from one to the other) and does
not depend on Chroma's on-disk format. The backup holds the store's write lock, so
no ingest or removal runs while it is taken; searches and questions go on.

A manifest (format, versions, embedder, counts, a sha256 per file) closes the
archive; restore checks every file against it before touching the target, restores
only into an empty store folder unless forced, imports the vectors first and puts the
catalog in place last (a crash in between leaves an empty-looking library, never a
catalog pointing at missing vectors), then compares the counts.
"""

from __future__ import annotations

import fcntl
import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from manualrag.errors import ManualragError
from manualrag.settings import INGEST_VERSION, Settings
from ingest.pipeline import sha256_file

FORMAT = 1
MANIFEST = "manifest.json"
BATCH = 1000  # records per Chroma get/add call
# Store entries that belong to the library; anything else in the folder is left alone.
OWNED = (
    "library.db",
    "library.db-wal",
    "library.db-shm",
    "app.db",
    "app.db-wal",
    "app.db-shm",
    "chroma",
    "chroma.lock",
    "figures",
    "manuals",
    "write.lock",
)


class BackupError(ManualragError):
    pass


@dataclass
class Summary:
    manifest: dict[str, Any]
    path: Path
    seconds: float
    notes: list[str]

    def line(self, verb: str) -> str:
        c = self.manifest["counts"]
        return (
            f"{verb} {c['manuals']} manuals, {c['records']} records, {c['figures']} figures, "
            f"{c['conversations']} conversations ({c['turns']} answers, {c['feedback']} ratings)"
        )


def _sqlite_copy(src: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite file (WAL and all), as one self-contained file."""
    source = sqlite3.connect(src, timeout=30)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        source.close()


def _counts(library_db: Path, app_db: Path | None, root: Path) -> dict[str, int]:
    conn = sqlite3.connect(library_db)
    try:
        counts = {
            "manuals": conn.execute("SELECT count(*) FROM manuals").fetchone()[0],
            "records": conn.execute("SELECT count(*) FROM records").fetchone()[0],
        }
    finally:
        conn.close()
    counts["conversations"] = counts["turns"] = counts["feedback"] = 0
    if app_db is not None and app_db.exists():
        conn = sqlite3.connect(app_db)
        try:
            for table, key in (
                ("conversations", "conversations"),
                ("turns", "turns"),
                ("feedback", "feedback"),
            ):
                counts[key] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        except sqlite3.OperationalError:
            pass  # an app.db from before a table existed
        finally:
            conn.close()
    counts["figures"] = (
        sum(1 for _ in (root / "figures").rglob("*.png")) if (root / "figures").exists() else 0
    )
    counts["pdfs"] = sum(1 for _ in (root / "manuals").glob("*.pdf")) if (root / "manuals").exists() else 0
    return counts


def _mode(path: Path, writing: bool) -> str:
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "w:gz" if writing else "r:gz"
    if name.endswith(".tar"):
        return "w" if writing else "r:*"
    raise BackupError(f"{path.name}: a backup is a .tar or .tar.gz file")


# -- backup ---------------------------------------------------------------------------------------


def _export_collection(collection: Any, folder: Path) -> dict[str, Any]:
    """Write a collection's records (records.jsonl) and vectors (embeddings.npy, same order)."""
    folder.mkdir(parents=True)
    ids = collection.get(include=[])["ids"]
    vectors: list[np.ndarray] = []
    with open(folder / "records.jsonl", "w", encoding="utf-8") as out:
        for start in range(0, len(ids), BATCH):
            got = collection.get(
                ids=ids[start : start + BATCH], include=["embeddings", "metadatas", "documents"]
            )
            for rid, document, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                out.write(
                    json.dumps({"id": rid, "document": document, "metadata": meta}, ensure_ascii=False) + "\n"
                )
            vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
    np.save(folder / "embeddings.npy", matrix)
    return {"metadata": dict(collection.metadata or {}), "records": len(ids), "dim": int(matrix.shape[1])}


def backup(settings: Settings, embedder_id: str, dest: Path) -> Summary:
    from rag.store import Store

    began = time.perf_counter()
    mode = _mode(dest, writing=True)
    if dest.exists():
        raise BackupError(f"{dest} exists already: choose a new file name")
    dest.parent.mkdir(parents=True, exist_ok=True)
    root = settings.store.path
    if not (root / "library.db").exists():
        raise BackupError(f"{root} holds no library to back up (no library.db)")
    store = Store(settings, embedder_id)
    try:
        # The write lock keeps ingest and removal out while the copy is taken; purging
        # first drops a crashed run's leftovers, so the catalog and the vectors agree.
        with store.writer(), tempfile.TemporaryDirectory(dir=dest.parent, prefix=".manualrag-backup-") as tmp:
            stage = Path(tmp)
            _sqlite_copy(store.library.path, stage / "library.db")
            app_db = root / "app.db"
            if app_db.exists():
                _sqlite_copy(app_db, stage / "app.db")
            collections: dict[str, Any] = {}
            for name in sorted(set(store.library.collections()) | {store.collection_name}):
                try:
                    collection = store.chroma_collection(name)
                except Exception as err:  # noqa: BLE001 - Chroma's error types vary by backend
                    raise BackupError(
                        f"the library's collection {name} is missing from Chroma ({err})"
                    ) from err
                collections[name] = _export_collection(collection, stage / "chroma" / name)
            manifest: dict[str, Any] = {
                "format": FORMAT,
                "app": "manualrag",
                "version": importlib_metadata.version("manualrag"),
                "ingest_version": INGEST_VERSION,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "embedder": embedder_id,
                "collection": store.collection_name,
                "source": "server" if settings.store.chroma_url else "embedded",
                "counts": _counts(stage / "library.db", stage / "app.db", root),
                "collections": collections,
                "files": {},
            }
            partial = dest.with_name(f".{dest.name}.partial")
            with tarfile.open(partial, mode) as tar:
                for path in sorted(p for p in stage.rglob("*") if p.is_file()):
                    _add(tar, path, path.relative_to(stage).as_posix(), manifest)
                for folder in ("manuals", "figures"):
                    for path in _files(root / folder):
                        _add(tar, path, path.relative_to(root).as_posix(), manifest)
                data = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime = len(data), int(time.time())
                tar.addfile(info, io.BytesIO(data))
            partial.replace(dest)  # a backup file is either complete or absent
    finally:
        store.library.close()
    return Summary(manifest, dest, time.perf_counter() - began, [])


def _files(folder: Path) -> list[Path]:
    # Dot files are half-written temporaries (a PDF being copied in), not library data.
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _add(tar: tarfile.TarFile, path: Path, arcname: str, manifest: dict[str, Any]) -> None:
    manifest["files"][arcname] = sha256_file(path)
    tar.add(path, arcname=arcname, recursive=False)


# -- restore --------------------------------------------------------------------------------------


def read_manifest(src: Path, stage: Path) -> dict[str, Any]:
    """Unpack ``src`` into ``stage`` and check every file against the manifest."""
    if not src.is_file():
        raise BackupError(f"{src}: no such backup file")
    try:
        with tarfile.open(src, _mode(src, writing=False)) as tar:
            tar.extractall(stage, filter="data")  # no absolute paths, links out or devices
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise BackupError(f"{src} is not a readable backup archive ({type(err).__name__}: {err})") from err
    try:
        manifest = json.loads((stage / MANIFEST).read_text())
        files: dict[str, str] = manifest["files"]
        if manifest.get("app") != "manualrag" or not isinstance(files, dict):
            raise ValueError("not a manualrag manifest")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BackupError(f"{src} is not a manualrag backup (no valid {MANIFEST}: {err})") from err
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"{src} has backup format {manifest.get('format')}; this manualrag reads format {FORMAT}"
        )
    present = {p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()} - {MANIFEST}
    if present != set(files):
        odd = sorted(present ^ set(files))[:3]
        raise BackupError(f"{src} is damaged: its files do not match the manifest ({', '.join(odd)})")
    for name, digest in files.items():
        if sha256_file(stage / name) != digest:
            raise BackupError(f"{src} is damaged: {name} does not match its checksum")
    return manifest


def restore(settings: Settings, src: Path, force: bool = False) -> Summary:
    from rag.library import Library
    from rag.shared_chroma import forget_cached_client
    from rag.store import chroma_client

    began = time.perf_counter()
    root = settings.store.path
    if root.exists() and any(root.iterdir()) and not force:
        raise BackupError(
            f"{root} is not empty: restore into an empty store folder, or pass --force to "
            "replace the library there"
        )
    root.mkdir(parents=True, exist_ok=True)
    # Forced means the folder holds a library, which a running process may be writing to; without
    # --force the folder is empty, so nothing can be writing there (and a failed restore leaves it so).
    with (
        _store_unused(root) if force else nullcontext(),
        tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{root.name}.restore-") as tmp,
    ):
        stage = Path(tmp)
        manifest = read_manifest(src, stage)
        if force:
            _clear(root)
        if not settings.store.chroma_url:
            # chromadb keeps one client per folder per process: a folder just cleared or
            # still unborn must be opened afresh, not through a client of what was there.
            forget_cached_client(root / "chroma")
        library = Library(stage / "library.db")  # adds tables a newer manualrag expects
        owner = library.library_id() if settings.store.chroma_url else None
        library.close()
        client = chroma_client(settings)
        for name, saved in manifest["collections"].items():
            _import_collection(client, name, saved, stage / "chroma" / name, owner, force)
        # The catalog last: until it is in place, the restored vectors are invisible.
        for entry in ("manuals", "figures", "app.db", "library.db"):
            if (stage / entry).exists():
                (stage / entry).replace(root / entry)
    notes = _verify(settings, manifest, client)
    return Summary(manifest, root, time.perf_counter() - began, notes)


@contextmanager
def _store_unused(root: Path) -> Iterator[None]:
    """Hold the store's write lock (the same ``write.lock`` as ``Store.write_lock``) for the whole
    restore, or refuse at once: replacing a library under a running ingest or upload would mix
    two libraries, and waiting could let it finish just to be thrown away."""
    with open(root / "write.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"{root} is in use: another manualrag process is writing to it. Stop `manualrag ingest`, "
                "`manualrag remove` and `manualrag serve` on this store (an upload in the app writes too), "
                "then restore again"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clear(root: Path) -> None:
    for name in OWNED:
        if name == "write.lock":
            continue  # held by this restore: deleting it would let a second writer lock a new file
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _import_collection(
    client: Any, name: str, saved: dict[str, Any], folder: Path, owner: str | None, force: bool
) -> None:
    existing = {c.name for c in client.list_collections()}
    if name in existing:
        if client.get_collection(name).count() and not force:
            raise BackupError(
                f"the Chroma server already has a collection {name} with records: pass --force to replace it"
            )
        client.delete_collection(name)
    metadata = dict(saved["metadata"])
    if owner is not None:
        metadata["library"] = owner  # the server collection belongs to the restored library
    collection = client.create_collection(name, embedding_function=None, metadata=metadata or None)
    vectors = np.load(folder / "embeddings.npy")
    ids: list[str] = []
    documents: list[str] = []
    metadatas: list[dict[str, Any]] = []

    def flush(end: int) -> None:
        start = end - len(ids)
        collection.add(ids=ids, embeddings=vectors[start:end], documents=documents, metadatas=metadatas)
        ids.clear()
        documents.clear()
        metadatas.clear()

    with open(folder / "records.jsonl", encoding="utf-8") as lines:
        n = 0
        for n, line in enumerate(lines, 1):
            row = json.loads(line)
            ids.append(row["id"])
            documents.append(row["document"])
            metadatas.append(row["metadata"])
            if len(ids) == BATCH:
                flush(n)
        if ids:
            flush(n)


def _verify(settings: Settings, manifest: dict[str, Any], client: Any) -> list[str]:
    for name, saved in manifest["collections"].items():
        count = client.get_collection(name).count()
        if count != saved["records"]:
            raise BackupError(
                f"restore incomplete: collection {name} holds {count} records, the backup "
                f"{saved['records']}; run restore again with --force"
            )
    root = settings.store.path
    counts = _counts(root / "library.db", root / "app.db", root)
    for key in ("manuals", "records", "figures", "conversations", "turns", "feedback"):
        if counts[key] != manifest["counts"][key]:
            raise BackupError(
                f"restore incomplete: {counts[key]} {key}, the backup has {manifest['counts'][key]}"
            )
    from rag.embedders import settings_embedder_id

    notes = []
    current = settings.collection_name(settings_embedder_id(settings.embed))
    if current != manifest["collection"] and manifest["counts"]["manuals"]:
        notes.append(
            f"the backup's manuals are in collection {manifest['collection']} (embedder "
            f"{manifest['embedder']}); your settings open {current}: set MANUALRAG_EMBED__MODEL "
            "and the chunking as they were to search them"
        )
    return notes
