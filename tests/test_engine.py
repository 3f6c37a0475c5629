"""Engine entry checks that hold before any model or index is touched."""

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
