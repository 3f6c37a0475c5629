"""Evidence selection: each source cut to the sentences, rows and labels that match the question."""

from __future__ import annotations

import pytest

from rag.evidence import select, split_units, terms
from rag.prompts import estimate_tokens

TABLE = """Table 1-1.—Specific Resistances of Common Substances
| Substance | Centimeter cube (microhms) | Circular-mil-foot (ohms) |
| --- | --- | --- |
| Silver | 1.629 | 9.8 |
| Copper (drawn) | 1.724 | 10.37 |
| Aluminum | 2.828 | 17.02 |
| Tungsten | 5.51 | 33.2 |"""

LABELS = """Labels read from the diagram:
CIRCUIT | NO. USED CAPACITY
LIGHTING | 20 AMP
CLOCK | 2 AMP
DIRECTION INDICATOR | 10 AMP
HORN BUTTON | PANEL"""

PROSE = (
    "Latex (rubber) tape is a splicing compound. It is applied under tension. "
    "Some rubber tapes are made for special applications. These tapes are semiconducting and will pass "
    "current, which is a shock hazard. Insulate splices only with latex rubber insulating tape. "
    "Friction tape is a cotton cloth treated with a sticky rubber compound."
)


def _select(question: str, body: str, kind: str, budget: int) -> str:
    return select(question, [split_units(body, kind, estimate_tokens)], budget)[0]


def test_terms_stem_and_drop_question_words() -> None:
    assert terms("What size fuses are listed for the circuits?") == terms("size fuse circuit")
    assert len(terms("What size fuses are listed for the circuits?")) == 3, "question words dropped"
    assert terms("fused") == terms("fuse") and terms("insulating") == terms("insulated") == terms("insulate")
    assert "17.02" in terms("17.02 ohms") and "3/8" in terms("a minimum of 3/8 inch")


@pytest.mark.parametrize(
    ("question", "body", "kind", "kept", "dropped"),
    [
        # A table keeps its title and header, and the row the question names.
        ("specific resistance of aluminum", TABLE, "table",
         ["Table 1-1", "| Substance |", "| Aluminum | 2.828 | 17.02 |"], ["Tungsten"]),
        # A diagram keeps the label line that answers.
        ("fuse for the direction indicator circuit", LABELS, "figure",
         ["Labels read from the diagram:", "DIRECTION INDICATOR | 10 AMP"], ["HORN BUTTON"]),
        # Prose keeps the matching sentence and its neighbour, where the reason often is.
        ("why not use any rubber tape for special applications", PROSE, "text",
         ["made for special applications", "semiconducting"], []),
    ],
)  # fmt: skip
def test_select_keeps_what_answers(question: str, body: str, kind: str, kept: list[str], dropped: list[str]) -> None:
    shown = _select(question, body, kind, budget=60)
    for piece in kept:
        assert piece in shown, f"{piece!r} kept in {shown!r}"
    for piece in dropped:
        assert piece not in shown, f"{piece!r} dropped from {shown!r}"


def test_every_source_keeps_its_best_line_and_gaps_are_marked() -> None:
    splits = [split_units(PROSE, "text", estimate_tokens), split_units(TABLE, "table", estimate_tokens)]
    prose, table = select("aluminum resistance", splits, budget=0)
    assert prose and "[…]" in prose, "even with no budget left a source shows its best sentence"
    assert "| Aluminum |" in table


def test_whole_source_when_budget_allows() -> None:
    shown = _select("tape", PROSE, "text", budget=10_000)
    assert "[…]" not in shown and shown.startswith("Latex") and shown.endswith("rubber compound.")


def test_run_on_units_are_cut() -> None:
    body = "word " * 2000  # OCR text without a full stop
    split = split_units(body, "text", estimate_tokens, max_tokens=50)
    assert len(split.units) == 1 and split.units[0].tokens <= 52 and split.units[0].text.endswith("[…]")
