"""`manualrag ask` end to end: real retrieval, a real llama.cpp server (SmolLM2), JSON output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from manualrag.cli import main


def test_ask_json_against_real_server(sample_store: Path, tmp_path: Path, smollm_server, monkeypatch,  # type: ignore[no-untyped-def]
                                      capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    monkeypatch.setenv("MANUALRAG_LLM__BASE_URL", smollm_server.base_url)
    assert main(["ask", "What does fault code F07452 mean?", "--store", str(store), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"answer", "citations", "hits", "model", "timings"} <= set(out)
    assert out["answer"].strip(), "the model must have written something"
    assert out["hits"] and out["hits"][0]["page"] == 4, "retrieval feeds the right page to the model"
    assert out["timings"]["first_token_s"] is not None
    offered = len(out["hits"])
    assert all(1 <= c["n"] <= offered for c in out["citations"]), "only offered sources may be cited"


def test_ask_with_dead_endpoint_still_shows_sources(sample_store: Path, tmp_path: Path, refused_url: str,  # type: ignore[no-untyped-def]
                                                    monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    monkeypatch.setenv("MANUALRAG_LLM__BASE_URL", refused_url)
    monkeypatch.setenv("MANUALRAG_LLM__MAX_RETRIES", "0")
    assert main(["ask", "fuse rating of the contactor coil", "--store", str(store)]) == 3
    captured = capsys.readouterr()
    assert "MANUALRAG_LLM__BASE_URL" in captured.err and "Traceback" not in captured.err
    assert "p200-controller.pdf p.3" in captured.out, "the retrieved sources are still listed"


def test_ask_prints_checked_answer_and_sources(sample_store: Path, tmp_path: Path, fake_llm,  # type: ignore[no-untyped-def]
                                               monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    from llm_helpers import Reply

    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    fake_llm.script = [Reply(text="The overload relay tripped [1]. Reset it after the motor cools [9].")]
    monkeypatch.setenv("MANUALRAG_LLM__BASE_URL", fake_llm.url)
    assert main(["ask", "What does fault code F07452 mean?", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    evidence, streamed, checked = out.split("\n\n", 2)
    # The best evidence comes first, before the model's first word, then the stream, then
    # the checked answer.
    assert evidence.startswith("Best evidence: p200-controller.pdf p.") and "\n  > " in evidence, evidence
    assert streamed.startswith("The overload relay tripped [1]."), streamed
    assert "[9]" not in checked, "a key never offered is dropped from the printed answer"
    assert "Sources:" in checked and "[1] p200-controller.pdf p.4" in checked, checked
