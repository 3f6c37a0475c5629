"""Roles are enforced on the server, and secrets never reach a page, a log or the app database.

A browser can only send widget events and query parameters, so a technician's
session is attacked here the way a crafted client would: with the widget ids of the
staff buttons (the same in every session) as triggers, a value for the role key
itself, and the session state and query parameters a staff flow sets. A session
that loses the role keeps its stale staff buttons, and each handler must refuse.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from uihelpers import STAFF_PASSWORD, Reply, all_text, ask, button, sign_in, switch_view

from manualrag.conversations import Conversations

MANUAL = "p200-controller.pdf"
ROLE_KEY = "_manualrag_staff_by_password"  # ui/auth.py: set by the server only
API_KEY = "sk-test-Zq81-never-shown-0c4e"


def _manuals(store: Path) -> list[Any]:
    from manualrag.engine import Engine
    from manualrag.settings import Settings

    settings = Settings(_env_file=None)
    settings.store.path = store
    return Engine(settings).manuals()


def _views(at: Any) -> list[str]:
    return list(at.sidebar.radio(key="view").options)


def test_crafted_requests_from_a_technician_change_nothing(
    make_app: Any, store_copy: Path, fake_llm: Any
) -> None:
    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    before = _manuals(store_copy)
    # A staff session shows the ids of the staff buttons; a client that saw them once can send them.
    staff = switch_view(sign_in(make_app(store_copy, fake_llm.url).run()), "Library")
    reingest_id = button(staff, "Re-ingest").id
    staff = button(staff, "Remove").click().run()
    remove_id = button(staff, "Yes, remove it").id

    # A technician session that starts with what the staff flows put in the session and the URL...
    tech = make_app(store_copy, fake_llm.url)
    tech.session_state["view"] = "Review"
    tech.session_state["confirm_remove"] = MANUAL
    tech.session_state["review_turn"] = 1
    tech.query_params["view"] = "Review"
    tech.run()
    assert _views(tech) == ["Ask", "Library"], "it is still a technician"
    assert "Review answers" not in all_text(tech), "a technician cannot open the review desk"
    tech.session_state["view"] = "Library"
    tech.run()
    assert "Support staff can remove or re-ingest" in all_text(tech), "the library is read-only"
    assert not [b for b in tech.button if "remove" in str(b.label).lower()], "no remove button to press"

    # ...then the staff buttons' events and a value for the role key, as a crafted client sends them.
    crafted = WidgetStates()
    crafted.CopyFrom(tech._tree.get_widget_states())
    for wid in (remove_id, reingest_id):
        crafted.widgets.add(id=wid, trigger_value=True)
    crafted.widgets.add(id=ROLE_KEY, bool_value=True)
    # Streamlit fails the run that carries ids it never registered (KeyError in its own
    # session-state lookup): that session's page shows one error line; the next run is clean.
    tech._run(widget_state=crafted)
    tech.run()
    assert not tech.exception, f"crafted events must not break the page: {tech.exception}"
    assert _views(tech) == ["Ask", "Library"], "a widget event cannot set the role"
    assert "Support staff can remove or re-ingest" in all_text(tech), "the library stays read-only"
    # A re-ingest queued from this session would be listed in it, with its notice.
    assert not tech.session_state.get("my_upload_jobs") and "Re-ingesting" not in all_text(tech)
    after = _manuals(store_copy)
    assert [(m.name, m.ingest_id) for m in after] == [(m.name, m.ingest_id) for m in before], (
        "nothing was removed or ingested again"
    )


def test_a_session_that_loses_the_role_is_refused_by_every_handler(
    make_app: Any, store_copy: Path, fake_llm: Any
) -> None:
    fake_llm.script = [Reply("The wiring is drawn in the diagram [1].")]
    at = ask(make_app(store_copy, fake_llm.url).run(), "Show me the controller wiring diagram.")
    before = _manuals(store_copy)

    # Re-ingest: the button was drawn for staff; the role is gone when it is pressed.
    at = switch_view(sign_in(at), "Library")
    stale = button(at, "Re-ingest")
    at.session_state[ROLE_KEY] = False
    at = stale.click().run()
    assert "Only support staff can re-ingest manuals" in all_text(at)

    # Remove, at both steps of its confirmation.
    at = switch_view(sign_in(at), "Library")
    stale = button(at, "Remove")
    at.session_state[ROLE_KEY] = False
    at = stale.click().run()
    assert "Only support staff can remove manuals" in all_text(at)
    at = switch_view(sign_in(at), "Library")
    at = button(at, "Remove").click().run()
    stale = button(at, "Yes, remove it")
    at.session_state[ROLE_KEY] = False
    at = stale.click().run()
    assert "Only support staff can remove manuals" in all_text(at)

    # The review desk and the gallery, opened by staff, show nothing once the role is gone.
    for view, header in (("Review", "Review answers"), ("Figures", "Figures")):
        at = switch_view(sign_in(at), view)
        assert [h.value for h in at.header] == [header], f"staff see {view}"
        at.session_state[ROLE_KEY] = False
        at.run()
        assert _views(at) == ["Ask", "Library"], "the staff views are gone from the picker"
        assert [h.value for h in at.header] == [], f"{view} is closed: the page is back on the chat"
        assert not at.dataframe, f"{view}: no ranked hits are drawn for a technician"
        assert not any("Exact prompt" in str(e.label) for e in at.expander), f"{view}: no prompt either"

    assert not at.session_state.get("my_upload_jobs"), "no re-ingest was queued"
    after = _manuals(store_copy)
    assert [(m.name, m.ingest_id) for m in after] == [(m.name, m.ingest_id) for m in before], (
        "nothing was removed or ingested again"
    )


# -- secrets -------------------------------------------------------------------------------------


def _page_bytes(at: Any) -> bytes:
    """Everything the server sent for the page: every element's and block's message, serialized."""
    parts: list[bytes] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "SerializeToString"):
            parts.append(proto.SerializeToString())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return b"\n".join(parts)


def test_secrets_never_reach_pages_logs_or_the_app_database(
    make_app: Any, store_copy: Path, fake_llm: Any, monkeypatch: Any, caplog: Any
) -> None:
    at = make_app(store_copy, fake_llm.url)
    monkeypatch.setenv("MANUALRAG_LLM__API_KEY", API_KEY)
    monkeypatch.setenv("MANUALRAG_LOG__LEVEL", "DEBUG")  # the app's logging at its most talkative
    caplog.set_level(logging.DEBUG)  # every logger: the openai client's and httpx's included
    secrets = (API_KEY.encode(), STAFF_PASSWORD.encode())
    pages: list[bytes] = []

    # Servers that echo the key in their errors (a 401, a proxy's 400), then a good answer.
    fake_llm.script = [
        Reply(status=401, body={"error": {"message": f"Incorrect API key provided: {API_KEY}"}}),
        Reply(status=400, body={"error": {"message": f"bad request for key {API_KEY}"}}),
        Reply("The wiring is drawn in the diagram [1] [2]."),
    ]
    at.run()
    for question in (
        "wiring diagram?",
        "controller wiring diagram?",
        "Show me the controller wiring diagram.",
    ):
        at = ask(at, question)
        pages.append(_page_bytes(at))
    text = all_text(at)
    assert "refused the API key (HTTP 401)" in text, f"the 401 is explained without the key:\n{text}"
    assert "bad request for key ***" in text, "the echoed key is masked in the error"
    assert fake_llm.chats[0].headers.get("authorization") == f"Bearer {API_KEY}", "the key was really used"

    # Staff screens: every answer on the review desk (trace, exact prompt), the gallery, the library.
    at = sign_in(at)
    pages.append(_page_bytes(at))
    at = switch_view(at, "Review")
    at.segmented_control(key="review_mode").set_value("All answers").run()
    for turn in Conversations(store_copy / "app.db").answers():
        at = at.selectbox(key="review_turn").set_value(turn.id).run()
        assert "Retrieval trace" in all_text(at)
        pages.append(_page_bytes(at))
    for view in ("Figures", "Library", "Ask"):
        at = switch_view(at, view)
        pages.append(_page_bytes(at))
    assert not at.exception, at.exception

    assert "chat/completions" in caplog.text, "the LLM traffic was logged (and is checked below)"
    for secret in secrets:
        assert not any(secret in page for page in pages), f"{secret!r} reached a page"
        assert secret.decode() not in caplog.text, f"{secret!r} reached the log"
        for path in store_copy.glob("app.db*"):
            assert secret not in path.read_bytes(), f"{secret!r} was stored in {path.name}"
        assert not [k for k, v in at.session_state.items() if secret.decode() in str(v)], (
            f"{secret!r} is kept in the session"
        )


def test_password_guessing_is_limited_across_sessions_and_restarts(
    make_app: Any, tmp_path: Path, fake_llm: Any
) -> None:
    """Each wrong guess comes from a fresh session (a new tab); the count is the app's, not the tab's."""
    store = tmp_path / "store"
    env = {"max_failed_logins": "3", "lockout_s": "120"}
    for n in range(3):
        at = sign_in(make_app(store, fake_llm.url, **env).run(), f"guess {n}")
        assert "Wrong staff password" in all_text(at), f"guess {n} should be refused as wrong"
    assert "wait 1" in all_text(at), "the third wrong password (in a third session) starts the lockout"

    # A fourth session, with the right password, still waits: a new tab starts from nothing.
    at = sign_in(make_app(store, fake_llm.url, **env).run(), STAFF_PASSWORD)
    assert "Too many wrong passwords" in all_text(at) and "Review" not in _views(at), all_text(at)

    # The count is in app.db: a restarted app (a fresh throttle over the same file) still waits.
    from manualrag.throttle import SignInThrottle

    assert SignInThrottle(store / "app.db").wait_s("local") > 100, "a restart does not lift the lock"
    stored = b"".join(p.read_bytes() for p in store.glob("app.db*"))
    assert b"guess" not in stored, "no password reaches app.db"
