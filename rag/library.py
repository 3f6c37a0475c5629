"""The library catalog and keyword index: one SQLite file beside the vectors.

Why SQLite and not Chroma's own BM25: Chroma 1.5.9 refuses sparse indexes in local
mode ("Sparse vector indexing is not enabled in local"), so the keyword side needs an
index of our own. FTS5 gives BM25 ranking, Porter stemming and transactions.

Visibility is what makes ingest crash-safe. Every record carries the ``ingest_id``
of the run that wrote it; a manual's records are visible only while the catalog row
points at that id. A run writes under a fresh id registered in ``pending``; the switch
to the new id is one SQLite transaction; the old generation goes to ``garbage``
in that same transaction and is purged afterwards. A kill at any point leaves
either the old generation or the new one visible, never a mix, and ``pending`` /
``garbage`` say what the next run must clean.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from manualrag.sqlite import connect
from manualrag.types import ManualInfo, Record
from rag.grounding import keyword_query

SCHEMA = """
CREATE TABLE IF NOT EXISTS manuals (
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    ingest_id TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (collection, name)
);
CREATE TABLE IF NOT EXISTS pending (
    ingest_id TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS garbage (
    ingest_id TEXT PRIMARY KEY,
    collection TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ingest_id TEXT NOT NULL,
    collection TEXT NOT NULL,
    manual TEXT NOT NULL,
    kind TEXT NOT NULL,
    page INTEGER NOT NULL,
    figure TEXT NOT NULL,
    data TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_ingest ON records (ingest_id);
CREATE INDEX IF NOT EXISTS records_figure ON records (ingest_id, figure) WHERE figure != '';
CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5 (
    text, tokenize='porter unicode61'
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _record_to_row(record: Record) -> str:
    data = asdict(record)
    for key in ("text", "id", "manual", "kind"):
        data.pop(key)
    return json.dumps(data, separators=(",", ":"))


def _row_to_record(row: sqlite3.Row | tuple) -> Record:  # type: ignore[type-arg]
    rid, manual, kind, data, text = row
    values = json.loads(data)
    values["pages"] = tuple(values.get("pages") or ())
    values["figure_refs"] = tuple(values.get("figure_refs") or ())
    if values.get("bbox") is not None:
        values["bbox"] = tuple(values["bbox"])
    return Record(id=rid, manual=manual, kind=kind, text=text, **values)


class Library:
    """Catalog of manuals plus the keyword index of their records, for one store folder."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self._local.conn = _Txn(connect(self.path))
            conn = self._local.conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.raw.close()
            self._local.conn = None

    # -- catalog ---------------------------------------------------------------------

    def manuals(self, collection: str) -> list[ManualInfo]:
        rows = self._conn().execute(
            "SELECT info FROM manuals WHERE collection = ? ORDER BY name", (collection,)
        )
        return [ManualInfo(**json.loads(r[0])) for r in rows]

    def manual(self, collection: str, name: str) -> ManualInfo | None:
        row = self._conn().execute(
            "SELECT info FROM manuals WHERE collection = ? AND name = ?", (collection, name)
        ).fetchone()
        return ManualInfo(**json.loads(row[0])) if row else None

    def library_id(self) -> str:
        """This library's random id, made on first use (marks the server collections it writes)."""
        with self._conn() as conn:
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('library_id', ?)", (uuid.uuid4().hex,))
            return str(conn.execute("SELECT value FROM meta WHERE key = 'library_id'").fetchone()[0])

    def counter(self, key: str) -> int:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def bump(self, key: str) -> int:
        """Add one to a counter (seen by every process using this library); the new value."""
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, '1') "
                "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                (key,),
            )
            return int(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def collections(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT DISTINCT collection FROM manuals")]

    def visible_ids(self, collection: str, names: Sequence[str] | None = None) -> list[str]:
        sql = "SELECT ingest_id FROM manuals WHERE collection = ?"
        args: list[str] = [collection]
        if names is not None:
            sql += f" AND name IN ({','.join('?' * len(names))})"
            args.extend(names)
        return [r[0] for r in self._conn().execute(sql, args)]

    def begin(self, collection: str, name: str, ingest_id: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO pending (ingest_id, collection, name, started_at) VALUES (?, ?, ?, ?)",
                (ingest_id, collection, name, _now()),
            )

    def commit(self, collection: str, info: ManualInfo) -> str | None:
        """Make ``info.ingest_id`` the visible generation; returns the one it replaced."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT ingest_id FROM manuals WHERE collection = ? AND name = ?",
                (collection, info.name),
            ).fetchone()
            old = row[0] if row else None
            info.ingested_at = info.ingested_at or _now()
            conn.execute(
                "INSERT OR REPLACE INTO manuals (collection, name, sha256, ingest_id, info) "
                "VALUES (?, ?, ?, ?, ?)",
                (collection, info.name, info.sha256, info.ingest_id, json.dumps(asdict(info))),
            )
            conn.execute("DELETE FROM pending WHERE ingest_id = ?", (info.ingest_id,))
            if old and old != info.ingest_id:
                conn.execute(
                    "INSERT OR IGNORE INTO garbage (ingest_id, collection) VALUES (?, ?)", (old, collection)
                )
        return old if old != info.ingest_id else None

    def remove(self, collection: str, name: str) -> str | None:
        """Hide a manual at once; its records become garbage. Returns its ingest id."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT ingest_id FROM manuals WHERE collection = ? AND name = ?", (collection, name)
            ).fetchone()
            if not row:
                return None
            conn.execute("DELETE FROM manuals WHERE collection = ? AND name = ?", (collection, name))
            conn.execute(
                "INSERT OR IGNORE INTO garbage (ingest_id, collection) VALUES (?, ?)", (row[0], collection)
            )
            return str(row[0])

    def abandon(self, ingest_id: str) -> None:
        """An ingest that failed: its records are garbage."""
        with self._conn() as conn:
            row = conn.execute("SELECT collection FROM pending WHERE ingest_id = ?", (ingest_id,)).fetchone()
            if row:
                conn.execute("DELETE FROM pending WHERE ingest_id = ?", (ingest_id,))
                conn.execute(
                    "INSERT OR IGNORE INTO garbage (ingest_id, collection) VALUES (?, ?)", (ingest_id, row[0])
                )

    def stale(self, older_than_pending: bool = True) -> list[tuple[str, str]]:
        """(ingest_id, collection) pairs whose records must be purged.

        Pending runs count too: the caller holds the store's write lock, so no other
        ingest is running and a pending id can only be left from a crash.
        """
        conn = self._conn()
        rows = list(conn.execute("SELECT ingest_id, collection FROM garbage"))
        if older_than_pending:
            rows += list(conn.execute("SELECT ingest_id, collection FROM pending"))
        return [(r[0], r[1]) for r in rows]

    def forget(self, ingest_id: str) -> None:
        """Drop a purged generation's keyword rows and bookkeeping."""
        with self._conn() as conn:
            conn.execute(
                "DELETE FROM records_fts WHERE rowid IN (SELECT rowid FROM records WHERE ingest_id = ?)",
                (ingest_id,),
            )
            conn.execute("DELETE FROM records WHERE ingest_id = ?", (ingest_id,))
            conn.execute("DELETE FROM garbage WHERE ingest_id = ?", (ingest_id,))
            conn.execute("DELETE FROM pending WHERE ingest_id = ?", (ingest_id,))

    # -- records and keyword index ---------------------------------------------------

    def add_records(self, collection: str, ingest_id: str, records: Iterable[Record]) -> None:
        with self._conn() as conn:
            for record in records:
                cur = conn.execute(
                    "INSERT INTO records (id, ingest_id, collection, manual, kind, page, figure, data, text) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.id, ingest_id, collection, record.manual, record.kind, record.page,
                     record.figure, _record_to_row(record), record.text),
                )
                indexed = "\n".join(
                    part for part in (record.section, record.caption, record.embed_text or record.text) if part
                )
                conn.execute("INSERT INTO records_fts (rowid, text) VALUES (?, ?)", (cur.lastrowid, indexed))

    def records(self, ids: Sequence[str]) -> dict[str, Record]:
        if not ids:
            return {}
        out: dict[str, Record] = {}
        conn = self._conn()
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            rows = conn.execute(
                f"SELECT id, manual, kind, data, text FROM records WHERE id IN ({','.join('?' * len(part))})",
                part,
            )
            for row in rows:
                out[row[0]] = _row_to_record(row)
        return out

    def records_of(self, ingest_id: str) -> list[Record]:
        rows = self._conn().execute(
            "SELECT id, manual, kind, data, text FROM records WHERE ingest_id = ? ORDER BY rowid", (ingest_id,)
        )
        return [_row_to_record(r) for r in rows]

    def figures_by_label(self, ingest_ids: Sequence[str], labels: Sequence[str]) -> list[Record]:
        """Figure records carrying any of ``labels`` in the given generations."""
        if not ingest_ids or not labels:
            return []
        sql = (
            "SELECT id, manual, kind, data, text FROM records WHERE kind = 'figure' "
            f"AND ingest_id IN ({','.join('?' * len(ingest_ids))}) AND figure IN ({','.join('?' * len(labels))})"
        )
        return [_row_to_record(r) for r in self._conn().execute(sql, [*ingest_ids, *labels])]

    def passages_on_pages(self, ingest_ids: Sequence[str], pages: Sequence[tuple[str, int]]) -> list[Record]:
        """Text and table records starting on any of the (manual, page) pairs, in reading order."""
        if not ingest_ids or not pages:
            return []
        sql = (
            "SELECT id, manual, kind, data, text FROM records WHERE kind NOT IN ('figure', 'page') "
            f"AND ingest_id IN ({','.join('?' * len(ingest_ids))}) "
            f"AND (manual, page) IN (VALUES {','.join(['(?, ?)'] * len(pages))}) ORDER BY rowid"
        )
        args = [*ingest_ids, *(value for pair in pages for value in pair)]
        return [_row_to_record(r) for r in self._conn().execute(sql, args)]

    def on_pages(self, ingest_ids: Sequence[str], pages: Sequence[tuple[str, int]],
                 kinds: Sequence[str] | None = None) -> list[Record]:
        """Records of any kind (or of `kinds`) on the (manual, page) pairs, in reading order."""
        if not ingest_ids or not pages:
            return []
        sql = (
            "SELECT id, manual, kind, data, text FROM records "
            f"WHERE ingest_id IN ({','.join('?' * len(ingest_ids))}) "
            f"AND (manual, page) IN (VALUES {','.join(['(?, ?)'] * len(pages))})"
        )
        args: list[object] = [*ingest_ids, *(value for pair in pages for value in pair)]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        return [_row_to_record(r) for r in self._conn().execute(sql + " ORDER BY rowid", args)]

    def count(self, ingest_id: str) -> int:
        return int(self._conn().execute("SELECT count(*) FROM records WHERE ingest_id = ?", (ingest_id,)).fetchone()[0])

    def keyword(
        self,
        query: str,
        ingest_ids: Sequence[str],
        limit: int,
        kinds: Sequence[str] | None = None,
        whole_library: bool = False,
    ) -> list[tuple[str, float]]:
        """Best records by BM25 among the given generations: (id, score), higher is better.

        FTS5 ranks inside the index first (``ORDER BY rank LIMIT`` on the FTS table is
        its fast path), with slack for records of other generations or kinds; only if
        too few survive the filter does it rank every match of the visible generations.
        """
        match = keyword_query(query)
        if not match or not ingest_ids:
            return []
        visible = set(ingest_ids)
        try:
            conn = self._conn()
            rows = [] if not whole_library else conn.execute(
                "SELECT r.id, r.ingest_id, r.kind, f.rank FROM "
                "(SELECT rowid, rank FROM records_fts WHERE records_fts MATCH ? ORDER BY rank LIMIT ?) f "
                "JOIN records r ON r.rowid = f.rowid ORDER BY f.rank",
                (match, limit * 4),
            ).fetchall()
            kept = [(r[0], -float(r[3])) for r in rows if r[1] in visible and (not kinds or r[2] in kinds)]
            if whole_library and (len(kept) >= limit or len(rows) < limit * 4):
                return kept[:limit]
            sql = (
                "SELECT r.id, bm25(records_fts) AS s FROM records_fts JOIN records r ON r.rowid = records_fts.rowid "
                f"WHERE records_fts MATCH ? AND r.ingest_id IN ({','.join('?' * len(ingest_ids))})"
            )
            args: list[object] = [match, *ingest_ids]
            if kinds:
                sql += f" AND r.kind IN ({','.join('?' * len(kinds))})"
                args.extend(kinds)
            rows = conn.execute(sql + " ORDER BY s LIMIT ?", [*args, limit]).fetchall()
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse matches nothing rather than failing search
        # bm25() is lower-is-better and negative; flip it so higher is better.
        return [(r[0], -float(r[1])) for r in rows]


class _Txn:
    """A connection whose ``with`` block is one IMMEDIATE transaction (autocommit outside)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, args)

    def executescript(self, sql: str) -> None:
        self.raw.executescript(sql)

    def __enter__(self) -> _Txn:
        self.raw.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        self.raw.execute("ROLLBACK" if exc_type else "COMMIT")
