"""Gold questions about the sample manual (the store of the `sample_store` fixture), in the
format `manualrag eval` reads."""

from __future__ import annotations

import json
from pathlib import Path

DOC = "p200-controller.pdf"


def gold(qid: str, question: str, must_contain: list[str], pages: list[int], kind: str,
         figure: str | None = None, answer: str = "") -> dict[str, object]:
    return {"id": qid, "doc": DOC, "question": question, "answer": answer, "must_contain": must_contain,
            "pages": pages, "figure": figure, "kind": kind}


FAULT = gold("q1", "What does fault code F07452 mean?", ["overload"], [4], "text", answer="overload relay tripped")
FUSE = gold("q2", "Which fuse protects the motor contactor coil?", ["20"], [3], "table", "Table 2-1", "F3, 20 AMP")
WARRANTY = gold("q4", "What is the warranty period?", [], [], "unanswerable")


def write_gold(path: Path, *questions: dict[str, object]) -> Path:
    path.write_text(json.dumps(list(questions)))
    return path
