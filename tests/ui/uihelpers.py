"""Helpers for the app's tests: paths, LLM servers, tiny manuals and AppTest shortcuts.

A module with a unique name (not conftest.py), so test files can import it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "ui" / "app.py"
STAFF_PASSWORD = "correct horse battery staple"
RUN_TIMEOUT = 120  # s: an AppTest run waits for the whole answer

# The scripted OpenAI-format server and SmolLM2's location live with the answer-stage tests.
sys.path.insert(0, str(ROOT / "tests" / "rag"))
from llm_helpers import FakeLlm, Reply, smollm_path  # noqa: E402

__all__ = ["FakeLlm", "Reply", "smollm_path"]


def tiny_manual(path: Path, heading: str, paragraphs: list[str]) -> Path:
    """A one-page text manual: ingests in a second or two (no figures, no OCR)."""
    from pdfgen import ManualBuilder

    m = ManualBuilder()
    m.text_page(heading, paragraphs)
    return m.save(path)


def all_text(at: Any) -> str:
    """Every text the page shows (markdown, captions, alerts, button labels), one per line."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "success", "info", "warning", "error", "subheader", "header", "text"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(str(b.label) for b in at.button)
    # Labels are markdown-escaped on purpose (ui/safe.py): compare with the plain text.
    return "\n".join(p.replace("\\", "") for p in parts)


def ask(at: Any, question: str) -> Any:
    return at.chat_input[0].set_value(question).run()


def button(at: Any, label_part: str) -> Any:
    """The first button whose (unescaped) label contains `label_part`."""
    for b in at.button:
        if label_part in str(b.label).replace("\\", ""):
            return b
    raise AssertionError(f"no button with {label_part!r}; buttons: {[b.label for b in at.button]}")


def sign_in(at: Any, password: str = STAFF_PASSWORD) -> Any:
    at.sidebar.text_input(key="staff_password_input").input(password)
    return button(at, "Sign in").click().run()


def switch_view(at: Any, view: str) -> Any:
    return at.sidebar.radio(key="view").set_value(view).run()


def wait_for(at: Any, done: Callable[[Any], bool], timeout: float = 90.0, what: str = "") -> Any:
    """Rerun the page (as its polling fragment would) until `done(at)`."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        if done(at):
            return at
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or done}; page shows:\n{all_text(at)}")
        time.sleep(0.5)
