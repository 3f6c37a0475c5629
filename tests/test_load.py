"""Concurrent users, bounded and on 127.0.0.1 only: no errors, no crossed conversations.

1. Eight conversations of three questions each against one Engine, asked the way the
   browser app asks (ui/jobs.AnswerJob, turns saved through manualrag.conversations),
   while ui/jobs.UploadQueue ingests a manual with scanned pages; the scripted LLM
   streams at a set pace and echoes each question's tag, so every answer can be
   matched to its question.
2. Three Chromium sessions against `manualrag serve`, each with its own question and
   follow-up, while one of them uploads a manual.

Latency under load against one user alone is printed (p50/p95, first token and total);
`benchmarks/bench_load.py` measures the same at any size. Timings are not asserted:
this shared 2-core box makes them noise, and targets live in benchmarks/.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT / "benchmarks", ROOT / "tests" / "rag", ROOT / "tests" / "ui"):
    sys.path.insert(0, str(folder))

import bench_load as load
import browserhelpers as web
from llm_helpers import FakeLlm

from manualrag.conversations import Conversations

pytestmark = pytest.mark.slow

STREAMS = 8
QUESTIONS = 3
TOKEN_DELAY_S = 0.01  # the scripted model's pace: ~0.25 s an answer, so streams overlap
UPLOAD_TIMEOUT_S = 180
# Enough scanned pages that the upload outlasts the questions asked during it: with 3, an
# idle CI machine had finished the ingest before the browser sessions asked.
SCANNED_PAGES = 15


@pytest.fixture
def echo_llm() -> Iterator[FakeLlm]:
    server = FakeLlm()
    server.responder = load.echo_responder(TOKEN_DELAY_S)
    yield server
    server.close()


def test_eight_streams_and_an_upload_against_one_engine(
    ingested_engine: Any, echo_llm: FakeLlm, tmp_path: Path
) -> None:
    from ui.jobs import UploadQueue

    engine = ingested_engine
    engine.settings.llm.base_url = echo_llm.url
    engine.settings.llm.max_retries = 0
    conversations = Conversations(engine.settings.store.path / "app.db")
    load.ask_conversation(engine, conversations, 99, 1)  # warm: embedder loaded, LLM client open

    single = load.run_streams(engine, conversations, [0, 1], QUESTIONS, concurrent=False)
    queue = UploadQueue(engine, 1 << 30)
    pdf = load.upload_pdf(tmp_path / "winch.pdf", scanned_pages=SCANNED_PAGES).read_bytes()
    job = queue.submit_upload("winch-w4.pdf", pdf, may_replace=False)
    load.wait_running(job)
    many = load.run_streams(engine, conversations, list(range(10, 10 + STREAMS)), QUESTIONS, concurrent=True)
    first_asked = min(s.asked_at for s in many)

    assert load.problems(single + many, conversations) == [], "no errors and no crossed answers or turns"
    assert len({s.conversation for s in many}) == STREAMS, "one conversation per stream"
    assert job.finished_at is None or job.finished_at > first_asked, (
        "the questions were asked during the ingest"
    )
    deadline = time.monotonic() + UPLOAD_TIMEOUT_S
    while job.active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.state == "done", f"the upload should be ingested meanwhile: {job.state} {job.message}"
    hits = engine.search("winch W4 brake spanner").hits
    assert hits and hits[0].manual == "winch-w4.pdf", "the uploaded manual is searchable at once"

    figures = {"single_user": load.summary(single), "under_load": load.summary(many)}
    figures["load_over_single"] = load.ratios(figures["under_load"], figures["single_user"])
    print(f"\nengine load, {STREAMS} streams x {QUESTIONS} questions + an upload: {json.dumps(figures)}")


# -- three browser sessions ----------------------------------------------------------------------


def test_three_browser_sessions_during_an_upload(
    sample_store: Path, echo_llm: FakeLlm, tmp_path: Path
) -> None:
    if not web.CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    store = tmp_path / "store"
    shutil.copytree(sample_store, store, ignore=shutil.ignore_patterns("app.db*", "write.lock"))
    winch = load.upload_pdf(tmp_path / "winch-w4.pdf", scanned_pages=SCANNED_PAGES)
    sessions = [0, 1, 2]
    with (
        web.serve(store, tmp_path / "serve.log", {"MANUALRAG_LLM__BASE_URL": echo_llm.url}) as url,
        web.chromium() as b,
    ):
        contexts = [b.new_context(viewport={"width": 1300, "height": 900}) for _ in sessions]
        outside = [web.guard(c) for c in contexts]
        pages = [web.open_app(c, url) for c in contexts]

        # Each user alone first, once the models are loaded: the baseline.
        pages[0].get_by_text("Search and answer models ready").wait_for(timeout=web.START_TIMEOUT_S * 1000)
        alone: list[float] = []
        for s in sessions:
            sent = web.ask(pages[s], load.question(s, 0))
            alone.append(web.wait_answer(pages[s], load.tag(s, 0)) - sent)

        # Session 0 uploads a manual (OCR keeps the server busy); all three ask at once, twice.
        pages[0].locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(winch))
        pages[0].get_by_text("winch-w4.pdf: reading pages").wait_for(timeout=web.START_TIMEOUT_S * 1000)
        together: list[float] = []
        for n in (1, 2):
            asked = {s: web.ask(pages[s], load.question(s, n)) for s in sessions}
            if n == 1:
                assert pages[0].get_by_text("winch-w4.pdf: added").count() == 0, "asked during the ingest"
            for s in sessions:
                together.append(web.wait_answer(pages[s], load.tag(s, n)) - asked[s])
        pages[0].get_by_text("winch-w4.pdf: added").wait_for(timeout=UPLOAD_TIMEOUT_S * 1000)

        asked_by = {s: {load.tag(s, n) for n in (0, 1, 2)} for s in sessions}
        for s in sessions:
            shown = web.chat_text(pages[s])
            others = set().union(*asked_by.values()) - asked_by[s]
            assert all(t in shown for t in asked_by[s]), f"session {s} shows its own turns"
            assert not [t for t in others if t in shown], f"session {s} shows another session's turns"
            assert "Something went wrong" not in pages[s].inner_text("body"), f"session {s} shows an error"
            assert outside[s] == [], f"session {s} fetched from outside 127.0.0.1: {outside[s]}"
        for c in contexts:
            c.close()

    turns = Conversations(store / "app.db").answers()
    assert not [t.answer.error for t in turns if t.answer.error], "no answer failed"
    by_conversation: dict[str, set[int]] = {}
    for t in turns:
        tags = load.TAG.findall(t.question)
        by_conversation.setdefault(t.conversation_id, set()).add(int(tags[0][0]))
    assert sorted(len(v) for v in by_conversation.values()) == [1, 1, 1], (
        f"three conversations, each one session's: {by_conversation}"
    )
    figures = {
        "alone_p50_s": round(load.percentile(alone, 50), 2),
        "together_during_upload_p50_s": round(load.percentile(together, 50), 2),
        "together_during_upload_max_s": round(max(together), 2),
    }
    figures["p50_ratio"] = round(figures["together_during_upload_p50_s"] / figures["alone_p50_s"], 2)
    print(f"\nbrowser, 3 sessions, question to complete answer on the page: {json.dumps(figures)}")
