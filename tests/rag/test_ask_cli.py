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
    assert {"answer", "outcome", "citations", "hits", "model", "timings", "withheld_drafts"} <= set(out)
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


def test_eval_answers_scores_answers_abstentions_and_citations(sample_store: Path, tmp_path: Path, fake_llm,  # type: ignore[no-untyped-def]
                                                                monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`manualrag eval --answers` end to end: real retrieval and grounding, the model's words scripted
    per question at the HTTP boundary."""
    from gold import FAULT, FUSE, WARRANTY, write_gold
    from llm_helpers import Reply

    def reply(body: dict) -> Reply:  # type: ignore[type-arg]
        question = body["messages"][-1]["content"].rsplit("Question:", 1)[-1]
        if "F07452" in question:
            return Reply(text="Fault F07452 means the overload relay tripped [1].")
        if "fuse" in question:
            return Reply(text="The contactor coil is protected by a 120 AMP fuse [1].")  # "20" only inside "120"
        return Reply(text="The warranty period is 5 years [1].")  # no source says so

    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    gold = write_gold(tmp_path / "gold.json", FAULT, FUSE, WARRANTY)
    fake_llm.responder = reply
    monkeypatch.setenv("MANUALRAG_LLM__BASE_URL", fake_llm.url)
    assert main(["eval", str(gold), "--store", str(store), "--answers", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    summary, rows = report["summary"], {r["id"]: r for r in report["questions"]}
    assert rows["q1"]["correct"] and rows["q1"]["outcome"] == "answered" and rows["q1"]["cited_pages"] == [4]
    assert not rows["q2"]["correct"], "a whole-word match only: 120 does not contain the expected 20"
    assert rows["q4"]["abstained"] and rows["q4"]["outcome"] == "withheld", json.dumps(rows["q4"])
    assert "5 years" in rows["q4"]["draft"], "the withheld draft is kept for review"
    assert summary["answer_contains_all"] == 0.5 and summary["by_kind"] == {"table": "0/1", "text": "1/1"}
    assert summary["unanswerable_abstained"] == 1.0
    # The wrong fuse and the invented warranty were withheld: the one answer stated is right.
    assert summary["stated_right"] == "1/1", summary
    assert summary["outcomes"]["withheld"] >= 1 and summary["errors"] == 0
    assert summary["evidence_s"]["p50"] is not None
