"""A real `manualrag serve` and a real Chromium, for the browser tests that need their own server.

Everything stays on 127.0.0.1: the server listens there, and `guard` records every
request a page makes and refuses (never sends) any that is not for the loopback host.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from uihelpers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ASK = re.compile(r"^Ask about your manuals")  # the chat box (its wording varies with the embedder)
START_TIMEOUT_S = 120  # the app loads the embedder before the page is usable; a busy CI box is slow
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(store: Path, log: Path, env: dict[str, str]) -> Iterator[str]:
    """`python -m manualrag.cli serve` over `store` on a free port, configured by `env`; yields its URL."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("MANUALRAG_")}
    full.update(PYTHONPATH=str(ROOT), MANUALRAG_INGEST__WORKERS="1", **env)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "manualrag.cli", "serve", "--store", str(store), "--port", str(port)],
            cwd=store.parent, env=full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://{LOOPBACK}:{port}/"
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"manualrag serve did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp:
            return bool(resp.read().strip() == b"ok")
    except OSError:
        return False


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def guard(context: Any) -> list[str]:
    """Record every request of the pages in `context`; any not for 127.0.0.1 is aborted, and
    listed in the returned list (which must stay empty)."""
    outside: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname == LOOPBACK:
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    context.route("**/*", route)
    return outside


def open_app(context: Any, url: str) -> Any:
    page = context.new_page()
    page.goto(url)
    page.get_by_placeholder(ASK).wait_for(timeout=START_TIMEOUT_S * 1000)
    return page


def ask(page: Any, question: str, timeout_ms: int = 120_000) -> float:
    """Type `question` into the chat box and send it; the wall-clock time it was sent.

    The box is disabled while the page's previous run finishes (``submit_mode="disable"``):
    on a busy machine that can take a while, so the wait is long.
    """
    box = page.get_by_placeholder(ASK)
    box.fill(question, timeout=timeout_ms)
    sent = time.time()
    box.press("Enter")
    return sent


def wait_answer(page: Any, marker: str, timeout_ms: int = 90_000) -> float:
    """Until an answer holding `marker` is complete (its footer is drawn); the time it was."""
    page.wait_for_function(
        """(marker) => Array.from(document.querySelectorAll('[data-testid="stChatMessage"]')).some(
             m => m.innerText.includes(marker) && m.innerText.includes('Copy answer with sources'))""",
        arg=marker,
        timeout=timeout_ms,
    )
    return time.time()


def open_evidence(page: Any, button: Any, shows: str, timeout_ms: int = 30_000) -> None:
    """Click an evidence button until `shows` is on the page. A click that lands while
    Streamlit re-runs the page is lost (seen on a busy CI box), so it is clicked again."""
    deadline = time.time() + timeout_ms / 1000
    while True:
        button.first.click()
        try:
            page.get_by_text(shows).first.wait_for(timeout=min(10_000, timeout_ms))
            return
        except Exception:  # playwright's TimeoutError: click again while time is left
            if time.time() >= deadline:
                raise


def chat_text(page: Any) -> str:
    """The text of every chat message on the page (not the sidebar)."""
    return str(
        page.evaluate(
            """() => Array.from(document.querySelectorAll('[data-testid="stChatMessage"]'))
                 .map(m => m.innerText).join('\\n')"""
        )
    )
