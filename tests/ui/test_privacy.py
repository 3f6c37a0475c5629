"""Conversations are private: two real Chromium contexts (two browsers) against `manualrag serve`.

Browser A asks; browser B must not list A's conversation, and opening A's `?c=<id>`
link in B shows "not found" and none of A's words. A reload of A (a new Streamlit
session, the cookie kept) still lists and opens it. app.db keeps only the token's hash.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserhelpers import CHROMIUM, ask, chat_text, chromium, open_app, serve
from uihelpers import STAFF_PASSWORD, FakeLlm, Reply

from manualrag.conversations import owner_key

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]

ANSWER = "Wiring of the P-200 controller is drawn in Figure 2-1 [1]."
QUESTION_A = "Show the alpha cabinet wiring diagram."
QUESTION_B = "Show the bravo cabinet wiring diagram."


@pytest.fixture
def served(sample_store: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    llm = FakeLlm()
    llm.responder = lambda body: Reply(ANSWER) if body.get("stream") else Reply("controller wiring diagram")
    store = tmp_path / "store"
    shutil.copytree(sample_store, store, ignore=shutil.ignore_patterns("app.db*", "write.lock"))
    env = {
        "MANUALRAG_LLM__BASE_URL": llm.url,
        "MANUALRAG_LLM__MAX_RETRIES": "0",
        "MANUALRAG_UI__STAFF_PASSWORD": STAFF_PASSWORD,
    }
    try:
        with serve(store, tmp_path / "serve.log", env) as url:
            yield {"url": url, "store": store}
    finally:
        llm.close()


def _recent(page: Any) -> str:
    """The sidebar's 'Recent conversations' list, opened; '' when the sidebar has none."""
    sidebar = page.get_by_test_id("stSidebar")
    expander = sidebar.get_by_text("Recent conversations")
    if expander.count() == 0:
        return ""
    expander.click()
    page.wait_for_timeout(500)
    return str(sidebar.inner_text())


def _answered(page: Any, count: int = 1) -> None:
    """Until `count` answers are complete on the page (each draws its footer last). Whether the
    scripted answer is shown or withheld does not matter here: who sees the conversation does."""
    page.wait_for_function(
        """(n) => Array.from(document.querySelectorAll('[data-testid="stChatMessage"]'))
             .filter(m => m.innerText.includes('Copy answer with sources')).length >= n""",
        arg=count,
        timeout=120_000,
    )


def _conversation_id(page: Any) -> str:
    page.wait_for_function("() => new URL(location.href).searchParams.get('c')", timeout=30_000)
    found = re.search(r"[?&]c=([0-9a-f]+)", page.url)
    assert found, f"the conversation's id should be in the URL, got {page.url}"
    return found.group(1)


def test_two_browsers_see_only_their_own_conversations(served: dict[str, Any]) -> None:
    url = served["url"]
    with chromium() as browser:
        alice, bob = browser.new_context(), browser.new_context()
        a = open_app(alice, url)
        ask(a, QUESTION_A)
        _answered(a)
        cid = _conversation_id(a)

        # The browser keeps an unguessable token, and app.db keeps only its hash.
        cookies = {c["name"]: c for c in alice.cookies()}
        assert "manualrag_owner" in cookies, f"browser A should get an owner cookie, got {list(cookies)}"
        token = cookies["manualrag_owner"]["value"]
        assert re.fullmatch(r"[0-9a-f]{64}", token), f"the token should be 256 random bits in hex: {token!r}"
        assert cookies["manualrag_owner"]["sameSite"] == "Strict", "the cookie is never sent cross-site"
        with sqlite3.connect(served["store"] / "app.db") as db:
            owners = [r[0] for r in db.execute("SELECT owner FROM conversations WHERE id = ?", (cid,))]
        assert owners == [owner_key(token)] and token not in owners, f"app.db should hold the hash: {owners}"

        # Browser B: A's conversation is neither listed nor opened by its link.
        b = open_app(bob, url)
        assert "alpha cabinet" not in _recent(b), "another browser must not list A's conversation"
        b.goto(f"{url}?c={cid}")
        b.get_by_text("Conversation not found").wait_for(timeout=60_000)
        assert "alpha cabinet" not in b.content(), "A's question must not reach browser B"
        assert chat_text(b) == "", "none of A's conversation reaches browser B"
        # B's own question starts B's own conversation, not one inside A's.
        ask(b, QUESTION_B)
        _answered(b)
        assert "alpha cabinet" not in chat_text(b), "B's question must not be asked inside A's conversation"
        b_cid = _conversation_id(b)
        assert b_cid != cid

        # A reload of A (a new session, same cookie) lists and opens A's conversation, not B's.
        a.reload()
        a.get_by_test_id("stChatMessage").get_by_text(QUESTION_A).wait_for(timeout=120_000)
        listed = _recent(a)
        assert "alpha cabinet" in listed and "bravo cabinet" not in listed, f"A lists only its own:\n{listed}"
        a.goto(f"{url}?c={b_cid}")
        a.get_by_text("Conversation not found").wait_for(timeout=60_000)
        assert "bravo cabinet" not in a.content(), "B's question must not reach browser A"
        alice.close()
        bob.close()
