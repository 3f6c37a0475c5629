"""Structured logs: ingest stages, per-request timings, worker processes, and no secrets in the output."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdfgen import ManualBuilder
from pydantic import SecretStr

from manualrag import logs
from manualrag.cli import main
from manualrag.engine import Engine
from manualrag.settings import Settings

sys.path.insert(0, str(Path(__file__).parent / "rag"))
from llm_helpers import FakeLlm, Reply  # noqa: E402

SECRETS = {
    "api_key": "sk-test-9f8e7d6c5b4a",
    "staff_password": "correct horse battery",
    "oidc_client_secret": "oidc-client-s3cr3t",
    "oidc_cookie_secret": "cookie-signing-key-0123456789",
}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    # Later tests must not write into this test's stream or file.
    logs.apply(logs.LogConfig("text", "WARNING", None, ()))


def _events(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _json_logs(settings: Settings, stream: io.StringIO) -> None:
    settings.log.format = "json"
    logs.configure(settings, default_level="INFO", stream=stream)


def test_ingest_logs_each_stage_then_done(
    settings: Settings, embedder, tmp_path: Path, stream: io.StringIO
) -> None:  # type: ignore[no-untyped-def]
    m = ManualBuilder()
    m.text_page("Chapter 1 Pump", ["The pump P1 runs at 1450 rpm and needs grease every 500 hours."])
    m.scanned_page(["Service sheet", "Torque for flange bolts: 25 N.m"])
    pdf = m.save(tmp_path / "pump.pdf")
    _json_logs(settings, stream)
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    (report,) = engine.ingest([pdf])
    assert report.status == "ingested", report.error
    events = _events(stream.getvalue())
    stages = [e["stage"] for e in events if e["event"] == "ingest.stage"]
    assert stages == ["parse", "ocr", "embed", "write"], f"one event as each stage starts, got {stages}"
    assert all(e["manual"] == "pump.pdf" for e in events if e["event"] == "ingest.stage")
    (done,) = [e for e in events if e["event"] == "ingest.done"]
    assert done["status"] == "ingested" and done["pages"] == 2 and done["ocr_pages"] == 1
    assert isinstance(done["total_ms"], float) and done["total_ms"] > 0
    assert all({"ts", "level", "logger", "pid"} <= set(e) for e in events)
    engine.store.library.close()


def test_search_and_ask_log_timings_not_questions(ingested_engine: Engine, stream: io.StringIO) -> None:
    fake = FakeLlm()
    try:
        fake.script = [Reply("Fault F07452 means the motor is overloaded [1].")]
        ingested_engine.settings.llm.base_url = fake.url
        _json_logs(ingested_engine.settings, stream)
        question = "What does fault code F07452 mean on my unit?"
        answer = list(ingested_engine.ask(question))[-1]
    finally:
        fake.close()
    assert not answer.error, answer.error
    events = _events(stream.getvalue())
    (search,) = [e for e in events if e["event"] == "search"]
    assert search["hits"] > 0 and search["retrieve_ms"] > 0 and search["manuals"] == "all"
    (ask,) = [e for e in events if e["event"] == "ask"]
    assert ask["level"] == "INFO" and ask["citations"] == 1 and ask["cited_pages"] == 1
    assert 0 < ask["retrieve_ms"] and 0 < ask["first_token_ms"] <= ask["llm_ms"] <= ask["total_ms"]
    assert question not in stream.getvalue(), "questions stay in app.db, not in the log"


def test_secrets_never_reach_the_log(ingested_engine: Engine, stream: io.StringIO) -> None:
    settings = ingested_engine.settings
    settings.llm.api_key = SecretStr(SECRETS["api_key"])
    for name in ("staff_password", "oidc_client_secret", "oidc_cookie_secret"):
        setattr(settings.ui, name, SecretStr(SECRETS[name]))
    fake = FakeLlm()
    try:
        # A server that echoes the key in its error, as some do.
        fake.script = [
            Reply(status=400, body={"error": {"message": f"bad request for key {SECRETS['api_key']}"}})
        ]
        settings.llm.base_url = fake.url
        settings.llm.max_retries = 0
        for fmt in ("json", "text"):
            settings.log.format = fmt  # type: ignore[assignment]
            logs.configure(settings, default_level="INFO", stream=stream)
            log = logging.getLogger("manualrag.test")
            log.warning("staff signed in with %s", SECRETS["staff_password"])
            logs.event(
                log,
                "config",
                cookie=SECRETS["oidc_cookie_secret"],
                nested={"s": SECRETS["oidc_client_secret"]},
            )
            log.info("endpoint http://admin:hunter2pass@llm.internal:8000/v1 up")
            try:
                raise RuntimeError(f"request failed with key {SECRETS['api_key']}")
            except RuntimeError:
                log.exception("call failed")
        _json_logs(settings, stream)
        answer = list(ingested_engine.ask("which fuse protects the contactor coil?"))[-1]
    finally:
        fake.close()
    out = stream.getvalue()
    assert answer.error, "the endpoint refused: the answer carries the error"
    leaked = [name for name, value in SECRETS.items() if value in out] + (
        ["url password"] if "hunter2pass" in out else []
    )
    assert not leaked, f"secrets in the log: {leaked}"
    assert out.count(logs.MASK) >= 9, "each secret is replaced by the mask, not dropped with its line"
    assert "http://admin:***@llm.internal:8000/v1" in out
    (ask,) = [e for e in _events(out) if e["event"] == "ask"]
    assert ask["level"] == "WARNING" and ask["error"], "a failed answer is logged as a warning with its error"


def _log_from_worker(config: logs.LogConfig) -> None:
    logs.apply_in_worker(config)
    logs.event(
        logging.getLogger("ingest.pipeline"),
        "ingest.stage",
        stage="ocr",
        manual="m.pdf",
        note="token s3cret-value-42",
    )


def test_spawned_worker_logs_like_its_parent(tmp_path: Path, stream: io.StringIO) -> None:
    path = tmp_path / "log.jsonl"
    config = logs.LogConfig("json", "INFO", str(path), ("s3cret-value-42",))
    handlers = list(logging.getLogger().handlers)
    logs.apply_in_worker(config)  # in the parent (inline ingest): nothing changes
    assert logging.getLogger().handlers == handlers
    worker = multiprocessing.get_context("spawn").Process(target=_log_from_worker, args=(config,))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    (event,) = _events(path.read_text())
    assert (
        event["event"] == "ingest.stage"
        and event["stage"] == "ocr"
        and event["pid"] == worker.pid != os.getpid()
    )
    assert event["note"] == f"token {logs.MASK}"


def test_cli_writes_json_logs_to_a_file(
    sample_store: Path,
    tmp_path: Path,
    stream: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    log_file = tmp_path / "logs" / "manualrag.jsonl"
    monkeypatch.setenv("MANUALRAG_LOG__FORMAT", "json")
    monkeypatch.setenv("MANUALRAG_LOG__FILE", str(log_file))
    assert main(["search", "F07452", "--store", str(store)]) == 0
    assert not log_file.exists() or not _events(log_file.read_text()), "INFO events are off without -v"
    assert main(["-v", "search", "F07452", "--store", str(store)]) == 0
    (search,) = [e for e in _events(log_file.read_text()) if e["event"] == "search"]
    assert search["hits"] > 0 and search["logger"] == "manualrag.requests"
    assert '"event": "search"' in capsys.readouterr().err, "the same lines go to stderr"
    monkeypatch.setenv("MANUALRAG_LOG__LEVEL", "loud")
    assert main(["list", "--store", str(store)]) == 2
    assert "configuration: log.level" in capsys.readouterr().err
