"""Evidence selection: each source cut to the sentences, rows and labels that match the question."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from rag.evidence import WHOLE_FIGURE_TOKENS, select, split_units, terms
from rag.grounding import check_draft, quoted_signs, sign_terms
from rag.prompts import estimate_tokens

TABLE = """Table 1-1.—Thermal Conductivities of Tube Materials
| Material | Metric (W/m-K) | English (Btu/hr-ft-°F) |
| --- | --- | --- |
| Copper | 386 | 223.1 |
| Brass (admiralty) | 111 | 64.13 |
| Cupronickel | 50.2 | 29.01 |
| Titanium | 21.9 | 12.65 |"""

LABELS = """Labels read from the diagram:
CIRCUIT | BREAKER RATING
COMPRESSOR | 30 AMP
CONTROLS | 3 AMP
CONDENSER FAN | 15 AMP
BLOWER RELAY | PANEL"""

# Two header rows, the top one spanning two columns, as a scanned table with a grouped
# header is extracted.
TWO_HEADERS = """Table 1-1.—Thermal Conductivities of Tube Materials
| Material | Thermal conductivity at 20°C. |  |
| --- | --- | --- |
|  | Metric (W/m-K) | English (Btu/hr-ft-°F) |
| Copper | 386 | 223.1 |
| Cupronickel | 50.2 | 29.01 |"""

# A key/value table: its first row is data, not a header.
KEY_VALUE = """Table 2-1.—Vacuum Pump Power Requirements
| Electrical Power, VP-600B | 115 VAC, 60 Hz, single-phase, 9 Amps |
| --- | --- |
| Electrical Power, VP-640B | 230 VAC, 50-60 Hz, single-phase, 4.5 Amps |"""

# The value asked for (size 10, return line) also stands in the row above, one column left.
SIZES = """Table 1-3.—Hose Flow Capacities (in Gallons per Minute)
| Size | Pressure Line (max.) | Return Line (max.) | Suction Line (max.) |
| --- | --- | --- | --- |
| 8 | 24 | 16 | 6 |
| 10 | 38 | 24 | 10 |"""

# A symbol chart: too many labels to show whole, read line by line.
CHART = "Labels read from the diagram:\n" + "\n".join(
    [f"SYMBOL GROUP {n} | RESERVOIR | ACCUMULATOR | CYLINDER" for n in range(12)]
    + ["MANUAL LEVER", "PILOT OPERATED", "SPRING RETURN", "DETENT"]
)

PROSE = (
    "Polyolester (POE) oil is a compressor lubricant. It is charged through the suction service valve. "
    "Some compressor oils are made for special applications. These oils are alkylbenzene blends and will "
    "not mix with HFC refrigerant, which starves the compressor. Charge HFC systems only with POE compressor "
    "oil. Mineral oil is a refined petroleum product for older systems."
)


def _select(question: str, body: str, kind: str, budget: int) -> str:
    (shown,) = select(question, [split_units(body, kind, estimate_tokens)], budget)
    assert shown is not None, "a lone source is the first source: never left out"
    return shown


def test_terms_stem_and_drop_question_words() -> None:
    assert terms("What size filters are listed for the units?") == terms("size filter unit")
    assert len(terms("What size filters are listed for the units?")) == 3, "question words dropped"
    assert terms("piped") == terms("pipe") and terms("rating") == terms("rated") == terms("rate")
    assert "29.01" in terms("29.01 Btu") and "5/16" in terms("a gap of 5/16 inch")
    assert terms("PILOT OPERATED") <= terms("pilot-operated"), "hyphenated words count by their parts too"


@pytest.mark.parametrize(
    ("question", "body", "kind", "kept", "dropped"),
    [
        # A table keeps its title, and the row the question names, each value beside its column.
        ("thermal conductivity of cupronickel", TABLE, "table",
         ["Table 1-1", "Cupronickel: Metric (W/m-K): 50.2; English (Btu/hr-ft-°F): 29.01"],
         ["Titanium", "| Cupronickel |"]),
        # Two header rows: a column's name joins both, a spanning cell names both columns.
        ("thermal conductivity of cupronickel", TWO_HEADERS, "table",
         [("Cupronickel: Thermal conductivity at 20°C. Metric (W/m-K): 50.2; "
           "Thermal conductivity at 20°C. English (Btu/hr-ft-°F): 29.01")], ["Copper"]),
        # A key/value table has no header: every row reads "key: value".
        ("electrical power of the VP-640B", KEY_VALUE, "table",
         ["Electrical Power, VP-640B: 230 VAC, 50-60 Hz, single-phase, 4.5 Amps"], []),
        # A first column of numbers keeps its name ("Size 10"), and rows match by their own
        # cells: the header's words are in every row.
        ("gpm for a No. 10 hose on a return line", SIZES, "table",
         ["Size 10: Pressure Line (max.): 38; Return Line (max.): 24; Suction Line (max.): 10"], ["Size 8"]),
        # A short label list is one diagram: shown whole, so a callout split over lines survives.
        ("breaker for the condenser fan circuit", LABELS, "figure",
         ["Labels read from the diagram:", "CONDENSER FAN | 15 AMP", "BLOWER RELAY"], []),
        # A long one goes line by line: "pilot-operated" finds "PILOT OPERATED", and the label
        # after it comes along.
        ("which pilot-operated valve symbols are shown", CHART, "figure",
         ["PILOT OPERATED", "SPRING RETURN"], ["SYMBOL GROUP 3"]),
        # Prose keeps the matching sentence and its neighbour, where the reason often is.
        ("why not use any compressor oil for special applications", PROSE, "text",
         ["made for special applications", "alkylbenzene"], []),
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
    prose, table = select("cupronickel conductivity oil", splits, budget=0)
    assert prose and "[…]" in prose, "even with no budget left the best hit shows its best sentence"
    assert table is None, "no budget for a second source: it is left out, not shown empty"
    prose, table = select("cupronickel conductivity oil", splits, budget=60)
    assert prose and table and "Cupronickel: " in table, "with room, the cupronickel row comes with its title"


def test_weak_sources_are_left_out_but_never_the_first() -> None:
    splits = [split_units(body, kind, estimate_tokens) for body, kind in
              [(PROSE, "text"), (TABLE, "table"), (LABELS, "figure")]]  # fmt: skip
    prose, table, labels = select("cupronickel thermal conductivity", splits, budget=200)
    assert prose, "the best retrieval hit stays even when it matches nothing"
    assert table and "Cupronickel" in table
    assert labels is None, "a diagram of breakers says nothing about cupronickel: left out"


def test_step_numbers_and_colon_openers_stay_with_what_follows() -> None:
    body = "Here are the steps for evacuating the lines:\n1. Pull a vacuum to 500 microns. 2. Hold for 10 minutes."
    texts = [u.text for u in split_units(body, "text", estimate_tokens).units]
    assert texts == ["Here are the steps for evacuating the lines: 1. Pull a vacuum to 500 microns.",
                     "2. Hold for 10 minutes."], texts  # fmt: skip


def test_a_short_list_item_is_one_unit() -> None:
    """An entry says what it is, then its value: the value's sentence alone names nothing."""
    body = ("Settings of the soft starter:\n"
            "• ramp_time: Time to full voltage. The default setting is 8 seconds.\n"
            "• kick_start: Extra torque at start. It is off by default.")
    texts = [u.text for u in split_units(body, "text", estimate_tokens).units]
    assert texts == [
        "Settings of the soft starter: • ramp_time: Time to full voltage. The default setting is 8 seconds.",
        "• kick_start: Extra torque at start. It is off by default.",
    ], texts
    run_together = [u.text for u in split_units("1. Small pump P01 2. Large pump P02", "text", estimate_tokens).units]
    assert run_together == ["1. Small pump P01", "2. Large pump P02"], "items a line runs together are not one item"
    assert [u.text for u in split_units("1. Set the dial to 2. Wait.", "text", estimate_tokens).units] == [
        "1. Set the dial to 2.", "Wait."], "a step's value is not the next step's number"
    shown = _select("What is the default ramp_time of the soft starter?", body, "text", budget=40)
    assert "8 seconds" in shown, shown


def test_short_label_lists_are_one_unit() -> None:
    assert len(split_units(LABELS, "figure", estimate_tokens).units) == 2, "the heading, then the labels whole"
    assert estimate_tokens(CHART) > WHOLE_FIGURE_TOKENS
    assert len(split_units(CHART, "figure", estimate_tokens).units) == 17, "the heading, then each label line"


def test_whole_source_when_budget_allows() -> None:
    shown = _select("oil", PROSE, "text", budget=10_000)
    assert "[…]" not in shown and shown.startswith("Polyolester") and shown.endswith("older systems.")


def test_run_on_units_are_cut() -> None:
    body = "word " * 2000  # OCR text without a full stop
    split = split_units(body, "text", estimate_tokens, max_tokens=50)
    assert len(split.units) == 1 and split.units[0].tokens <= 52 and split.units[0].text.endswith("[…]")


# The line that answers shares no word with the question but "battery"-free meaning; two
# lines share its one rare word and say nothing about how long a charge lasts.
BATTERY = (
    "The battery compartment is on the underside of the unit. Insert the battery with the plus "
    "sign facing up. Close the cover until it clicks. The display shows the reading in volts or "
    "ohms. Press HOLD to freeze the reading. A full charge powers the meter for about nine hours "
    "of continuous use."
)


def test_a_line_is_chosen_by_meaning_as_well_as_by_words(embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.evidence import by_meaning

    question = "How long does the battery last?"
    budget = 65  # the two lines naming the battery, the line after them and one more

    def shown(meaning) -> str:  # type: ignore[no-untyped-def]
        split = split_units(BATTERY, "text", estimate_tokens)
        return select(question, [split], budget, meaning=meaning)[0] or ""

    by_words = shown(None)
    assert "compartment" in by_words and "plus sign" in by_words
    assert "nine hours" not in by_words, "by words alone the answer line shares nothing with the question"
    assert "nine hours" in shown(by_meaning(embedder, question)), "by meaning it is the closest line"



# A page that introduces its table in prose: the prose and the table's title are closest to
# the question in meaning and share most of its words, yet only a row states the value.
CAPACITIES = """Table 4-2.—Current-Carrying Capacities (in Amperes) of Single Copper Conductors in Free Air
| Size | Moisture Resistant Rubber or Thermoplastic | Varnished Cambric or Heat Resistant Thermoplastic | Silicone Rubber or Fluorinated Ethylene Propylene |
| --- | --- | --- | --- |
| 8 | 55 | 70 | 100 |
| 10 | 40 | 55 | 75 |
| 12 | 25 | 40 | 55 |
| 14 | 20 | 30 | 45 |"""
RATINGS_PAGE = (
    "SAFE CURRENT RATINGS\n\nThe allowable current-carrying capacities of single copper conductors in free air, "
    "up to a room temperature of 30°C, are given in table 4-2. At ambient temperatures above 30°C, "
    "these conductors carry less current.\n\n" + CAPACITIES + "\n\nReplace a conductor whose insulation is cracked."
)


def test_a_table_title_on_a_page_comes_with_its_matching_row() -> None:
    question = "What current rating does a size No. 10 single copper wire in varnished cambric have in free air?"
    labels = "Labels read from the diagram:\nVARNISHED\nCAMBRIC\nBRAID\nCONDUCTORS"
    sources = [split_units(RATINGS_PAGE, "page", estimate_tokens), split_units(labels, "figure", estimate_tokens)]

    def meaning(texts: Sequence[str]) -> list[float]:  # the prose and the title read closest to the question
        return [0.9 if "allowable" in t or "ambient" in t or "Capacities" in t else 0.2 for t in texts]

    page, _ = select(question, sources, budget=90, meaning=meaning)
    assert page and "Table 4-2" in page, page
    assert "Size 10: Moisture Resistant Rubber or Thermoplastic: 40; Varnished Cambric" in page, \
        "a title without its row states no value: the row asked for comes with it"
    assert "Size 8:" not in page and "Size 12:" not in page and "Size 14:" not in page, "only the matching row"


def test_the_rows_beside_a_matching_row_are_not_its_context() -> None:
    """Room left after the row asked for goes to the page's prose, not to the next size's row,
    whose values a small model reads as the answer."""
    question = "What current rating does a size No. 10 single copper wire in varnished cambric have in free air?"
    page, = select(question, [split_units(RATINGS_PAGE, "page", estimate_tokens)], budget=150)
    assert page and "Size 10: Moisture" in page, page
    assert "Size 8:" not in page and "Size 12:" not in page, page
    assert "At ambient temperatures above 30°C" in page, "the budget went to the prose about the table"


def test_table_rows_are_recognisable_by_the_grounding_check() -> None:
    """The draft check finds a row's table title by the row's shape (rag.grounding.TABLE_ROW)."""
    from rag.grounding import TABLE_ROW

    rows = [u.text for u in split_units(CAPACITIES, "table", estimate_tokens).units if not u.fixed]
    assert len(rows) == 4 and all(TABLE_ROW.match(r) for r in rows), rows
    sentences = [u.text for u in split_units(PROSE, "text", estimate_tokens).units]
    assert not any(TABLE_ROW.match(t) for t in sentences), "prose is never taken for a row"


# A page whose safety notice names the hazard in a sentence that shares no word with a
# question about the notice's topic.
NOTICE_PAGE = (
    "Thread Sealant\n\nPTFE tape seals pipe threads on the water inlet. Wrap it clockwise, two turns.\n\n"
    "CAUTION\n\nSome sealants are made for gas lines. These types are anaerobic and cure only without air, "
    "which leaves the joint seized. They are sold in tubes like the water sealant. Seal water threads only "
    "with PTFE tape.\n\nHoses\n\nReplace a hose whose braid is frayed. Tighten the hose clamp a quarter turn "
    "past snug. A kinked hose starves the pump."
)


def test_a_safety_notice_is_shown_whole() -> None:
    shown = _select("Why not use any sealant tube that looks like the water sealant on the water threads?",
                    NOTICE_PAGE, "page", 60)
    assert "anaerobic and cure only without air" in shown, "the hazard sentence comes with its notice"
    assert shown.count("CAUTION") == 1



SPEC_TABLE = (
    "| | LE | XLE | XLE V6 | SE | XSE | LE Hybrid | SE Hybrid | XLE Hybrid |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    "| Fuel tank (gal.) | 15.8 | 15.8 | 15.8 | 15.8 | 15.8 | 13.2 | 13.2 | 13.2 |\n"
    "| Curb weight (lb.) | 3310 | 3380 | 3595 | 3340 | 3425 | 3480 | 3535 | 3565 |"
)


def test_a_wide_row_shows_the_columns_the_question_names() -> None:
    def row(question: str) -> str:
        shown, = select(question, [split_units(SPEC_TABLE, "table", estimate_tokens)], budget=200)
        assert shown is not None
        return next(line for line in shown.splitlines() if line.startswith("Curb weight"))

    assert row("What is the curb weight of the XLE Hybrid?") == "Curb weight (lb.): XLE Hybrid: 3565", \
        "the column named most fully, not every column whose name is a part of the question"
    whole = row("What is the curb weight of each model?")
    assert "LE: 3310" in whole and "XLE Hybrid: 3565" in whole, "no column named: the whole row"


# A table printed without rules: its caption, then a short line per row. The row that
# answers ("#20 - #16") shares no word with a question about an 18-gauge wire.
PLAIN_TABLE_PAGE = (
    "TINNING WITH AN IRON\n\n"
    "Choose the iron by the wire's size (see table 3-1). Keep the tip clean and well tinned.\n\n"
    "Table 3-1.—Iron Size for Tinning\n\nWire Size (AWG) Iron Size\n\n#20 - #16 65 Watts\n\n"
    "#14 & #12 100 Watts\n\n#10 & #8 200 Watts\n\n"
    "2. Hold the iron tip and the solder together on the wire until the solder flows.\n\n"
    "Move the iron to the other side of the wire and tin half of the bared length. A joint that moves "
    "while the solder cools is weak. Clean off the flux with alcohol when the joint is cool."
)
TINNING = "I'm tinning some 18-gauge wire in the field. What size iron for tinning do I need?"
# A small ruled table under its caption, on a page.
LUG_TABLE = ("Lug colours\n\nPreinsulated lugs are colour coded by wire size.\n\n"
             "Table 2-2.—Colour Coding of Lug Insulation\n| Colour | Wire sizes |\n| --- | --- |\n"
             "| Yellow | #26 - #24 |\n| Red | #22 - #18 |\n| Blue | #16 - #14 |\n\n")


def test_a_plain_table_under_its_caption_is_shown_whole() -> None:
    shown = _select(TINNING, PLAIN_TABLE_PAGE, "page", 70)
    for row in ("#20 - #16 65 Watts", "#14 & #12 100 Watts", "#10 & #8 200 Watts"):
        assert row in shown, shown
    assert "Clean off the flux" not in shown, "the budget went to the table, not the prose after it"


def test_a_small_table_on_a_page_is_shown_whole_with_its_title() -> None:
    page = LUG_TABLE + "Crimp the lug with the tool whose handle matches the insulation colour."
    shown = _select("Which colour of lug insulation do I use on an 18-gauge wire?", page, "page", 60)
    assert "Red: Wire sizes: #22 - #18" in shown and "Yellow:" in shown and "Blue:" in shown, shown


def test_a_row_that_names_what_is_asked_is_shown_alone_from_a_small_table() -> None:
    page = LUG_TABLE + ("Strip the wire's insulation to the length of the lug's barrel. Insert the wire until its end "
                        "shows in the inspection window. Crimp the wire with the tool whose handle colour matches the lug.")
    shown = _select("Which wire sizes take the blue lug insulation?", page, "page", 60)
    assert "Blue: Wire sizes: #16 - #14" in shown, shown
    assert "Red:" not in shown and "Yellow:" not in shown, "the model reads a value from the wrong row"


def test_a_plain_tables_column_line_is_shown_once() -> None:
    """A passage that runs on past the page repeats the page's lines; the column line is
    already in the caption's unit and must not come again."""
    page = PLAIN_TABLE_PAGE + "\n\nWire Size (AWG) Iron Size"
    shown = _select(TINNING, page, "page", 200)
    assert shown.count("Wire Size (AWG) Iron Size") == 1, shown


def test_a_plain_table_in_one_block_is_read_as_rows() -> None:
    """Extraction may give the caption and rows as one block of lines, not a paragraph each."""
    page = PLAIN_TABLE_PAGE.replace("\n\n#20", "\n#20").replace("\n\n#14", "\n#14").replace("\n\n#10", "\n#10")
    page = page.replace("Tinning\n\nWire Size", "Tinning\nWire Size")
    assert "Tinning\nWire Size (AWG) Iron Size\n#20 - #16 65 Watts\n#14" in page
    shown = _select(TINNING, page, "page", 70)
    for row in ("#20 - #16 65 Watts", "#14 & #12 100 Watts", "#10 & #8 200 Watts"):
        assert row in shown, shown


def test_a_line_repeated_on_every_page_is_shown_once() -> None:
    # A column heading printed atop each page of a long code list matches most of a
    # question's words; shown once per page it would spend the budget that the one line
    # holding the code asked for needs.
    heading = "Service Region Branch Name Code"
    pages = [
        f"{heading}\n" + "\n".join(f"{n}. Branch office {region}{n:02d}" for n in range(1, 9))
        for region in ("KX", "LM", "PR", "QT")
    ]
    pages[3] = pages[3].replace("Branch office QT05", "Harbor Point QT05")
    splits = [split_units(body, "text", estimate_tokens) for body in pages]
    shown = select("What is the service region branch name for code QT05?", splits, budget=40)
    text = "\n".join(s for s in shown if s)
    assert "Harbor Point QT05" in text, "the line with the code asked for is shown"
    assert text.count(heading) == 1, "the heading every page repeats is shown once"


def test_a_contents_line_costs_its_words_not_its_dot_leader() -> None:
    contents = "\n".join(f"2.{n} Section about item {n} " + ". " * 40 + f"{10 + n}" for n in range(1, 6))
    units = split_units(contents, "page", estimate_tokens).units
    assert all(u.tokens < 15 for u in units), [(u.text, u.tokens) for u in units]
    assert any("2.3 Section about item 3 …" in u.text for u in units)
    assert [u.text for u in split_units("Use ... to skip a step.", "text", estimate_tokens).units] == [
        "Use ... to skip a step."], "an ellipsis is not a leader"


DESCALING = """Descaling
Limescale builds up in the boiler and slows the pump.
Descale every three months, or when the descale light turns on.
To descale the machine:
1. Empty the drip tray and the capsule container.
2. Fill the water tank with 0.5 litres of water and one sachet of descaler.
3. Place a container of at least 1 litre under the coffee outlet.
4. Press and hold the descale button for 3 seconds until the light flashes.
5. When the tank is empty, rinse it and fill it with clean water.
Warranty
Damage caused by scale is not covered by the warranty."""


@pytest.mark.parametrize("kind", ["text", "page"])
def test_a_count_question_sees_the_whole_list(kind: str) -> None:
    # The steps share few words with "how many steps to descale?": by words alone the
    # budget goes to the steps that say "descale" and the count is lost.
    question = "How many steps does it take to descale the machine?"
    shown = _select(question, DESCALING, kind, 120)
    assert all(f"{n}. " in shown for n in range(1, 6)), shown
    assert check_draft("Descaling takes 5 steps [1].", [f"[1] page 4\n{shown}"], question).grounded
    # Another question on the same page reads only the lines it matches.
    shown = _select("Which light tells me to descale the machine?", DESCALING, kind, 40)
    assert "3. Place a container" not in shown


AIDS = """Operating point
Before a DC solution the solver tries these aids, in order:
1. gmin stepping
2. source stepping
3. transient operating point
The analysis ends at the first step that converges.
Gmin stepping starts at a conductance of one millisiemens and lowers it in ten steps.
Source stepping ramps every supply up from zero to its full value in small steps."""


@pytest.mark.parametrize("kind", ["text", "page"])
def test_a_list_shown_whole_is_seen_to_end(kind: str) -> None:
    # Its last item has no full stop: with a "[…]" right after it, items may be missing.
    question = "How many aids does the solver try?"
    shown = _select(question, AIDS, kind, 60)
    assert "The analysis ends at the first step" in shown, shown
    assert "Source stepping ramps" not in shown
    assert check_draft("It tries 3 aids [1].", [f"[1] page 307\n{shown}"], question).grounded


def test_a_question_printed_in_the_manual_gives_its_match_to_the_answer_under_it() -> None:
    # A training manual's review questions echo the user's question word for word and
    # state nothing; the sentence that answers shares fewer words.
    review = (
        "2-40.\nWhich of the following solvents removes flux residue after soldering?\n"
        "1. Water removes flux residue after soldering\n2. Gasoline\n"
        "Q13. Why must a soldered joint cool without moving?\n"
        "Q12. Which solvent removes flux residue after soldering?\n"
        "Tin the tip before soldering. Remove flux residue with isopropyl alcohol once the joint has cooled."
    )
    shown = _select("Which solvent removes flux residue after soldering?", review, "text", budget=16)
    assert "isopropyl alcohol" in shown, shown
    assert "Q12" not in shown and "Water" not in shown, "review questions and their choices answer nothing"
    assert "Tin the tip" not in shown, "the text after an exercise is the next section's, not its answer"
    # An FAQ's question is what matches: its answer comes with it, the next entry does not.
    faq = (
        "Why does the display flicker? Reseat the backlight cable (part 44-120). "
        "How do I clean the screen? Wipe it with a dry cloth."
    )
    shown = _select("What stops the display flickering?", faq, "text", budget=20)
    assert "Why does the display flicker?" in shown and "backlight cable" in shown, shown
    assert "dry cloth" not in shown
    faq = ("Most assemblers read relocatable objects.\nWhy use relocatable objects?\n"
           "• Code is written without addresses.\n• Libraries are built from them.")
    shown = _select("What are the benefits of relocatable objects?", faq, "text", budget=24)
    assert "Why use relocatable objects?" in shown and "without addresses" in shown, "an FAQ's answer may be a list"


def test_a_line_with_a_value_of_the_kind_asked_is_preferred() -> None:
    body = (
        "The headset battery charges through the USB-C port of the headset. "
        "Charge the headset battery fully before the first use of the headset. "
        "The battery is fully charged after about 2 hours."
    )
    shown = _select("How long does the headset battery take to charge?", body, "text", budget=14)
    assert "2 hours" in shown, shown


def test_a_quoted_letter_finds_the_line_that_shows_it() -> None:
    body = (
        "A display code shows what the machine is doing. "
        "The code H means the heater is warming the water. "
        "The code A means the water tank is empty. "
        "The display dims after ten minutes."
    )
    shown = _select("What does the 'A' on the display mean?", body, "text", budget=12)
    assert "water tank is empty" in shown, shown
    assert "heater" not in shown, "the other code's line shares the question's words, not its letter"
    assert quoted_signs("""Don't confuse 'E' with "H", or 'a' with anything.""") == ["E", "H"]
    assert sign_terms("the wire segment letter (A) marks it", ["A"]) == {"'A'"}
    assert sign_terms("P 215 A 4N", ["A"]) == {"'A'"}
    assert not sign_terms("A display code. A new line: A", ["A"]), "an article opening a sentence is no quoted A"
    assert not sign_terms("ALUM and AB", ["A"]), "a letter inside a word is not the letter"


def test_a_figure_label_on_a_page_comes_with_its_heading() -> None:
    page = (
        "The pump housing is cast iron. The impeller is bronze.\n\n"
        "Figure 3-1.—Pump assembly.\n\n"
        "Figure 3-1 labels:\n" + "\n".join(f"PART {n}" for n in range(30)) + "\nRELIEF VALVE\nDRAIN PLUG"
    )
    (shown,) = select("Where is the relief valve?", [split_units(page, "page", estimate_tokens)], 12)
    assert shown is not None and "RELIEF VALVE" in shown, shown
    assert "Figure 3-1 labels:" in shown.split("RELIEF VALVE")[0], "a label alone reads as the page's text"


def test_a_list_lead_in_brings_its_short_list() -> None:
    body = (
        "Port Forwarding\n"
        "If the box is behind a router, set up port forwarding on the router.\n"
        "You should forward the following ports for the relay:\n"
        "• UDP 3478\n• TCP 3478\n• UDP 5349\n• TCP 5349\n"
        "The router firewall keeps other ports closed for the relay. The relay also needs a domain name."
    )
    shown = _select("Which ports do I forward on my router for the relay?", body, "page", budget=50)
    assert "following ports for the relay:" in shown, shown
    assert all(port in shown for port in ("UDP 3478", "TCP 3478", "UDP 5349", "TCP 5349")), shown
    assert "domain name" not in shown, "a lead-in brings its items, not the text after them"


def test_the_lines_chosen_do_not_depend_on_the_hash_seed() -> None:
    # Two lines whose scores are the same sum of the same word weights, added in a set's
    # order: that order changes with each process's hash seed, and so did the lines shown.
    script = (
        "from rag.evidence import select, split_units\n"
        "from rag.prompts import estimate_tokens\n"
        "body = ('Port Forwarding\\nIf the box is behind a router, set up port forwarding on the router.\\n'\n"
        "        'You should forward the following ports for the relay:\\n'\n"
        "        '• UDP 3478\\n• TCP 3478\\n• UDP 5349\\n• TCP 5349\\n'\n"
        "        'The router firewall keeps other ports closed for the relay. The relay also needs a domain name.')\n"
        "print(select('Which ports do I forward on my router for the relay?',"
        " [split_units(body, 'page', estimate_tokens)], 50)[0])\n"
    )
    root = Path(__file__).resolve().parents[2]
    shown = {
        subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(root)}).stdout
        for seed in range(1, 7)
    }
    assert len(shown) == 1, shown
