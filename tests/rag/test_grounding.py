"""The shared tokenizer and the draft checks: what a draft may state, given what it was shown."""

from __future__ import annotations

import pytest

from rag.grounding import (
    GLUE,
    MAX_KEYWORD_TERMS,
    check_draft,
    counted,
    counted_heads,
    gives_no_count,
    gives_no_value,
    identifiers,
    options,
    keyword_query,
    list_sizes,
    _ranges,
    series_count,
    _series,
    question_names,
    restates_question,
    spells_code,
    terms,
    tokens,
    unsupported_names,
    unsupported_values,
)

EVIDENCE = [
    "[1] page 12, Fuses\nReplace F1 with a 20 AMP fuse. The handle fits a Weller tip.",
    "[2] Table, page 13\nCopper: Resistance (ohms): 10.37\nConductivity is listed in a later chapter.",
    "[3] page 14\nBrass 0.32\nThe fitting sizes and their resistance in ohms per foot follow.",
]


def test_one_tokenizer_for_codes_values_and_words() -> None:
    assert tokens("Fig. 3-11: 1,450 rpm on C42D, 3/8 inch") == ["fig", "3-11", "1,450", "rpm", "on", "c42d", "3/8", "inch"]
    assert {"fus", "hand", "operat", "hand-operat"} <= terms("fuses; hand-operated")
    assert "10" not in terms("see 3-10"), "a number inside a code is not a number of its own"
    assert {"pump", "driver", "softstarter"} <= terms("pump.drivers.SoftStarter")
    assert "5" not in terms("a 3.5 A fuse"), "a decimal is one number"
    assert terms("= .961 mA") == terms("0.961 mA"), "a decimal without its leading zero is the same number"


def test_a_raised_mark_is_no_digit_of_the_value() -> None:
    evidence = ["[1] page 30\nThe hybrid's fuel tank holds 13.2³ gal."]  # ³: a footnote mark
    question = "How many gallons does the hybrid's tank hold?"
    assert check_draft("It holds 13.2 gallons [1].", evidence, question).grounded
    assert check_draft("It holds 13 gallons [1].", evidence, question).unsupported == ["13 gallons"]


def test_a_name_inside_a_dotted_path_is_in_the_source() -> None:
    evidence = ["[1] page 40, API\nclass pump.drivers.SoftStarter(ramp_s=4)\nRamps the motor voltage up."]
    question = "Which class in pump.drivers ramps the motor voltage?"
    assert check_draft("The class is SoftStarter [1].", evidence, question).grounded
    assert check_draft("The class is SoftStart [1].", evidence, question).unsupported == ["SoftStart"]


@pytest.mark.parametrize("strictness", ["strict", "values"])
def test_a_file_or_module_path_must_be_in_a_source_as_written(strictness: str) -> None:
    # A line break set a space inside the source's path.
    evidence = ["[2] page 88\nTo convert old checkpoints, run tools/ converters/upgrade_checkpoint.py."]
    question = "Which script exports a model for a phone?"
    for draft in ("Run tools/converters/upgrade_checkpoint.py [2].", "Run upgrade_checkpoint.py [2]."):
        assert check_draft(draft, evidence, question, strictness).grounded, draft
    invented = check_draft("Run tools/export/phone.py [2].", evidence, question, strictness)
    assert invented.unsupported == ["tools/export/phone.py"]
    assert identifiers("and/or 10/100/1000 e.g. 3.5 v2.18.0 a/b/c pump.drivers.SoftStarter") == [
        "pump.drivers.SoftStarter"
    ]


@pytest.mark.parametrize("strictness", ["strict", "values"])
def test_a_command_line_option_must_be_in_a_source_as_written(strictness: str) -> None:
    # The typesetter printed "--purge" as "–purge" (an en dash).
    evidence = ["[1] page 42\n-p <days>: Long option: –purge <days>; Meaning: Delete logs older than <days>"]
    question = "Which option deletes old logs?"
    for draft in ("Use -p <days> [1].", "Use `--purge <days>` [1]."):
        assert check_draft(draft, evidence, question, strictness).grounded, draft
    for invented in ("-purge", "--delete-logs"):
        assert check_draft(f"Use `{invented} <days>` [1].", evidence, question, strictness).unsupported == [invented]
    assert options("a -n flag, x-y, - item, -10 V, a—b") == ["-n"], "no hyphenated word, list mark, number or dash"
    # An option named by the question's own word is an answer, not a restatement.
    assert not check_draft("Use --purge [1].", evidence, "Which option purges old logs?", strictness).restated


def test_keyword_query_is_bounded_and_keeps_codes() -> None:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = [f"pasted{a}{b}{c}" for a in letters for b in letters for c in letters[:6]]  # 4,056 distinct words
    long = " ".join(words) + " fault E212"
    query = keyword_query(long)
    parts = query.split(" OR ")
    assert len(parts) == MAX_KEYWORD_TERMS
    assert '"e212"' in parts, "a code outranks ordinary words when the question is cut down"


@pytest.mark.parametrize(
    ("draft", "strictness", "unsupported"),
    [
        ("Use a 20 A fuse [1].", "strict", []),
        ("Copper is 10.37 ohms [2].", "strict", []),  # the row names its column's unit
        # The value and the unit stand in lines apart: no line vouches for "0.32 ohm".
        ("Brass is 0.32 ohm per foot [3].", "strict", ["0.32 ohm"]),
        ("Brass is 0.32 ohm per foot [3].", "values", ["0.32 ohm"]),
        ("Brass is 0.32 ohm per foot [3].", "off", []),
        ("There are 4 fuses [1].", "strict", ["4"]),  # a count nothing shows
        ("There are 4 fuses [1].", "values", []),  # a strong model may count
        ("The handle fits a Weller tip [1].", "strict", []),
        ("The handle fits a Hakko tip [1].", "strict", ["Hakko"]),  # a name no source has
        ("The handle fits a Hakko tip [1].", "values", []),
        ("Replace F7 [1].", "values", ["F7"]),  # an invented code, at any strictness but off
        ("The warranty is 5 years [1].", "values", ["5 years"]),  # a period is a value with a unit
    ],
)
def test_check_draft(draft: str, strictness: str, unsupported: list[str]) -> None:
    verdict = check_draft(draft, EVIDENCE, "Which fuse, handle and resistance?", strictness)  # type: ignore[arg-type]
    assert verdict.unsupported == unsupported
    assert verdict.grounded is (not unsupported)


@pytest.mark.parametrize(
    ("draft", "unsupported"),
    [
        ("The tank holds 15.8 gallons [1].", []),  # "(gal.)" names the row's unit
        ("The tank holds 27 gallons [1].", ["27 gallons"]),
        ("The engine makes 225 horsepower [1].", ["225 horsepower"]),
        ("It tows 2 tons [1].", ["2 tons"]),  # a weight no line states, though a bare 2 is no value
    ],
)
def test_a_spec_table_unit_abbreviated_or_written_out(draft: str, unsupported: list[str]) -> None:
    evidence = ["[1] page 24\nFuel tank (gal.) 15.8 13.2\nHorsepower 203 hp"]
    assert check_draft(draft, evidence, "How much does the tank hold?", "values").unsupported == unsupported


@pytest.mark.parametrize(
    ("draft", "unsupported"),
    [
        ("They are covered for 100,000 miles [1].", []),
        ("They are covered for 8 years [1].", []),
        ("They are covered for 200,000 miles [1].", ["200,000 miles"]),
    ],
)
def test_values_a_slash_joins_are_each_stated(draft: str, unsupported: list[str]) -> None:
    evidence = ["[1] page 15\nHybrid components are covered for 8 years/100,000 miles."]
    assert check_draft(draft, evidence, "How long is the warranty?", "values").unsupported == unsupported


def test_the_question_vouches_for_what_it_says() -> None:
    assert check_draft("Yes, 4 fuses of 30 AMP [1].", EVIDENCE, "Are there 4 fuses of 30 AMP?").grounded


def test_restating_the_question_is_no_answer() -> None:
    verdict = check_draft("The fuse handle resistance is shown [1].", EVIDENCE, "Which fuse handle resistance is shown?")
    assert verdict.restated and not verdict.grounded
    # Asked for pages, the sources cited are the answer.
    asked = "Which pages cover fuse handles?"
    assert check_draft("The pages that cover fuse handles are [1] and [2].", EVIDENCE, asked).grounded
    assert check_draft("The pages that cover fuse handles are listed.", EVIDENCE, asked).restated
    # Picking one of the choices the question offers is an answer; naming both is not.
    choice = "Is the fuse handle on the left or right side of the panel? Answer 'left' or 'right'."
    assert not restates_question("The fuse handle is on the right side of the panel [1].", choice)
    assert restates_question("The fuse handle is on the left or right side of the panel [1].", choice)


def test_a_count_question_answered_without_a_number_is_no_answer() -> None:
    evidence = [
        "[1] page 307\nThe DC solver tries these aids in order: 1. gmin stepping 2. source stepping "
        "3. transient operating point"
    ]
    question = "How many convergence aids does the DC solver try?"
    # The lead-in copied back, or the items without their count, answer nothing asked.
    assert check_draft("It tries the following convergence aids, in order [1].", evidence, question).restated
    assert not check_draft("It tries: 1. gmin stepping 2. source stepping [1].", evidence, question).grounded
    listed = "It tries: 1. gmin stepping 2. source stepping [1]."
    assert gives_no_count(listed, question), "an item's mark is no count"
    assert check_draft("It tries 3 aids: gmin stepping, source stepping, transient operating point [1].",
                       evidence, question).grounded
    assert check_draft("It tries three aids [1].", evidence, question).grounded
    assert not check_draft("It tries no aid [1].", evidence, question).restated, "none is a count"
    # Another question needs no number.
    assert check_draft("It tries gmin stepping first [1].", evidence, "Which aid does it try first?").grounded
    # A strong model's answer is its own.
    assert check_draft("It tries the following aids [1].", evidence, question, "values").grounded


def test_a_measurement_question_answered_without_a_value_is_no_answer() -> None:
    evidence = ["[1] page 296\nTNOM sets the nominal temperature at which parameters are measured. "
                "The default value is 27 \u25e6C.\n[2] page 24\nFuel tank 13.2 gal. Rating 44 city/47 hwy mpg."]
    asked = "Unless TNOM is set, at what temperature are parameters measured?"
    assert check_draft("At the nominal temperature [1].", evidence, asked).restated
    assert gives_no_value("At the nominal temperature [1].", asked)
    assert check_draft("At 27 \u00b0C, the default [1].", evidence, asked).grounded
    # Asked in a unit, the value must be in that unit: miles per gallon are no gallons.
    gallons = "How many gallons does the fuel tank hold?"
    assert check_draft("It is rated 44 city/47 hwy mpg [2].", evidence, gallons).restated
    assert check_draft("The fuel tank holds 13.2 gallons [2].", evidence, gallons).grounded
    assert not gives_no_value("Wait ten minutes.", "How many minutes should I wait?"), "a value in words"
    # The value must be of the kind asked: hours are no temperature, psig is a pressure.
    assert gives_no_value("Check it at 500 operating hours [1].", "At what temperature should the motor be checked?")
    assert not gives_no_value("At 200 degrees C [1].", "At what temperature should the motor be checked?")
    assert not gives_no_value("Set 5 to 7 psig [1].", "What pressure should I set on the gauge?")
    # A measure word naming a kind of thing asks for things, not a value.
    assert not gives_no_value("The inlet air and engine temperature sensors [1].",
                              "What temperature sensors are shown on the slides?")
    # "Maximum", "rated" and the like may stand before the measure, a clause after it.
    assert gives_no_value("The output can supply 5 volts [1].", "What is the maximum current the output can supply?")
    assert not gives_no_value("It supplies 20 mA [1].", "What is the maximum current the output can supply?")
    assert gives_no_value("It was low in cold water [1].", "What resistance was measured in cold water?")
    assert not gives_no_value("It is the current source [1].", "What current source drives the LED?")
    # A strong model's answer is its own.
    assert check_draft("At the nominal temperature [1].", evidence, asked, "values").grounded


def test_sentence_openers_are_not_names() -> None:
    assert unsupported_names("Replace it. Then wait.\n1. Open the cover.", EVIDENCE) == []


def test_a_range_with_its_unit_is_two_values() -> None:
    evidence = ["[1] page 3, Power\nSupply: 12-24 VDC. See figure 3-11.\nSymptoms last 36 to 48 hours."]
    question = "What supply voltage, and how long do symptoms last?"
    assert unsupported_values("The supply is 12 to 24 volts [1].", evidence, question, True, True) == []
    assert unsupported_values("The supply is 12-48 V [1].", evidence, question, True, True) == ["48 V"]
    assert unsupported_values("Symptoms last 36-48 hours [1].", evidence, question, True, True) == []
    assert unsupported_values("Symptoms last 2-4 days [1].", evidence, question, True, True) == ["2 days", "4 days"]
    # Without a unit a hyphen joins a figure's number: no value.
    assert unsupported_values("See figure 3-11 [1].", evidence, question, True, True) == []


def test_question_names_are_runs_of_capitalised_words() -> None:
    question = "Is Eau Claire in the Twin Cities market? Say yes or no. Which Dayton depot?"
    assert question_names(question) == [["Eau", "Claire"], ["Twin", "Cities"], ["Dayton"]]
    # Openers ("Is", "Answer", "Which") and question words are no names.
    assert question_names("Green wires: where do they go?") == []
    assert question_names("How Do I Descale The Coffee Machine?") == [], "title case names nothing"
    # Acronyms and option names of three capitals or more, unless the whole question shouts.
    assert question_names("What is the default of the GMAX option on the DC sweep?") == [["GMAX"]]
    assert question_names("WHAT IS THE GMAX OPTION FOR?") == []


def test_a_number_is_vouched_for_only_by_a_line_on_the_same_subject() -> None:
    evidence = [
        "[1] page 40, Shielded cable\nShielded cable has an inner conductor inside a braided shield.\n"
        "See figure 2-3 for its layers.",
        "[2] Figure 2-7, page 44: Terminal board\nLabels read from the diagram:\nTB2\nTERMINAL\n3",
    ]
    question = "What is the voltage rating of the shielded cable?"
    # "3" stands only in a figure reference and in a label list about something else.
    verdict = check_draft("The voltage rating of the shielded cable is 3 [1].", evidence, question)
    assert verdict.unsupported == ["3"]
    # The same number in a line about what the sentence says is vouched for, in a stacked
    # label list too (the number under its name).
    assert check_draft("The terminal board's terminal is 3 [2].", evidence, "Which terminal of the board?").grounded
    # But a callout number under a label is no count of what the label names.
    assert check_draft("The terminal board has 3 terminals [2].", evidence, "How many terminals?").unsupported == ["3"]
    # Nor does a source's key: "[3]" is our numbering, not the manual's.
    keyed = [*evidence, "[3] page 78, Shielded cable lacing\nTie shielded cable loosely."]
    assert check_draft("The shielded cable voltage rating is 3 [3].", keyed, question).unsupported == ["3"]
    # A strong model's paraphrase is not held to it.
    assert check_draft("The impedance is 3 [1].", evidence, question, "values").grounded


def test_a_count_is_vouched_for_only_by_a_line_that_counts_the_same_thing() -> None:
    evidence = [
        "[1] page 8, Docks\nBay numbers by dock\nNorth dock: 21 and 22\nSouth dock: 23 through 26",
        "[2] page 9, Relays\nThe controller drives seven relay outputs and reads 3 sensors.",
        "[3] Catalog of pages 4-5: 6 figures (images, photos, diagrams) and 1 table.",
    ]
    assert counted("How many service ports are on the rear panel?") == {"service", "port"}
    assert counted_heads("How many service ports are on the rear panel?") == {"port"}, "the thing, in the plural"
    assert counted_heads("How many accessories come with it?") == {"accessory"}
    modes = ["[6] page 324, Diode SOA model parameters\nThree SOA modes are available."]
    assert check_draft("There are 3 SOA model parameters [6].", modes, "How many SOA model parameters are there?"
                       ).unsupported == ["3"], "three modes are no count of parameters"
    assert counted("How many kinds of filters are offered?") == {"kind", "filter"}
    assert counted("How many batteries and switches?") == {"battery"}, "up to the first stop word"
    assert counted("How many gallons does the tank hold?") == set(), "a unit is a value's, checked as one"
    assert counted("What is the torque?") == set()
    assert counted("How many terminals?") == {"terminal"}, "the question's last word"
    # A list's numbering is no count of what the list holds.
    question = "How many bays does the south dock have?"
    assert check_draft("The south dock has 22 bays [1].", evidence, question).unsupported == ["22"]
    assert check_draft("The south dock has 23 bays [1].", evidence, question).unsupported == ["23"]
    # A count the manual writes, in digits or in words, is vouched for; so is the catalog's.
    assert check_draft("The controller drives 7 relay outputs [2].", evidence, "How many relay outputs are there?").grounded
    assert check_draft("It reads 3 sensors [2].", evidence, "How many sensors does it read?").grounded
    assert check_draft("It drives seven relay outputs [2].", evidence, "How many relay outputs are there?").grounded
    assert check_draft("It drives nine relay outputs [2].", evidence, "How many relay outputs are there?").unsupported == ["9"]
    fan = ["[4] page 2, Fan\nThe 3-speed fan has a four-position switch."]
    assert check_draft("The fan has 3 speeds [4].", fan, "How many speeds does the fan have?").grounded
    assert check_draft("The switch has 4 positions [4].", fan, "How many positions has the switch?").grounded
    box = ["[5] page 1, In the box\nHeadset x1\nEar tips x3 | 2x USB cables"]
    assert check_draft("There are 3 ear tips [5].", box, "How many ear tips come in the box?").grounded
    assert check_draft("There are 2 USB cables [5].", box, "How many USB cables come with it?").grounded
    assert check_draft("There are 2 ear tips [5].", box, "How many ear tips come in the box?").unsupported == ["2"]
    assert check_draft("There are 6 figures [3].", evidence, "How many figures do pages 4-5 hold?").grounded
    # The number of something else is not the count asked for.
    assert check_draft("There are 6 tables [3].", evidence, "How many tables do pages 4-5 hold?").unsupported == ["6"]
    # Only a count question is held to this: elsewhere the number's line need only be on topic.
    assert check_draft("Bays 21 and 22 are on the north dock [1].", evidence, "Which bays are on the north dock?").grounded
    # A strong model's count is its own.
    assert check_draft("The south dock has 4 bays [1].", evidence, question, "values").grounded


def test_a_code_printed_by_its_parts_is_that_code() -> None:
    # A diagram sets a code's parts apart ("K 48 C 2N"); OCR reads them so.
    assert spells_code("K48C2N", "Labels: K 48 C 2N ALUM")
    assert spells_code("W1-P2", "cable tag W1 P2")
    assert not spells_code("K48D2N", "Labels: K 48 C 2N ALUM")
    assert not spells_code("K48C2N", "K 48 C 2NX"), "a part runs on into another word"


def test_an_expected_value_counts_only_as_whole_words() -> None:
    from rag.evaluate import contains

    assert contains("There are 14 markets [1].", "14") and not contains("There are 14 markets [1].", "4")
    assert contains("Rated at 200°C [1].", "200°C") and contains("the  GT\nSport", "GT Sport")
    assert not contains("the XGT6 trim", "GT") and contains("It is BLUE.", "blue")
    assert contains("It tries three aids [1].", "3") and not contains("It tries thirteen aids [1].", "3")
    assert not contains("It is 3 inches long [1].", "1"), "a citation key is no value of the answer"
    assert contains("Level 1 removes weak symbols [2].", "weak symbol") and not contains("symbolic", "symbol")
    assert contains("Keep IN1 within 0 to 5V [1].", "5") and not contains("It is 1.5 V.", "1")


def test_a_table_row_carries_the_unit_its_title_names() -> None:
    table = ("[1] page 24, SAFE CURRENT RATINGS\nTable 1-3.—Current-Carrying Capacities (in Amperes) of Copper Conductors\n"
             "[…]\nSize 10: Rubber: 40; Varnished Cambric: 55; Silicone: 75\n[…]")
    question = "How much current can a No. 10 varnished cambric conductor carry?"
    assert check_draft("A No. 10 varnished cambric conductor carries 55 amps [1].", [table], question).grounded
    # Prose under a title is not its row: the unit stays with the line that names it.
    prose = "[1] page 24\nConductor ratings (in Amperes)\n[…]\nA No. 10 varnished cambric conductor is size 55 wire."
    verdict = check_draft("A No. 10 varnished cambric conductor carries 55 amps [1].", [prose], question)
    assert verdict.unsupported == ["55 amps"]



def test_glue_words_are_not_novel() -> None:
    evidence = ["[1] page 3\nRubber tape stretches and does not hold on a hot splice."]
    question = "Why is rubber tape a poor choice for a hot splice?"
    assert GLUE == {t for w in GLUE for t in terms(w)}, "glue is compared with terms: each word must be one"
    assert check_draft("Rubber tape only stretches, it also loosens and slips [1].", evidence, question).grounded
    assert not check_draft("Rubber tape melts, smokes and ignites [1].", evidence, question).grounded


def test_a_value_from_a_line_about_something_else_is_not_the_answer() -> None:
    # The question asks about something the manual never gives an interval for; the model
    # lends it the interval of the line beside, copying that line's words around the value.
    schedule = ("[1] page 6, Maintenance schedule\nAppendix A Maintenance schedule\n"
                "Inspect the impeller every 500 operating hours.\n[…]\n"
                "Grease the motor bearings every 2000 hours with lithium grease.")
    verdict = check_draft("The oil should be changed every 500 operating hours [1].", [schedule],
                          "How often should the oil be changed?")
    assert verdict.unsupported == ["500"], verdict
    assert check_draft("Inspect the impeller every 500 operating hours [1].", [schedule],
                       "How often should I inspect the impeller?").grounded
    # A table row speaks of what its table's title says, lines above it.
    table = ("[1] page 20, WIRE SIZES\nTable 1-2.—Standard Solid Copper (American Wire Gauge)\n[…]\n"
             "Gage number 14: Diameter (mils): 64.0; Pounds per 1,000 ft.: 12.4")
    assert check_draft("1,000 feet of AWG 14 solid copper wire weighs 12.4 pounds [1].", [table],
                       "How much does 1,000 feet of AWG 14 solid copper wire weigh?").grounded


def test_a_source_titles_page_number_is_no_value_of_the_manual() -> None:
    # The prompt's own "page 12" vouches for where a thing is, never for a value.
    evidence = ["[2] page 12, Getting started\nConnect the logger to the USB port before the first reading."]
    question = "What baud rate does the logger use on its USB link?"
    assert check_draft("The logger uses a baud rate of 12 on its USB link [2].", evidence, question).unsupported == ["12"]
    where = "Where is connecting the logger described?"
    assert check_draft("Connecting the logger is described on page 12 [2].", evidence, where).grounded
    assert check_draft("It is on page 14 [2].", evidence, where).unsupported == ["14"]
    # The manual's own numbers still count, a printed page number among them.
    printed = ["[1] page 12, Getting started\nThe logger talks at 12 kbaud over USB.\n12"]
    assert check_draft("The logger talks at 12 kbaud [1].", printed, question).grounded


def test_a_decimal_without_its_leading_zero_is_that_decimal() -> None:
    evidence = ["[2] page 17, Calibration\nThe actual value of the current source is 3.725/3.876 = .961 mA."]
    asked = "What is the actual value of the current source?"
    assert check_draft("The actual value of the current source is 0.961 mA [2].", evidence, asked).grounded
    assert check_draft("The actual value of the current source is .961 mA [2].", evidence, asked).grounded
    assert check_draft("The actual value of the current source is 0.916 mA [2].", evidence, asked).unsupported == ["0.916 mA"]


@pytest.mark.parametrize("sign", ["°", "º", "˚", "◦", "∘"])
def test_a_degree_sign_in_any_of_its_spellings(sign: str) -> None:
    # LaTeX's $^\circ$ comes out of a PDF as a white bullet (U+25E6), a Word file's as an
    # ordinal sign: "27 °C" in an answer is the manual's "27 ◦C".
    evidence = [f"[1] page 296\nTNOM=x resets the nominal temperature. The default value is 27 {sign}C."]
    assert unsupported_values("The default is 27 °C [1].", evidence) == []
    assert unsupported_values("The default is 25 °C [1].", evidence) == ["25 °C"]


def test_a_list_states_its_count_by_its_items() -> None:
    steps = [
        "[1] page 4, Descaling\nTo descale the machine: 1. Empty the drip tray. 2. Fill the tank with "
        "descaler. 3. Place a cup under the spout. 4. Hold the descale button. 5. Rinse the tank.",
        "[2] page 9, Cleaning\nTo clean the grinder: 1. Unplug the machine. 2. Brush the burrs.",
    ]
    question = "How many steps does descaling take?"
    assert check_draft("Descaling takes 5 steps [1].", steps, question).grounded
    assert check_draft("Descaling takes 4 steps [1].", steps, question).unsupported == ["4"]
    # Another list in the same evidence counts another procedure.
    assert check_draft("Descaling takes 2 steps [2].", steps, question).unsupported == ["2"]
    box = ["[3] page 2, In the box\n• Headset\n• USB-C cable\n• Carrying case\n• Quick start guide"]
    assert check_draft("The box holds 4 items [3].", box, "How many items come in the box?").grounded
    # A list the budget cut ("[…]") may have lost items: its shown length is no count.
    cut = ["[3] page 2, In the box\n• Headset\n• USB-C cable […] • Quick start guide"]
    assert check_draft("The box holds 3 items [3].", cut, "How many items come in the box?").unsupported == [
        "3"]
    # A list under a heading that names only the counted thing ("Market name") counts
    # whatever that column holds, not what the question narrows it to; nor does a list
    # found by the page the question names.
    markets = ["[4] page 8, Markets\nMarket name: 1. Little Rock 2. Northern Arkansas"]
    near = "How many markets near Houston?"
    assert not check_draft("There are 2 markets near Houston [4].", markets, near).grounded
    catalog = ["[5] Catalog of pages 5-6: 3 figures.\n1. Cover (page 5)\n2. Seats (page 5)\n3. Dash (page 6)"]
    question = "How many people appear on pages 5 and 6?"
    assert check_draft("There are 3 people on pages 5 and 6 [5].", catalog, question).unsupported == ["3"]
    question = "How many steps does descaling take?"
    assert list_sizes(steps, question, counted(question)) == {"5"}
    # The steps copied a line each, their marks dropped, give the count; written, it is not given again.
    copied = "Empty the drip tray.\nFill the tank.\nPlace a cup.\nHold the button for two seconds.\nRinse the tank."
    assert series_count(copied, question, steps) == 5
    assert series_count("It takes these steps:\n" + copied, question, steps) == 5, "a lead-in line aside"
    assert series_count("It takes five steps:\n" + copied, question, steps) is None
    marked = "\n".join(f"{n}. {line}" for n, line in enumerate(copied.splitlines(), start=1))
    assert series_count(marked + "\nThen the light goes out.", question, steps) == 5, "the marked lines"
    assert series_count("\n".join(copied.splitlines()[:4]), question, steps) is None, "four lines, five steps"
    # A question that names nothing but the thing counted takes a list whose lead-in names it.
    reasons = ["[6] page 4, Which mode?\nSo why use relocatable mode?\n• Reuse.\n• Libraries.\n• Faster builds."]
    question = "How many advantages of relocatable mode does the manual list?"
    assert list_sizes(reasons, question, counted(question)) == {"3"}
    assert list_sizes(reasons, "How many advantages of absolute mode?", counted("How many advantages of absolute mode?")) == set()


def test_a_run_of_numbered_items_given_by_its_ends_states_its_count() -> None:
    # Lines run together in a page's text: each run's label is what follows the number before it.
    zones = ["[2] page 14, Watering plan\nZones by area: Front lawn: zones 1 through 4 Back garden: zones 5-9 "
             "Hedges: 10 and 11\nWater 8-10 minutes at 0 to 40 °C, 5-10% slope; see Figure 2-40 and pages 12-15."]
    question = "How many zones water the back garden?"
    assert list_sizes(zones, question, counted(question)) == {"5"}
    assert check_draft("Five zones water the back garden [2].", zones, question).grounded
    assert check_draft("Nine zones water the back garden [2].", zones, question).unsupported == ["9"]
    # A figure's or page's number, and a range of values with its unit, count no items.
    assert [(size, label) for size, label, _ in _ranges(zones[0])] == [
        (4, "Zones by area: Front lawn: zones"), (5, "Back garden: zones")]
    for asked in ("How many figures show the slope?", "How many pages cover the slope?",
                  "How many minutes of watering?", "How many slope settings?"):
        assert list_sizes(zones, asked, counted(asked)) == set(), asked


def test_a_series_in_a_sentence_states_its_count() -> None:
    evidence = ["[1] page 558, Code Model Data\nThe strength of a digital value can be either STRONG "
                "(integer value 0), RESISTIVE (integer value 1), HI IMPEDANCE (integer value 2) or "
                "UNDETERMINED (integer value 3). When a node is on, press A, and wait."]
    question = "How many strength values can a digital node be driven with?"
    assert check_draft("There are 4 strength values [1].", evidence, question).grounded
    assert check_draft("There are 3 strength values [1].", evidence, question).unsupported == ["3"]
    # Commas between clauses are no series, and a series of other things counts nothing asked.
    assert check_draft("A node is driven with 3 strength values [1].", evidence, question).unsupported == ["3"]
    assert not check_draft("There are 4 nodes [1].", evidence, "How many nodes are there?").grounded
    kit = ["[2] page 2, Contents\nThe kit's accessories are a charger, two cables, and a carrying case."]
    assert check_draft("The kit has 3 accessories [2].", kit, "How many accessories come with the kit?").grounded
    # The series counts accessories, not the cables among them.
    assert check_draft("The kit has 3 cables [2].", kit, "How many cables come with the kit?").unsupported == ["3"]
    # Without a word that opens a series, commas part clauses.
    assert _series("When it is on, press A, and wait.") is None
    # "It" is what the sentence before names.
    tools = ["[3] page 3, Introduction\nThe suite is a collection of tools for PIC parts. It includes asm, link, and lib."]
    assert check_draft("The suite has 3 tools [3].", tools, "How many tools make up the suite?").grounded
    assert check_draft("The suite has 5 tools [3].", tools, "How many tools make up the suite?").unsupported == ["5"]
    # Naming as many items as the series has answers the count; naming fewer does not.
    assert check_draft("The suite includes asm, link, and lib [3].", tools, "How many tools make up the suite?").grounded
    assert check_draft("The suite includes asm and link [3].", tools, "How many tools make up the suite?").restated
    assert series_count("The suite includes asm, link, and lib [3].", "How many tools make up the suite?", tools) == 3
    assert series_count("The suite includes asm, link, lib, and sim [3].", "How many tools make up the suite?",
                        tools) is None, "four named, three listed"


def test_a_value_in_words_is_its_digits() -> None:
    evidence = [
        "[1] page 5, Replacing the contactor\n1. Switch off the breaker.\n2. Remove the four screws.\n"
        "3. Fit the new contactor.\nAfter replacement, run the pump for ten minutes."
    ]
    question = "How long should the pump run after I replace the contactor?"
    assert check_draft("Run the pump for 10 minutes [1].", evidence, question).grounded
    twenty = check_draft("Run the pump for twenty minutes [1].", evidence, question)
    assert twenty.unsupported == ["20 minutes"], "a value in words is checked like one in digits"
    # Only before a unit written out: "one in five" is no inch.
    assert check_draft("One in five pumps needs it [1].", evidence, "Which pumps need it?").grounded
    # A count question's answer may copy the list: its marks are no counts.
    steps = "1. Switch off the breaker.\n2. Remove the four screws.\n3. Fit the new contactor."
    assert check_draft(steps, evidence, "How many steps does it take to replace the contactor?").grounded
    # Nor are they values when the model numbers steps its source writes as prose.
    prose = ["[1] page 16, Saved searches\nOpen Search for Students. Choose the criteria, then click Save search."]
    numbered = "To save a search:\n1. Open Search for Students [1].\n2. Choose the criteria [1].\n3. Click Save search [1]."
    assert check_draft(numbered, prose, "How do I save a search?").grounded
    for mark in ("**3.**", "- 3.", "### 3.", "3)", "Step 3:", "**Step 3:**"):  # as the model writes them
        assert check_draft(f"{mark} Click Save search [1].", prose, "How do I save a search?").grounded, mark
    assert check_draft("3. Click Save search within 15 minutes [1].", prose, "How do I save a search?").unsupported == [
        "15 minutes"], "a value in a step is still checked"


def test_a_figure_label_speaks_of_what_its_caption_says() -> None:
    # A dimension printed on a drawing stands alone under the figure's labels heading: the
    # caption on the page says what it measures.
    page = ("[1] page 78, Lacing\nA lacing shuttle keeps the cord from fouling.\n[…]\n"
            "Figure 2-40.—Lacing shuttle.\n[…]\nFigure 2-40 labels:\n3 in.")
    question = "How long is the lacing shuttle?"
    assert check_draft("The lacing shuttle is 3 in. long [1].", [page], question).grounded
    # Another figure's caption says nothing of the labels under this one's heading.
    other = page.replace("Figure 2-40 labels:", "Figure 2-41 labels:")
    assert check_draft("The lacing shuttle is 3 in. long [1].", [other], question).unsupported == ["3 in"]
    # A figure source's labels speak of its title; the page's prose after a page's labels does not.
    figure = "[2] Figure 4-2, page 12: Pump motor fuse panel\nLabels read from the diagram:\nMAIN\n15 AMP"
    assert check_draft("The pump motor fuse is 15 AMP [2].", [figure], "Which fuse protects the pump motor?").grounded
    prose = (f"{page}\nThe next section explains how to tie a square knot in the cord.\n20 in.")
    assert check_draft("The lacing shuttle is 20 in. long [1].", [prose], question).unsupported == ["20 in"]


def test_a_list_given_for_which_is_no_count() -> None:
    evidence = ["[1] page 47, Relay\nYou should forward the following ports for the relay:\n• UDP 3478\n• TCP 3478\n• UDP 5349"]
    listed = "The ports to forward are:\n- UDP 3478\n- TCP 3478\n- UDP 5349 [1]"
    assert series_count(listed, "Which ports do I forward for the relay?", evidence) is None
    assert series_count(listed, "How many ports do I forward for the relay?", evidence) == 3
