"""Conversations, answers and reviewers' feedback: one SQLite file beside the store.

Why a file of its own (``<store>/app.db``) and not the library: the library is
rebuilt when a manual is re-ingested and its write lock serialises ingest, while
answers and feedback are written by every question and must never wait for an
ingest. WAL lets the app's threads read while one writes; the file survives
restarts, so a review queue is still there the next morning.

Conversations are private: each belongs to the browser (owner token) that started it,
and only the hash of that token is stored, so app.db alone does not let anyone pose as
an owner. Staff read every answer through ``answers``/``turn`` (the review desk), never
through the owner-scoped ``recent``/``owned``.

Each turn keeps the whole ``Answer`` (text, citations, hits with scores, the exact
prompt, timings) as JSON: a reviewer sees what the technician saw, even after the
manual was re-ingested or removed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from manualrag.sqlite import connect
from manualrag.types import Answer, Citation, Hit

Role = Literal["technician", "staff"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    manuals TEXT NOT NULL,
    query TEXT NOT NULL DEFAULT '',
    asked_at REAL NOT NULL,
    first_token_at REAL,
    finished_at REAL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_owner ON conversations (owner, updated_at);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns (conversation_id, id);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    turn_id INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_turn ON feedback (turn_id, id);
"""

TITLE_CHARS = 80
# An answer's verdict is its latest thumbs down from anyone or rating from staff: a reviewer's
# thumbs up after a fix takes it off the queue, a technician's thumbs up never does (only staff
# decide that a flagged answer is fine).
_COUNTS = "(f.role = 'staff' OR f.rating = -1)"
_LATEST_RATING = (
    f"(SELECT f.rating FROM feedback f WHERE f.turn_id = t.id AND {_COUNTS} ORDER BY f.id DESC LIMIT 1)"
)


def owner_key(token: str) -> str:
    """What app.db stores for an owner token: its sha256, '' (nobody) for no token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest() if token else ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class Conversation:
    id: str
    title: str
    created_at: str
    updated_at: str
    turns: int = 0


@dataclass(slots=True)
class Feedback:
    turn_id: int
    rating: int  # +1 thumbs up, -1 thumbs down
    comment: str
    role: Role
    created_at: str


@dataclass(slots=True)
class Turn:
    """One question and its answer in a conversation, with when each part arrived."""

    id: int
    conversation_id: str
    answer: Answer
    manuals: tuple[str, ...] = ()  # the scope it was asked in; () = every manual
    query: str = ""  # what retrieval searched for (a follow-up is rewritten)
    asked_at: float = 0.0  # epoch seconds
    first_token_at: float | None = None  # epoch seconds the engine yielded its first token
    finished_at: float | None = None
    created_at: str = ""
    feedback: list[Feedback] = field(default_factory=list)

    @property
    def question(self) -> str:
        return self.answer.question

    @property
    def verdict(self) -> int:
        """The latest thumbs down or staff rating (+1/-1), 0 when none: technicians' thumbs up
        do not clear a flag."""
        counted = [f for f in self.feedback if f.role == "staff" or f.rating == -1]
        return counted[-1].rating if counted else 0


# -- Answer <-> JSON ------------------------------------------------------------------------------


def answer_to_json(answer: Answer) -> str:
    return json.dumps(asdict(answer), ensure_ascii=False, separators=(",", ":"))


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    # Rows written by an older or newer version may carry fields this one lacks.
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def _bbox(value: Any) -> tuple[float, float, float, float] | None:
    return tuple(value) if value else None  # type: ignore[return-value]


def answer_from_json(text: str) -> Answer:
    data = json.loads(text)
    hits = [Hit(**{**_known(Hit, h), "bbox": _bbox(h.get("bbox"))}) for h in data.pop("hits", [])]
    citations = [
        Citation(**{**_known(Citation, c), "bbox": _bbox(c.get("bbox"))}) for c in data.pop("citations", [])
    ]
    return Answer(**_known(Answer, data), hits=hits, citations=citations)


# -- the store ------------------------------------------------------------------------------------


class Conversations:
    """Conversations, turns and feedback in ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        conn = self._conn()
        columns = {row[1] for row in conn.execute("PRAGMA table_info(conversations)")}
        if columns and "owner" not in columns:
            # app.db from before conversations were private: its conversations belong to nobody
            # (staff still see their answers in the review desk).
            conn.execute("ALTER TABLE conversations ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
        conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread: answers are saved from worker threads while
        # the page's thread reads.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- conversations ---------------------------------------------------------------------

    def create(self, title: str, owner: str = "") -> str:
        """A new conversation owned by the browser holding the token ``owner`` ('' = nobody)."""
        cid = uuid.uuid4().hex[:16]
        now = _now()
        flat = " ".join(title.split())
        title = flat if len(flat) <= TITLE_CHARS else flat[: TITLE_CHARS - 1] + "…"
        with self._txn() as conn:
            conn.execute(
                "INSERT INTO conversations (id, title, created_at, updated_at, owner) VALUES (?, ?, ?, ?, ?)",
                (cid, title or "Conversation", now, now, owner_key(owner)),
            )
        return cid

    def owned(self, conversation_id: str, owner: str) -> Conversation | None:
        """The conversation if the token ``owner`` owns it; None when unknown or someone else's
        (the caller cannot tell which, so an id reveals nothing)."""
        key = owner_key(owner)
        if not key:
            return None
        row = (
            self._conn()
            .execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, "
                "(SELECT count(*) FROM turns t WHERE t.conversation_id = c.id) "
                "FROM conversations c WHERE c.id = ? AND c.owner = ?",
                (conversation_id, key),
            )
            .fetchone()
        )
        return Conversation(*row) if row else None

    def recent(self, owner: str, limit: int = 20) -> list[Conversation]:
        """The newest conversations with answers that the token ``owner`` owns."""
        key = owner_key(owner)
        if not key:
            return []
        rows = self._conn().execute(
            "SELECT c.id, c.title, c.created_at, c.updated_at, "
            "(SELECT count(*) FROM turns t WHERE t.conversation_id = c.id) AS n "
            "FROM conversations c WHERE c.owner = ? AND n > 0 "
            "ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?",
            (key, limit),
        )
        return [Conversation(*r) for r in rows]

    # -- turns -------------------------------------------------------------------------------

    def add_turn(
        self,
        conversation_id: str,
        answer: Answer,
        *,
        manuals: Sequence[str] = (),
        query: str = "",
        asked_at: float,
        first_token_at: float | None = None,
        finished_at: float | None = None,
    ) -> int:
        with self._txn() as conn:
            cur = conn.execute(
                "INSERT INTO turns (conversation_id, question, answer, manuals, query, asked_at, "
                "first_token_at, finished_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    answer.question,
                    answer_to_json(answer),
                    json.dumps(list(manuals)),
                    query,
                    asked_at,
                    first_token_at,
                    finished_at,
                    _now(),
                ),
            )
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (_now(), conversation_id))
            return int(cur.lastrowid or 0)

    _TURN_COLUMNS = (
        "id, conversation_id, answer, manuals, query, asked_at, first_token_at, finished_at, created_at"
    )

    def _turn(self, row: sqlite3.Row | tuple) -> Turn:  # type: ignore[type-arg]
        tid, cid, answer, manuals, query, asked, first, finished, created = row
        return Turn(
            tid,
            cid,
            answer_from_json(answer),
            tuple(json.loads(manuals)),
            query,
            asked,
            first,
            finished,
            created,
            self.feedback(tid),
        )

    def turns(self, conversation_id: str) -> list[Turn]:
        rows = self._conn().execute(
            f"SELECT {self._TURN_COLUMNS} FROM turns WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        return [self._turn(r) for r in rows.fetchall()]

    def turn(self, turn_id: int) -> Turn | None:
        row = (
            self._conn()
            .execute(f"SELECT {self._TURN_COLUMNS} FROM turns WHERE id = ?", (turn_id,))
            .fetchone()
        )
        return self._turn(row) if row else None

    def answers(self, *, flagged_only: bool = False, limit: int = 200) -> list[Turn]:
        """Newest first. Flagged: the latest feedback on the answer is a thumbs down."""
        sql = f"SELECT {self._TURN_COLUMNS} FROM turns t"
        if flagged_only:
            sql += f" WHERE {_LATEST_RATING} = -1"
        sql += " ORDER BY t.id DESC LIMIT ?"
        return [self._turn(r) for r in self._conn().execute(sql, (limit,)).fetchall()]

    def flagged_count(self) -> int:
        row = self._conn().execute(f"SELECT count(*) FROM turns t WHERE {_LATEST_RATING} = -1").fetchone()
        return int(row[0])

    # -- feedback ------------------------------------------------------------------------------

    def add_feedback(self, turn_id: int, rating: int, comment: str, role: Role) -> None:
        if rating not in (-1, 1):
            raise ValueError("rating is +1 or -1")
        with self._txn() as conn:
            conn.execute(
                "INSERT INTO feedback (turn_id, rating, comment, role, created_at) VALUES (?, ?, ?, ?, ?)",
                (turn_id, rating, comment.strip()[:4000], role, _now()),
            )

    def feedback(self, turn_id: int) -> list[Feedback]:
        rows = self._conn().execute(
            "SELECT turn_id, rating, comment, role, created_at FROM feedback WHERE turn_id = ? ORDER BY id",
            (turn_id,),
        )
        return [Feedback(*r) for r in rows]
