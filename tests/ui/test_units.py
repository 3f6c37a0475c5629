"""The app's pure parts: safe rendering, the conversation store, role checks, `manualrag serve`."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from uihelpers import all_text

from manualrag.conversations import Conversations, owner_key
from manualrag.settings import Settings, UiSettings
from manualrag.types import Answer, Citation, Hit
from ui.auth import email_is_staff, password_matches, verified_email
from ui.safe import inside, literal, safe_markdown

# -- safe rendering ---------------------------------------------------------------------------------

HOSTILE = [
    ("![x](http://evil.example/a.png)", "](http"),
    ("[click](javascript:alert(1))", "](javascript"),
    ("[ref]: http://evil.example/\n\n![x][ref]", "]["),
    ("<script>alert(1)</script>", "<script"),
    ("<img src=x onerror=alert(1)>", "<img"),
    ("<http://evil.example/>", "<http"),
    ("$\\href{http://evil.example}{x}$", "$\\href"),
    (":red[alarm]", ":red["),
]


@pytest.mark.parametrize(("text", "forbidden"), HOSTILE)
def test_safe_markdown_neutralises(text: str, forbidden: str) -> None:
    out = safe_markdown(text)
    assert forbidden not in out, f"{forbidden!r} should not survive in {out!r}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See http://evil.example/x now", "See `http://evil.example/x` now"),  # shown, not linked
        ("go to www.evil.example.", "go to `www.evil.example`."),
        ("Fuse F3 is **20 AMP** [1].", "Fuse F3 is **20 AMP** \\[1\\]."),  # emphasis kept, keys escaped
        ("use `<tag>` here", "use `<tag>` here"),  # code spans show literally already
        ("```\n<b>raw</b>\n```", "```\n<b>raw</b>\n```"),
        ("", ""),
    ],
)
def test_safe_markdown_keeps_what_is_harmless(text: str, expected: str) -> None:
    assert safe_markdown(text) == expected


def test_literal_escapes_every_markdown_sign() -> None:
    name = "![a](http://x.example/y).pdf"
    # Escapes do not stop GFM from linking an address (it reads the resolved text): code does.
    assert literal(name) == "\\!\\[a\\]\\(`http://x.example/y).pdf`"
    assert literal("a\nb  c", width=4) == "a b…"


def test_inside_keeps_paths_in_the_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "figures").mkdir(parents=True)
    (root / "figures" / "f.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("no")
    assert inside(root, "figures/f.png") == (root / "figures" / "f.png").resolve()
    assert inside(root, str(root / "figures" / "f.png")) is not None
    assert inside(root, "../secret.txt") is None, "a path out of the store is refused"
    assert inside(root, str(tmp_path / "secret.txt")) is None
    assert inside(root, "figures/missing.png") is None


# -- conversations ----------------------------------------------------------------------------------


def _answer(question: str = "Which fuse?") -> Answer:
    hit = Hit(
        "h1", "m.pdf", 2, "figure", "Figure 2-1. Wiring.", 0.03, "Figure 2-1", "/s/f.png", "", (1, 2, 3, 4)
    )
    return Answer(
        question=question,
        text="F3 [1].",
        citations=[
            Citation(1, "h1", "m.pdf", 2, "figure", "Figure 2-1", "/s/f.png", "", (1.0, 2.0, 3.0, 4.0))
        ],
        hits=[hit],
        sources=1,
        messages=[{"role": "user", "content": "q"}],
        first_token_s=0.5,
    )


def test_conversations_round_trip_and_survive_reopening(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    store = Conversations(db)
    cid = store.create("Which fuse protects the contactor coil of the P-200?" * 3, owner="tok-a")
    tid = store.add_turn(cid, _answer(), manuals=["m.pdf"], query="fuse", asked_at=10.0, first_token_at=11.0)
    store.add_feedback(tid, -1, "wrong fuse", "technician")
    store.close()

    again = Conversations(db)  # a restart
    conv = again.owned(cid, "tok-a")
    assert conv is not None and conv.turns == 1 and len(conv.title) <= 80
    (turn,) = again.turns(cid)
    assert turn.answer == _answer(), "the whole answer, trace included, comes back as it was"
    assert turn.manuals == ("m.pdf",) and turn.query == "fuse" and turn.first_token_at == 11.0
    assert [t.id for t in again.answers(flagged_only=True)] == [tid] and again.flagged_count() == 1
    again.add_feedback(tid, 1, "fixed", "staff")
    assert again.answers(flagged_only=True) == [], "the latest rating decides"
    assert [f.role for f in again.turn(tid).feedback] == ["technician", "staff"]  # type: ignore[union-attr]
    assert [c.id for c in again.recent("tok-a")] == [cid]
    with pytest.raises(ValueError):
        again.add_feedback(tid, 0, "", "staff")


def test_conversations_belong_to_their_owner_token(tmp_path: Path) -> None:
    store = Conversations(tmp_path / "app.db")
    mine = store.create("mine", owner="tok-a")
    theirs = store.create("theirs", owner="tok-b")
    for cid in (mine, theirs):
        store.add_turn(cid, _answer(), asked_at=1.0)
    assert [c.id for c in store.recent("tok-a")] == [mine], "only the owner's conversations are listed"
    assert store.owned(theirs, "tok-a") is None, "someone else's id opens nothing"
    assert store.owned("0" * 16, "tok-a") is None, "an unknown id reads the same as a foreign one"
    assert store.owned(mine, "") is None and store.recent("") == [], "no token owns nothing"
    assert {t.conversation_id for t in store.answers()} == {mine, theirs}, "staff's review desk sees all"
    stored = {r[0] for r in store._conn().execute("SELECT owner FROM conversations")}
    assert "tok-a" not in stored and owner_key("tok-a") in stored, "app.db keeps the token's hash only"


def test_conversations_from_before_owners_belong_to_nobody(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "app.db"
    with sqlite3.connect(db) as old:
        old.execute("CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL, "
                    "created_at TEXT NOT NULL, updated_at TEXT NOT NULL)")  # fmt: skip
        old.execute("INSERT INTO conversations VALUES ('c1', 'old', 'x', 'x')")
    store = Conversations(db)
    assert store.owned("c1", "tok-a") is None, "an old conversation opens for nobody"
    assert store.create("new", owner="tok-a"), "the migrated table takes new conversations"


@pytest.mark.parametrize(
    ("ratings", "flagged"),
    [
        ([(-1, "technician"), (1, "technician")], True),  # a technician's 👍 does not clear a flag
        ([(-1, "staff"), (1, "technician")], True),
        ([(-1, "technician"), (1, "staff")], False),  # staff decide it is fine
        ([(-1, "technician"), (1, "staff"), (-1, "technician")], True),  # a new complaint
        ([(1, "technician")], False),
    ],
)
def test_only_staff_ratings_clear_the_review_queue(
    tmp_path: Path, ratings: list[tuple[int, str]], flagged: bool
) -> None:
    store = Conversations(tmp_path / "app.db")
    tid = store.add_turn(store.create("q", owner="tok-a"), _answer(), asked_at=1.0)
    for rating, role in ratings:
        store.add_feedback(tid, rating, "", role)  # type: ignore[arg-type]
    assert (store.flagged_count() == 1) is flagged, f"{ratings}: flagged should be {flagged}"
    assert bool(store.answers(flagged_only=True)) is flagged
    assert (store.turn(tid).verdict < 0) is flagged  # type: ignore[union-attr]


def test_a_failed_answer_never_logs_the_question(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Questions stay in app.db, out of the log, when answering or saving fails."""
    import logging

    from manualrag.engine import Engine
    from ui.jobs import AnswerJob

    question = "Where is the spare key for cabinet 7-Q kept? " * 3
    settings = Settings(_env_file=None)
    settings.store.path = tmp_path / "store"
    conversations = Conversations(tmp_path / "app.db")

    class Broken:  # an engine that fails in a way nobody planned for
        def ask(self, *args: object) -> None:
            raise RuntimeError("boom")

    with caplog.at_level(logging.DEBUG):
        cid = conversations.create("q", owner="tok-a")
        failed = AnswerJob(Broken(), conversations, cid, question, [], [])  # type: ignore[arg-type]
        # A real engine refusing the question, then saving into a conversation that is gone.
        settings.retrieval.max_question_chars = 100
        unsaved = AnswerJob(Engine(settings), conversations, "no-such-conversation", question, [], [])
        deadline = time.monotonic() + 30
        while not (failed.done and unsaved.done) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert failed.done and unsaved.done, "each job ends within seconds"
    assert "answering a question in conversation" in caplog.text and "saving an answer" in caplog.text
    assert "spare key" not in caplog.text, "the question must not reach the log"
    assert conversations.turns(cid)[0].question == question, "the question is kept where it belongs"


def test_conversations_db_is_wal(tmp_path: Path) -> None:
    Conversations(tmp_path / "app.db")
    import sqlite3

    mode = sqlite3.connect(tmp_path / "app.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal", "readers must not wait for an answer being saved"


# -- roles ------------------------------------------------------------------------------------------


def test_password_check() -> None:
    ui = UiSettings(staff_password="s3cret")  # type: ignore[arg-type]
    assert password_matches("s3cret", ui)
    assert not password_matches("s3cre", ui) and not password_matches("", ui)
    assert not password_matches("", UiSettings()), "no configured password: nobody gets in"


@pytest.mark.parametrize(
    ("emails", "email", "staff"),
    [
        (["Boss@Example.com"], "boss@example.com", True),
        (["boss@example.com"], "tech@example.com", False),
        (["*"], "anyone@example.com", True),
        ([], "boss@example.com", False),  # an empty list grants nothing
        (["*"], "", False),
    ],
)
def test_staff_emails(emails: list[str], email: str, staff: bool) -> None:
    assert email_is_staff(email, UiSettings(staff_emails=emails)) is staff


@pytest.mark.parametrize(
    ("user", "email"),
    [
        ({"is_logged_in": True, "email": "b@x.io", "email_verified": True}, "b@x.io"),
        ({"is_logged_in": True, "email": "b@x.io"}, ""),  # the provider did not say
        ({"is_logged_in": True, "email": "b@x.io", "email_verified": False}, ""),
        ({"is_logged_in": True, "email": "b@x.io", "email_verified": "true"}, ""),  # not the JSON true
        ({"is_logged_in": False, "email": "b@x.io", "email_verified": True}, ""),
    ],
)
def test_only_a_verified_email_counts(user: dict[str, Any], email: str) -> None:
    assert verified_email(user) == email


def test_oidc_sign_in_grants_staff_by_email(make_app: Any, tmp_path: Path, fake_llm: Any) -> None:
    oidc = {
        "oidc_server_metadata_url": "https://id.example/.well-known/openid-configuration",
        "oidc_client_id": "manualrag",
        "staff_emails": '["boss@example.com"]',
    }
    at = make_app(tmp_path / "store", fake_llm.url, **oidc)
    at.user = {"is_logged_in": True, "email": "boss@example.com", "email_verified": True}
    at.run()
    assert "Review" in at.sidebar.radio(key="view").options, "a listed, verified account is staff"
    assert "support staff" in all_text(at)
    unverified = make_app(tmp_path / "store", fake_llm.url, **oidc)
    unverified.user = {"is_logged_in": True, "email": "boss@example.com"}  # typed in, never verified
    unverified.run()
    assert "Review" not in unverified.sidebar.radio(key="view").options, "an unverified e-mail proves nothing"
    other = make_app(tmp_path / "store", fake_llm.url, **oidc)
    other.user = {"is_logged_in": True, "email": "tech@example.com", "email_verified": True}
    other.run()
    assert "Review" not in other.sidebar.radio(key="view").options, "an unlisted account is a technician"


# -- manualrag serve --------------------------------------------------------------------------------


def test_serve_writes_streamlit_secrets_privately(tmp_path: Path) -> None:
    from manualrag.cli import _streamlit_secrets

    settings = Settings(_env_file=None)
    settings.store.path = tmp_path / "store"
    assert _streamlit_secrets(settings) is None, "no OIDC settings: no secrets file"
    settings.ui = UiSettings(
        oidc_server_metadata_url="https://id.example/.well-known/openid-configuration",
        oidc_client_id="manualrag",
        oidc_client_secret="hush",  # type: ignore[arg-type]
        port=9000,
    )
    path = _streamlit_secrets(settings)
    assert path is not None and stat.S_IMODE(os.stat(path).st_mode) == 0o600, "only this user may read it"
    text = path.read_text()
    assert text.startswith("[auth]\n") and 'client_secret = "hush"' in text
    assert 'redirect_uri = "http://127.0.0.1:9000/oauth2callback"' in text
    cookie = [ln for ln in text.splitlines() if ln.startswith("cookie_secret")][0]
    assert len(json.loads(cookie.split("=", 1)[1])) >= 32, "a random cookie secret when none is set"


def test_serve_parser() -> None:
    from manualrag.cli import build_parser

    args = build_parser().parse_args(["serve", "--store", "s", "--host", "0.0.0.0", "--port", "9001"])
    assert (args.command, args.store, args.host, args.port) == ("serve", "s", "0.0.0.0", 9001)


def test_a_retried_answer_replaces_the_withheld_draft_on_the_page(tmp_path: Path) -> None:
    """The chat shows only the second draft once the engine takes the first one back."""
    from rag.answer import Status, Token
    from ui.jobs import AnswerJob

    class Retrying:  # the event stream of rag.answer.Answerer.ask when a draft is withheld
        def ask(self, question: str, *args: object):  # type: ignore[no-untyped-def]
            yield Token("Tighten it to 20 Nm [1].")
            yield Status("reading more of the pages…", restart=True)
            yield Token("Torque the screws to 2.5 Nm [1].")
            yield Answer(question=question, text="Torque the screws to 2.5 Nm [1].",
                         withheld_drafts=["Tighten it to 20 Nm [1]."])

    conversations = Conversations(tmp_path / "app.db")
    cid = conversations.create("q", owner="tok-a")
    job = AnswerJob(Retrying(), conversations, cid, "What torque?", [], [])  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while not job.done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.done and job.text == "Torque the screws to 2.5 Nm [1].", job.text
    saved = conversations.turns(cid)[0]
    assert saved.answer.withheld_drafts == ["Tighten it to 20 Nm [1]."], "the review desk still sees the first draft"
