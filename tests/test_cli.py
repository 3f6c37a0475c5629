"""The `manualrag` command line, run in-process on real stores: exit codes, JSON shapes, eval."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from gold import FAULT, FUSE, WARRANTY, gold, write_gold

from manualrag.cli import main


@pytest.fixture
def store(sample_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(sample_store, copy)
    return copy


def test_search_json_shape(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "fault code F07452", "--store", str(store), "--json", "-k", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert 1 <= len(hits) <= 3
    assert {"manual", "page", "kind", "figure", "score", "text", "image"} <= set(hits[0])
    assert hits[0]["page"] == 4


def test_search_unknown_manual_is_one_line_error(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "fuse", "--store", str(store), "--manual", "nope.pdf"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope.pdf" in err and "\n" not in err


@pytest.mark.parametrize("k", ["-5", "0", "201", "3.5", "many"])
def test_search_k_is_1_to_200(store: Path, k: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["search", "fuse", "--store", str(store), f"-k={k}"])
    assert exit_.value.code == 2, f"-k {k} must be refused before searching"
    err = capsys.readouterr().err
    assert "-k" in err and ("1 to 200" in err or "whole number" in err), err
    assert main(["search", "fuse", "--store", str(store), "-k", "200", "--json"]) == 0, "200 is allowed"


@pytest.mark.parametrize("command", ["search", "ask"])
def test_a_too_long_question_is_one_line_error(
    store: Path, command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MANUALRAG_LLM__BASE_URL", "http://127.0.0.1:9/v1")  # never reached
    question = "fuse " * 900  # 4,500 characters: over the 4,000 default
    started = time.perf_counter()
    assert main([command, question, "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: the question is 4,500 characters long; the limit is 4,000: "
        "ask about one thing, and quote only the lines that matter"
    ), err
    assert time.perf_counter() - started < 5, "refused before any model loads"


def test_list_and_remove(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--store", str(store), "--json"]) == 0
    (manual,) = json.loads(capsys.readouterr().out)
    assert manual["name"] == "p200-controller.pdf" and manual["pages"] == 7
    assert main(["remove", "p200-controller.pdf", "--store", str(store)]) == 0
    assert main(["remove", "p200-controller.pdf", "--store", str(store)]) == 1, "removing again must fail"
    capsys.readouterr()
    assert main(["list", "--store", str(store)]) == 0
    assert "no manuals yet" in capsys.readouterr().out


def test_ingest_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf at all")
    store = tmp_path / "s"
    assert main(["ingest", "--store", str(store), "-q", str(bad)]) == 1, "nothing ingested: non-zero exit"
    out = capsys.readouterr().out
    assert "✗" in out and "bad.pdf" in out
    assert main(["ingest", "--store", str(store), "-q", str(tmp_path / "missing")]) == 1


def test_eval_on_tiny_gold_file(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figure = gold("q3", "What is on the controller wiring diagram?", [], [2], "figure", "Figure 2-1", "breaker, contactor")
    gold_file = write_gold(tmp_path / "gold.json", FAULT, FUSE, figure, WARRANTY)
    assert main(["eval", str(gold_file), "--store", str(store), "--json", "--budgets", "60,400"]) == 0
    report = json.loads(capsys.readouterr().out)
    summary = report["summary"]
    # The prompt a model would read, built without running one: two answerable questions have
    # must_contain strings; the bigger budget shows at least what the smaller one does.
    small, large = summary["evidence"]["60"], summary["evidence"]["400"]
    assert small["n"] == large["n"] == 2
    assert large["contains_all"] == 1.0, "both values are on the retrieved pages"
    assert small["prompt_tokens_p50"] < large["prompt_tokens_p50"] <= 400 + 64
    assert summary["n"] == 3, "unanswerable questions are left out of hit@k"
    assert summary["hit@5"] == 1.0, f"every answerable gold page should be in the top 5: {report['questions']}"
    assert set(summary["by_kind"]) == {"text", "table", "figure"}
    assert {"bm25_pages", "dense_chunks_180w"} == set(summary["baselines"])
    assert summary["latency_ms"]["p50"] > 0
    q1 = next(q for q in report["questions"] if q["id"] == "q1")
    assert q1["ranked"][0]["page"] == 4 and {"manual", "page", "kind", "figure", "score"} == set(q1["ranked"][0])
