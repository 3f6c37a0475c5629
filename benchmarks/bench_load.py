"""Concurrent users: question streams against one Engine while an upload ingests, against one user alone.

    .venv/bin/python benchmarks/bench_load.py [--streams 8] [--questions 3] [--token-delay 0.02]
        [--store STORE] [--llm URL] [--upload PDF]

Each stream is one conversation asked exactly as the browser app asks: a
``ui.jobs.AnswerJob`` per question (a thread that streams the answer and saves the
turn through ``manualrag.conversations``), follow-ups included, which the engine
rewrites into a standalone query first. The single-user run asks the same streams
one after another with nothing else going on; the load run starts them all at once
while ``ui.jobs.UploadQueue`` ingests a manual with scanned pages (OCR keeps the
cores busy).

The LLM is, by default, the scripted OpenAI-format server of the tests (real HTTP and
SSE) writing one word every ``--token-delay`` seconds and echoing the question's tag,
so what is measured is manualrag's own overhead and contention (retrieval, the
embedder, SQLite, Chroma, threads), and every answer can be checked against its own
question. ``--llm URL`` points at a real endpoint instead (the echo check is then
skipped; llama.cpp answers one request at a time, so its queueing is measured too).

Without ``--store`` the 7-page sample manual of the tests is ingested into a temp
store first. Figures are printed and written to benchmarks/out/load.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from manualrag.conversations import Conversations
from manualrag.engine import Engine

# Questions the sample manual answers (so retrieval always hands the model sources).
QUESTIONS = [
    "Which fuse protects the motor contactor coil?",
    "What does fault code F07452 mean?",
    "How long do the capacitors hold a charge after the supply is removed?",
    "What torque do the contactor terminals need?",
    "How often is the impeller inspected?",
    "What gloves are needed when testing live terminals?",
    "Where is the controller wiring diagram?",
    "What grease goes on the motor bearings?",
]
TAG = re.compile(r"ref-s(\d+)q(\d+)")
ANSWER_WORDS = 24  # a short answer, streamed word by word


def tag(stream: int, n: int) -> str:
    return f"ref-s{stream}q{n}"


def question(stream: int, n: int) -> str:
    """Question `n` of stream `stream`, carrying a tag the scripted model echoes."""
    return f"{QUESTIONS[(stream + n) % len(QUESTIONS)]} ({tag(stream, n)})"


def echo_responder(token_delay: float) -> Callable[[dict[str, Any]], Any]:
    """Replies for the scripted server: the asking question echoed (tag included) and three
    words of source 1, which the answer checks accept as grounded, streamed at
    `token_delay` s a word; a follow-up's rewrite request gets the question back."""
    sys.path.insert(0, str(ROOT / "tests" / "rag"))
    from llm_helpers import Reply

    def reply(body: dict[str, Any]) -> Reply:
        content = str(body["messages"][-1]["content"])
        if not body.get("stream"):  # the standalone-query rewrite of a follow-up
            last = re.search(r"Last question:\s*(.+)", content)
            return Reply(last.group(1).strip() if last else content[-200:])
        tags = TAG.findall(content)  # earlier questions come first; the one asked is last
        asked = question(int(tags[-1][0]), int(tags[-1][1])).split() if tags else ["no", "tag"]
        # A few words of source 1 too: a reply made only of the question's words would be
        # withheld as restating the question.
        first = re.search(r'<source id="1">\n[^\n]*\n(.*?)</source>', content, re.DOTALL)
        said = [w for w in re.findall(r"[A-Za-z]{4,}", first.group(1) if first else "")][:3]
        words = (asked * ANSWER_WORDS)[: ANSWER_WORDS - len(said)]
        return Reply(" ".join([*words, *said, "[1]."]), piece_delay=token_delay)

    return reply


@dataclass
class Sample:
    stream: int
    n: int
    question: str
    conversation: str
    asked_at: float
    first_token_s: float | None  # from asking to the first streamed word (retrieval included)
    total_s: float  # from asking to the saved answer
    answer: str
    error: str


def ask_conversation(
    engine: Engine, conversations: Conversations, stream: int, questions: int, history_turns: int = 6
) -> list[Sample]:
    """One user's conversation, asked as ui/chat.py asks: an AnswerJob per question, history from the store."""
    from ui.jobs import AnswerJob

    samples: list[Sample] = []
    cid = conversations.create(question(stream, 0))
    for n in range(questions):
        turns = conversations.turns(cid)
        history = [t.answer for t in turns if not t.answer.error][-history_turns:]
        job = AnswerJob(engine, conversations, cid, question(stream, n), [], history)
        seen = -1
        while not job.done:
            seen = job.wait(seen, timeout=1.0)
        turn = conversations.turn(job.turn_id) if job.turn_id is not None else None
        finished = job.finished_at or time.time()
        samples.append(
            Sample(
                stream=stream,
                n=n,
                question=job.question,
                conversation=cid,
                asked_at=job.asked_at,
                first_token_s=job.first_token_at - job.asked_at if job.first_token_at else None,
                total_s=finished - job.asked_at,
                answer=turn.answer.text if turn else job.text,
                error=(turn.answer.error if turn else "the answer was not saved"),
            )
        )
    return samples


def run_streams(
    engine: Engine, conversations: Conversations, streams: Sequence[int], questions: int, concurrent: bool
) -> list[Sample]:
    """Each stream's conversation, all at once (released together) or one after another."""
    if not concurrent:
        return [s for stream in streams for s in ask_conversation(engine, conversations, stream, questions)]
    results: dict[int, list[Sample]] = {}
    failures: list[str] = []
    start = threading.Barrier(len(streams))

    def one(stream: int) -> None:
        start.wait()
        try:
            results[stream] = ask_conversation(engine, conversations, stream, questions)
        except Exception as err:  # noqa: BLE001 - reported as a problem of the run, not swallowed
            failures.append(f"stream {stream}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=one, args=(s,), name=f"load-stream-{s}") for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError("; ".join(failures))
    return [s for stream in streams for s in results[stream]]


def problems(samples: Sequence[Sample], conversations: Conversations, echo: bool = True) -> list[str]:
    """Errors, answers that are not their own question's, and conversations holding another's turns."""
    found: list[str] = []
    for s in samples:
        if s.error:
            found.append(f"{tag(s.stream, s.n)}: error {s.error}")
        named = {f"ref-s{a}q{b}" for a, b in TAG.findall(s.answer)}
        if echo and named != {tag(s.stream, s.n)}:
            found.append(f"{tag(s.stream, s.n)}: answer is not its own: {s.answer[:80]!r}")
    for cid in sorted({s.conversation for s in samples}):
        mine = sorted((s.n, s.question) for s in samples if s.conversation == cid)
        stored = [t.question for t in conversations.turns(cid)]
        if stored != [q for _, q in mine]:
            found.append(f"conversation {cid} holds {stored}, expected {[q for _, q in mine]}")
    return found


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(samples: Sequence[Sample]) -> dict[str, float]:
    first = [s.first_token_s for s in samples if s.first_token_s is not None]
    total = [s.total_s for s in samples]
    return {
        "answers": len(samples),
        "first_token_p50_s": round(percentile(first, 50), 3) if first else math.nan,
        "first_token_p95_s": round(percentile(first, 95), 3) if first else math.nan,
        "total_p50_s": round(percentile(total, 50), 3),
        "total_p95_s": round(percentile(total, 95), 3),
    }


def ratios(load: dict[str, float], single: dict[str, float]) -> dict[str, float]:
    return {
        key.replace("_s", "_ratio"): round(load[key] / single[key], 2)
        for key in ("first_token_p50_s", "first_token_p95_s", "total_p50_s", "total_p95_s")
        if single.get(key)
    }


def upload_pdf(path: Path, scanned_pages: int = 6) -> Path:
    """A manual with text and scanned pages: OCR keeps an ingest busy for a while."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pdfgen import ManualBuilder

    m = ManualBuilder()
    m.text_page("Winch W4 manual", ["The winch W4 brake is adjusted with a 13 mm spanner."])
    for n in range(scanned_pages):
        m.scanned_page([f"Winch W4 service note {n + 1}", "Check the brake band for wear every month."])
    return m.save(path)


def wait_running(job: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while job.state == "queued" or (job.state == "running" and job.stage in ("", "reading")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the upload did not start: {job.state} {job.stage}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=8, help="simultaneous conversations")
    parser.add_argument("--questions", type=int, default=3, help="questions per conversation")
    parser.add_argument("--token-delay", type=float, default=0.02, help="scripted model: s per word")
    parser.add_argument("--store", type=Path, help="a store to copy (default: the sample manual)")
    parser.add_argument("--llm", help="an OpenAI-compatible /v1 URL instead of the scripted server")
    parser.add_argument("--upload", type=Path, help="PDF ingested during the load (default: generated)")
    args = parser.parse_args()

    from manualrag.settings import Settings
    from ui.jobs import UploadQueue

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    fake = None
    try:
        settings = Settings(_env_file=None)
        settings.store.path = work / "store"
        settings.ingest.workers = 1
        if args.llm:
            settings.llm.base_url = args.llm
        else:
            sys.path.insert(0, str(ROOT / "tests" / "rag"))
            from llm_helpers import FakeLlm

            fake = FakeLlm()
            fake.responder = echo_responder(args.token_delay)
            settings.llm.base_url = fake.url
        engine = Engine(settings)
        if args.store:
            shutil.copytree(
                args.store, settings.store.path, ignore=shutil.ignore_patterns("app.db*", "*.lock")
            )
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from pdfgen import sample_manual

            pdf = sample_manual(work / "p200-controller.pdf")
            print(f"ingesting {pdf.name}…", file=sys.stderr, flush=True)
            engine.ingest_upload(pdf.read_bytes(), pdf.name)
        conversations = Conversations(settings.store.path / "app.db")
        ask_conversation(engine, conversations, 999, 1)  # warm: embedder loaded, LLM client open
        streams = list(range(args.streams))
        echo = fake is not None

        single = run_streams(engine, conversations, streams, args.questions, concurrent=False)
        queue = UploadQueue(engine, 1 << 30)
        data = (args.upload or upload_pdf(work / "winch-w4.pdf")).read_bytes()
        job = queue.submit_upload("load-upload.pdf", data, may_replace=False)
        wait_running(job)
        began = time.time()
        load = run_streams(engine, conversations, [s + 100 for s in streams], args.questions, concurrent=True)
        ended = time.time()
        while job.active:
            time.sleep(0.2)

        result = {
            "streams": args.streams,
            "questions_per_stream": args.questions,
            "llm": args.llm or f"scripted, {args.token_delay} s per word",
            "cpu_count": os.cpu_count(),
            "single_user": summary(single),
            "under_load": summary(load),
            "load_over_single": ratios(summary(load), summary(single)),
            "upload": {"state": job.state, "message": job.message,
                       "overlapped_s": round(min(ended, job.finished_at or ended) - began, 1)},
            "problems": problems(single, conversations, echo) + problems(load, conversations, echo),
        }  # fmt: skip
        print(json.dumps(result, indent=2))
        out = ROOT / "benchmarks" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "load.json").write_text(
            json.dumps({**result, "samples": [asdict(s) for s in single + load]}, indent=2)
        )
    finally:
        if fake is not None:
            fake.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
