"""The app's pure parts: safe rendering, the conversation store, role checks, `manualrag serve`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from uihelpers import all_text

from manualrag.conversations import Conversations
from manualrag.settings import Settings, UiSettings
from manualrag.types import Answer, Citation, Hit
from ui.auth import email_is_staff, password_matches
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
    cid = store.create("Which fuse protects the contactor coil of the P-200?" * 3)
    tid = store.add_turn(cid, _answer(), manuals=["m.pdf"], query="fuse", asked_at=10.0, first_token_at=11.0)
    store.add_feedback(tid, -1, "wrong fuse", "technician")
    store.close()

    again = Conversations(db)  # a restart
    conv = again.get(cid)
    assert conv is not None and conv.turns == 1 and len(conv.title) <= 80
    (turn,) = again.turns(cid)
    assert turn.answer == _answer(), "the whole answer, trace included, comes back as it was"
    assert turn.manuals == ("m.pdf",) and turn.query == "fuse" and turn.first_token_at == 11.0
    assert [t.id for t in again.answers(flagged_only=True)] == [tid] and again.flagged_count() == 1
    again.add_feedback(tid, 1, "fixed", "staff")
    assert again.answers(flagged_only=True) == [], "the latest rating decides"
    assert [f.role for f in again.turn(tid).feedback] == ["technician", "staff"]  # type: ignore[union-attr]
    assert [c.id for c in again.recent()] == [cid]
    with pytest.raises(ValueError):
        again.add_feedback(tid, 0, "", "staff")


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


def test_oidc_sign_in_grants_staff_by_email(make_app: Any, tmp_path: Path, fake_llm: Any) -> None:
    oidc = {
        "oidc_server_metadata_url": "https://id.example/.well-known/openid-configuration",
        "oidc_client_id": "manualrag",
        "staff_emails": '["boss@example.com"]',
    }
    at = make_app(tmp_path / "store", fake_llm.url, **oidc)
    at.user = {"is_logged_in": True, "email": "boss@example.com"}
    at.run()
    assert "Review" in at.sidebar.radio(key="view").options, "a listed account is staff"
    assert "support staff" in all_text(at)
    other = make_app(tmp_path / "store", fake_llm.url, **oidc)
    other.user = {"is_logged_in": True, "email": "tech@example.com"}
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
