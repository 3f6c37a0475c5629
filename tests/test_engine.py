"""Engine: entry checks that hold before any model or index is touched, and what the answer stage is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from manualrag.engine import Engine
from manualrag.errors import QuestionTooLong
from manualrag.settings import Settings


def test_a_too_long_question_is_refused_at_the_call(tmp_path: Path) -> None:
    settings = Settings(_env_file=None)
    settings.store.path = tmp_path / "store"
    settings.retrieval.max_question_chars = 100
    engine = Engine(settings)
    with pytest.raises(QuestionTooLong, match="the question is 101 characters long; the limit is 100"):
        engine.search("x" * 101)
    with pytest.raises(QuestionTooLong):
        engine.ask("x" * 101)  # at the call, not at the first event of the stream
    assert "embedder" not in engine.__dict__ and "answerer" not in engine.__dict__, "no model was loaded"


def test_evidence_is_chosen_by_meaning_with_a_local_embedder_only(ingested_engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    question = "Which fuse protects the motor contactor coil?"
    result = ingested_engine.search(question)
    hits, pages, _, meaning = ingested_engine.context(question, result, None)
    assert hits and pages, "the sample manual answers this"
    assert meaning is not None
    cosines = meaning(["The motor contactor coil is protected by fuse F3.", "Store the manual in a dry place."])
    assert cosines[0] > cosines[1], "the line about the question is closer in meaning"
    # A web-API embedder would be paid for every candidate line of every question.
    monkeypatch.setattr(ingested_engine.embedder, "remote", True)
    assert ingested_engine.context(question, result, None)[3] is None
    monkeypatch.setattr(ingested_engine.embedder, "remote", False)
    monkeypatch.setattr(ingested_engine.settings.llm, "evidence_by_meaning", False)
    assert ingested_engine.context(question, result, None)[3] is None
