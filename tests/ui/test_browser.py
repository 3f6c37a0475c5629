"""End to end in a real headless Chromium against `manualrag serve`.

The server runs as a subprocess on a free port over a copy of the sample store; its
LLM is the scripted OpenAI-format server (real HTTP and SSE), so the cited figure is
known. Besides the flows, two figures of the issue are measured and asserted:
the first answer token shows in the browser within 1 s of the engine yielding it,
and a question asked while an upload ingests is answered (the page stays usable).
The main screens are saved under docs/ for the README.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserhelpers import CHROMIUM, FLAGS, open_evidence, serve
from uihelpers import ROOT, STAFF_PASSWORD, FakeLlm, Reply, tiny_manual

from manualrag.conversations import Conversations

DOCS = ROOT / "docs"
SHOTS = ROOT / "benchmarks" / "out" / "screenshots"  # ignored by git
ASK = "Ask about your manuals…"
MARKER = "Wiring"  # the scripted answer's first word: the observer below waits for it
ANSWER = (
    f"{MARKER} of the P-200 controller is drawn in Figure 2-1 [1]: the main breaker feeds contactor K1, "
    "protected by fuse F3 (20 AMP) [2]. Isolate the supply before opening the cabinet [3]."
)
HOSTILE = (
    # No decimals or codes in it: a value no source holds gets an answer withheld (rag/answer.py).
    "Hostile text: ![leak](http://localhost:9/leak.png) <img src=http://localhost:9/x.png> "
    "<script>document.title='owned'</script> [click](http://evil.example/) [1]"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]

# Records, in the page's clock (epoch ms, the same clock as the server's on one machine),
# when text containing `marker` first appears, and whether the streaming cursor was seen.
OBSERVER = """
(marker) => {
  if (window.__obs) window.__obs.disconnect();
  window.__seen = null; window.__cursor = false;
  const check = () => {
    const msgs = document.querySelectorAll('[data-testid="stChatMessage"]');
    for (const m of msgs) {
      const t = m.innerText;
      if (t.includes(marker)) {
        if (window.__seen === null) window.__seen = Date.now();
        if (t.includes('\\u258c')) window.__cursor = true;
      }
    }
  };
  window.__obs = new MutationObserver(check);
  window.__obs.observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


@pytest.fixture(scope="module")
def llm() -> Iterator[Any]:
    server = FakeLlm()
    yield server
    server.close()


@pytest.fixture(scope="module")
def served(
    sample_store: Path, llm: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """`python -m manualrag.cli serve` on a free port, until the module's tests are done."""
    store = tmp_path_factory.mktemp("e2e") / "store"
    shutil.copytree(sample_store, store, ignore=shutil.ignore_patterns("app.db*", "write.lock"))
    env = {
        "MANUALRAG_LLM__BASE_URL": llm.url,
        "MANUALRAG_LLM__MAX_RETRIES": "0",
        "MANUALRAG_UI__STAFF_PASSWORD": STAFF_PASSWORD,
    }
    with serve(store, store.parent / "serve.log", env) as url:
        yield {"url": url, "store": store}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, served: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    pg = context.new_page()
    pg.outside = []  # requests to anything but the app: there must be none
    pg.on("request", lambda r: None if r.url.startswith(served["url"]) else pg.outside.append(r.url))
    pg.goto(served["url"])
    pg.get_by_placeholder(ASK).wait_for(timeout=90_000)
    yield pg
    context.close()


def _shot(page: Any, name: str) -> None:
    """Screenshots go to docs/ (for the README) only when asked: a test run must not edit the repo."""
    folder = DOCS if os.environ.get("MANUALRAG_UPDATE_SCREENSHOTS") == "1" else SHOTS
    folder.mkdir(parents=True, exist_ok=True)
    page.mouse.move(1, 1)  # no hover tooltips in the picture
    time.sleep(0.8)  # let images and fonts settle
    page.screenshot(path=str(folder / name))


def _ask(page: Any, question: str, marker: str = MARKER) -> float:
    """Send `question`; the observer then waits for `marker`, which must be new to the page."""
    page.evaluate(OBSERVER, marker)
    box = page.get_by_placeholder(ASK)
    box.fill(question)
    sent = time.time()
    box.press("Enter")
    return sent


def _wait_answer(page: Any, marker: str = MARKER, timeout_ms: int = 90_000) -> None:
    """Until the answer carrying `marker` is complete (its footer is drawn)."""
    page.wait_for_function(
        """(marker) => Array.from(document.querySelectorAll('[data-testid="stChatMessage"]')).some(
             m => m.innerText.includes(marker) && m.innerText.includes('Copy answer with sources'))""",
        arg=marker,
        timeout=timeout_ms,
    )


def _report(name: str, values: dict[str, Any]) -> None:
    # Printed for `pytest -s`, and kept beside the screenshots for the README.
    print(f"\n{name}: {json.dumps(values)}")
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(values, indent=2))


def test_streamed_answer_with_figure_then_citation(page: Any, served: dict[str, Any], llm: Any) -> None:
    llm.script = [Reply(ANSWER)]
    sent = _ask(page, "Show me the controller wiring diagram.")
    _wait_answer(page)
    thumb = page.locator('[data-testid="stChatMessage"] [data-testid="stImage"] img').first
    thumb.wait_for()
    assert page.evaluate("(img) => img.naturalWidth", thumb.element_handle()) > 0, "the figure image loads"
    assert page.get_by_role("button", name="Figure 2-1, p.2").count() >= 1, "labelled 'Figure 2-1, p.2'"

    assert page.outside == [], f"the page fetched from outside the app: {page.outside}"

    turn = Conversations(served["store"] / "app.db").answers()[0]
    seen_ms = page.evaluate("window.__seen")
    assert seen_ms is not None and turn.first_token_at is not None
    lag = seen_ms / 1000 - turn.first_token_at
    _report("ui_first_token", {
        "engine_first_token_after_submit_s": round(turn.first_token_at - sent, 3),
        "browser_shows_it_after_s": round(lag, 3),
        "cursor_seen": page.evaluate("window.__cursor"),
    })  # fmt: skip
    assert lag < 1.0, f"the first token should show within 1 s of the engine's, took {lag:.2f} s"
    _shot(page, "ui-answer.png")

    open_evidence(page, page.get_by_role("button", name="p200-controller.pdf p.2"), "Page 2 of 7")
    page.get_by_text("outlined in red").wait_for()
    _shot(page, "ui-citation.png")
    page.get_by_role("button", name="Next page").click()
    page.get_by_text("Page 3 of 7").wait_for(timeout=30_000)
    open_evidence(page, page.get_by_role("button", name="Figure 2-1, p.2"), "Show it on the page")
    _shot(page, "ui-figure.png")

    # Hostile markdown and HTML in an answer: shown as text, never loaded, linked or run.
    # A follow-up: rewrite first. The hostile text is quoted in the question, so the answer is
    # grounded; "main breaker" (the diagram's) makes it more than a restatement of the question.
    llm.script = [Reply("controller wiring"), Reply(f"The main breaker. {HOSTILE}")]
    _ask(page, f"And the hostile text? {HOSTILE}", "Hostile")
    _wait_answer(page, "Hostile")
    assert page.locator('img[src*="localhost:9"]').count() == 0, "no image from elsewhere loads"
    assert page.locator('a[href*="evil.example"]').count() == 0, "no link to elsewhere is made"
    assert page.title() != "owned", "no script from an answer runs"
    assert page.get_by_text("[click](", exact=False).count() >= 1, "the text itself is shown"
    assert page.outside == [], f"the page fetched from outside the app: {page.outside}"


def test_upload_while_asking(page: Any, served: dict[str, Any], llm: Any, tmp_path: Path) -> None:
    from pdfgen import ManualBuilder

    # A baseline first: the same kind of question with nothing being ingested.
    llm.script = [Reply("Baselinefuse [1].")]
    sent = _ask(page, "Which fuse protects the motor contactor coil?", "Baselinefuse")
    _wait_answer(page, "Baselinefuse")
    baseline = page.evaluate("window.__seen") / 1000 - sent

    # Scanned pages make the ingest take a while (OCR), so the next question lands during it:
    # two dozen of them: 4 were read in under a second on an idle machine, and with 12 the
    # ingest once committed 0.07 s before the answer's first token.
    m = ManualBuilder()
    m.text_page("Winch W4 manual", ["The winch W4 brake is adjusted with a 13 mm spanner."])
    for n in range(24):
        m.scanned_page([f"Winch W4 service note {n + 1}", "Check the brake band for wear every month."])
    winch = m.save(tmp_path / "winch-w4.pdf")
    notes = tmp_path / "notes.pdf"
    notes.write_text("not a PDF at all")
    pump = tiny_manual(tmp_path / "pump-b7.pdf", "Bilge pump B7", ["The bilge pump B7 runs on 24 volts DC."])

    dropzone = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    dropzone.set_input_files([str(winch), str(notes), str(pump)])
    page.get_by_text("not a PDF").wait_for(timeout=30_000)
    page.get_by_text("winch-w4.pdf: reading pages").wait_for(timeout=60_000)
    _shot(page, "ui-upload.png")

    # A follow-up in the same conversation: the engine first asks for a standalone query.
    llm.script = [Reply("fuse contactor coil"), Reply("Duringupload [1].")]
    sent = _ask(page, "Which fuse protects the contactor coil?", "Duringupload")
    _wait_answer(page, "Duringupload")
    during = page.evaluate("window.__seen") / 1000 - sent
    page.get_by_text("winch-w4.pdf: added").wait_for(timeout=180_000)
    page.get_by_text("pump-b7.pdf: added").wait_for(timeout=60_000)

    turn = Conversations(served["store"] / "app.db").answers()[0]
    committed = _ingested_at(served["store"], "winch-w4.pdf")
    _report("ui_during_upload", {
        "answer_visible_after_s_idle": round(baseline, 3),
        "answer_visible_after_s_during_ingest": round(during, 3),
        "ingest_committed_after_first_token_s": round(committed - (turn.first_token_at or 0), 1),
    })  # fmt: skip
    # ingested_at is stored to the second: the commit happened within a second after it.
    assert committed + 1 > (turn.first_token_at or 0), "the question should have been answered during the ingest"
    assert during < 15, f"a question during an upload should be answered promptly, took {during:.1f} s"

    llm.script = [Reply("bilge pump B7 voltage"), Reply("Pumpvolts: 24 volts [1].")]
    _ask(page, "What voltage does the bilge pump B7 use?", "Pumpvolts")
    _wait_answer(page, "Pumpvolts")
    page.get_by_role("button", name="pump-b7.pdf p.1").first.wait_for(timeout=60_000)


def _ingested_at(store: Path, name: str) -> float:
    from datetime import datetime

    from manualrag.engine import Engine
    from manualrag.settings import Settings

    settings = Settings(_env_file=None)
    settings.store.path = store
    info = next(m for m in Engine(settings).manuals() if m.name == name)
    return datetime.fromisoformat(info.ingested_at).timestamp()


def test_staff_screens(page: Any, served: dict[str, Any]) -> None:
    page.get_by_text("Support staff sign-in").click()
    page.get_by_label("Staff password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as support staff.").first.wait_for(timeout=30_000)
    page.get_by_text("Library", exact=True).click()
    page.get_by_role("heading", name="Library").wait_for()
    page.get_by_text("p200-controller.pdf · 0 warnings").click()
    page.get_by_role("button", name="Remove").first.wait_for()
    _shot(page, "ui-library.png")
    page.get_by_text("Review", exact=True).click()
    page.get_by_role("heading", name="Review answers").wait_for()
    page.get_by_text("All answers").click()
    page.get_by_text("Retrieval trace").wait_for(timeout=30_000)
    _shot(page, "ui-review.png")
    page.get_by_text("Figures", exact=True).click()
    page.get_by_text("Figure 2-1, p.2").wait_for(timeout=30_000)
    _shot(page, "ui-figures.png")


def test_evidence_card_shows_before_the_first_token(page: Any, llm: Any) -> None:
    """Retrieval's best evidence is on screen while the model still reads: the scripted
    model waits before its first token, and the card must be there before the answer."""
    llm.script = [Reply("Evidenceanswer: F3 takes a 20 AMP fuse [1].", delay=8.0)]
    sent = _ask(page, "Which fuse protects the main contactor?", "Evidenceanswer")
    card = page.locator('[data-testid="stChatMessage"]').get_by_text("Best evidence", exact=False).first
    try:
        card.wait_for(timeout=60_000)
    finally:
        _shot(page, "ui-evidence-card.png")
    card_at = time.time()
    assert page.evaluate("window.__seen") is None, "the card came after the answer's first words"
    _wait_answer(page, "Evidenceanswer")
    answer_at = page.evaluate("window.__seen") / 1000
    _report("ui_evidence_card", {"card_after_submit_s": round(card_at - sent, 3),
                                 "first_words_after_submit_s": round(answer_at - sent, 3)})
    assert card_at < answer_at
