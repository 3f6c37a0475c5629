"""Evidence selection: each source cut to the sentences, rows and labels that match the question."""

from __future__ import annotations

import pytest

from rag.evidence import WHOLE_FIGURE_TOKENS, select, split_units, terms
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

# Two header rows, the top one spanning two columns, as NEETS's Table 1-1 is extracted.
TWO_HEADERS = """Table 1-1.—Specific Resistances of Common Substances
| Substance | Specific resistance at 20°C. |  |
| --- | --- | --- |
|  | Centimeter cube (microhms) | Circular-mil-foot (ohms) |
| Silver | 1.629 | 9.8 |
| Aluminum | 2.828 | 17.02 |"""

# A key/value table: its first row is data, not a header.
KEY_VALUE = """Table 2-1.—Heating Tool Power Requirements
| Electrical Power, HT-900B | 115 VAC, 50-400 Hz, single-phase, 7 Amps |
| --- | --- |
| Electrical Power, HT-920B | 220 VAC, 50-400 Hz, single-phase, 3.5 Amps |"""

SIZES = """Table 1-3.—Current-Carrying Capacities (in Amperes)
| Size | Rubber or Thermoplastic | Varnished Cambric | Silicone Rubber |
| --- | --- | --- | --- |
| 8 | 55 | 70 | 100 |
| 10 | 40 | 55 | 75 |"""

# A symbol chart: too many labels to show whole, read line by line.
CHART = "Labels read from the diagram:\n" + "\n".join(
    [f"SYMBOL GROUP {n} | RESISTOR | CAPACITOR | INDUCTOR" for n in range(12)]
    + ["ROTARY", "FOOT OPERATED", "MOMENTARY", "PUSH PULL"]
)

PROSE = (
    "Latex (rubber) tape is a splicing compound. It is applied under tension. "
    "Some rubber tapes are made for special applications. These tapes are semiconducting and will pass "
    "current, which is a shock hazard. Insulate splices only with latex rubber insulating tape. "
    "Friction tape is a cotton cloth treated with a sticky rubber compound."
)


def _select(question: str, body: str, kind: str, budget: int) -> str:
    (shown,) = select(question, [split_units(body, kind, estimate_tokens)], budget)
    assert shown is not None, "a lone source is the first source: never left out"
    return shown


def test_terms_stem_and_drop_question_words() -> None:
    assert terms("What size fuses are listed for the circuits?") == terms("size fuse circuit")
    assert len(terms("What size fuses are listed for the circuits?")) == 3, "question words dropped"
    assert terms("fused") == terms("fuse") and terms("insulating") == terms("insulated") == terms("insulate")
    assert "17.02" in terms("17.02 ohms") and "3/8" in terms("a minimum of 3/8 inch")
    assert terms("FOOT OPERATED") <= terms("foot-operated"), "hyphenated words count by their parts too"


@pytest.mark.parametrize(
    ("question", "body", "kind", "kept", "dropped"),
    [
        # A table keeps its title, and the row the question names, each value beside its column.
        ("specific resistance of aluminum", TABLE, "table",
         ["Table 1-1", "Aluminum: Centimeter cube (microhms): 2.828; Circular-mil-foot (ohms): 17.02"],
         ["Tungsten", "| Aluminum |"]),
        # Two header rows: a column's name joins both, a spanning cell names both columns.
        ("specific resistance of aluminum", TWO_HEADERS, "table",
         [("Aluminum: Specific resistance at 20°C. Centimeter cube (microhms): 2.828; "
           "Specific resistance at 20°C. Circular-mil-foot (ohms): 17.02")], ["Silver"]),
        # A key/value table has no header: every row reads "key: value".
        ("electrical power of the HT-920B", KEY_VALUE, "table",
         ["Electrical Power, HT-920B: 220 VAC, 50-400 Hz, single-phase, 3.5 Amps"], []),
        # A first column of numbers keeps its name ("Size 10"), and rows match by their own
        # cells: the header's words are in every row.
        ("amps for a No. 10 conductor with varnished cambric", SIZES, "table",
         ["Size 10: Rubber or Thermoplastic: 40; Varnished Cambric: 55; Silicone Rubber: 75"], ["Size 8"]),
        # A short label list is one diagram: shown whole, so a callout split over lines survives.
        ("fuse for the direction indicator circuit", LABELS, "figure",
         ["Labels read from the diagram:", "DIRECTION INDICATOR | 10 AMP", "HORN BUTTON"], []),
        # A long one goes line by line: "foot-operated" finds "FOOT OPERATED", and the label
        # after it comes along.
        ("which foot-operated switch symbols are shown", CHART, "figure",
         ["FOOT OPERATED", "MOMENTARY"], ["SYMBOL GROUP 3"]),
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


def test_the_first_source_always_shows_its_best_line_and_gaps_are_marked() -> None:
    splits = [split_units(PROSE, "text", estimate_tokens), split_units(TABLE, "table", estimate_tokens)]
    prose, table = select("aluminum resistance tape", splits, budget=0)
    assert prose and "[…]" in prose, "even with no budget left the best hit shows its best sentence"
    assert table is None, "no budget for a second source: it is left out, not shown empty"
    prose, table = select("aluminum resistance tape", splits, budget=60)
    assert prose and table and "Aluminum: " in table, "with room, the aluminum row comes with its title"


def test_weak_sources_are_left_out_but_never_the_first() -> None:
    splits = [split_units(body, kind, estimate_tokens) for body, kind in
              [(PROSE, "text"), (TABLE, "table"), (LABELS, "figure")]]  # fmt: skip
    prose, table, labels = select("aluminum specific resistance", splits, budget=200)
    assert prose, "the best retrieval hit stays even when it matches nothing"
    assert table and "Aluminum" in table
    assert labels is None, "a diagram of fuses says nothing about aluminum: left out"


def test_step_numbers_and_colon_openers_stay_with_what_follows() -> None:
    body = "Here are the steps for using the gun:\n1. Hold the heat source 4 to 5 inches away. 2. Heat for 30 seconds."
    texts = [u.text for u in split_units(body, "text", estimate_tokens).units]
    assert texts == ["Here are the steps for using the gun: 1. Hold the heat source 4 to 5 inches away.",
                     "2. Heat for 30 seconds."], texts  # fmt: skip


def test_short_label_lists_are_one_unit() -> None:
    assert len(split_units(LABELS, "figure", estimate_tokens).units) == 2, "the heading, then the labels whole"
    assert estimate_tokens(CHART) > WHOLE_FIGURE_TOKENS
    assert len(split_units(CHART, "figure", estimate_tokens).units) == 17, "the heading, then each label line"


def test_whole_source_when_budget_allows() -> None:
    shown = _select("tape", PROSE, "text", budget=10_000)
    assert "[…]" not in shown and shown.startswith("Latex") and shown.endswith("rubber compound.")


def test_run_on_units_are_cut() -> None:
    body = "word " * 2000  # OCR text without a full stop
    split = split_units(body, "text", estimate_tokens, max_tokens=50)
    assert len(split.units) == 1 and split.units[0].tokens <= 52 and split.units[0].text.endswith("[…]")
