"""Citation keys after generation: parsing, dropping unoffered keys, mapping, cannot-answer."""

from __future__ import annotations

import pytest

from manualrag.types import Citation, Hit
from rag.citations import (
    cites_near,
    cite_by_overlap,
    extract_citations,
    is_answerable,
    parse_keys,
    repoint_citations,
    says_cannot_answer,
)
from rag.grounding import restates_question, unsupported_values, unsupported_words
from rag.prompts import CANNOT_ANSWER


def _hit(n: int, kind: str = "text", **kw: object) -> Hit:
    return Hit(id=f"h{n}", manual=f"m{n}.pdf", page=10 + n, kind=kind, text=f"text {n}", score=1.0 / n, **kw)  # type: ignore[arg-type]


SOURCES = [
    _hit(1),
    _hit(2, "table", section="Ratings"),
    _hit(3, "figure", figure="Figure 3-11", image="/store/fig/p13-f1.png", bbox=(1.0, 2.0, 3.0, 4.0)),
]


@pytest.mark.parametrize(
    ("group", "keys"),
    [
        ("1", [1]),
        ("1, 3", [1, 3]),
        ("1,3,1", [1, 3]),
        ("1-3", [1, 2, 3]),
        ("1–3", [1, 2, 3]),
        ("2 and 3", [2, 3]),
        ("1; 2 & 3", [1, 2, 3]),
        ("3-1", [3, 1]),  # backwards: the two ends, not a range
        ("1-300", [1, 300]),  # absurdly wide: the two ends, not 300 keys
    ],
)
def test_parse_keys(group: str, keys: list[int]) -> None:
    assert parse_keys(group) == keys, f"{group!r} should give {keys}"


@pytest.mark.parametrize(
    ("raw", "clean", "keys"),
    [
        ("The fuse is 20 AMP [1].", "The fuse is 20 AMP [1].", [1]),
        ("Torque 12 N·m [1, 3].", "Torque 12 N·m [1][3].", [1, 3]),
        ("See [1][2].", "See [1][2].", [1, 2]),
        ("See [1] [2].", "See [1][2].", [1, 2]),
        ("Steps [1-3].", "Steps [1][2][3].", [1, 2, 3]),
        ("As shown (source 2).", "As shown [2].", [2]),
        ("As shown (sources 1 and 3).", "As shown [1][3].", [1, 3]),
        ("Per [Source 3], yes.", "Per [3], yes.", [3]),
        ("Made up [7].", "Made up.", []),  # never offered: gone from text and list
        ("Mixed [2, 9] here.", "Mixed [2] here.", [2]),
        ("Zero [0] is not a key.", "Zero is not a key.", []),
        ("Later [3] then earlier [1] then [3].", "Later [3] then earlier [1] then [3].", [3, 1]),
        ("Year [2024] stays.", "Year [2024] stays.", []),  # four digits: not a citation form
        ("No citations at all.", "No citations at all.", []),
        # A key after the full stop belongs to the sentence before it.
        ("Rated 200 C. [1] Keep it dry. [2]", "Rated 200 C [1]. Keep it dry [2].", [1, 2]),
    ],
)
def test_extract_citations(raw: str, clean: str, keys: list[int]) -> None:
    text, cites = extract_citations(raw, SOURCES)
    assert text == clean, f"clean text of {raw!r}"
    assert [c.key for c in cites] == keys, f"keys of {raw!r}"


def test_citation_maps_to_its_source() -> None:
    _, cites = extract_citations("Wiring [3]; rating [2].", SOURCES)
    assert cites[0] == Citation(
        key=3,
        hit_id="h3",
        manual="m3.pdf",
        page=13,
        kind="figure",
        figure="Figure 3-11",
        image="/store/fig/p13-f1.png",
        bbox=(1.0, 2.0, 3.0, 4.0),
    ), "key 3 is the figure source, with its label and image"
    assert (cites[1].kind, cites[1].section, cites[1].page) == ("table", "Ratings", 12), "key 2 is the table"


def test_no_sources_drops_every_key() -> None:
    text, cites = extract_citations("Claim [1].", [])
    assert (text, cites) == ("Claim.", []), "with nothing offered, no key survives"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CANNOT_ANSWER, True),
        (CANNOT_ANSWER.upper(), True),
        (CANNOT_ANSWER.rstrip("."), True),
        ("The manuals I have don't contain the answer to this.", True),
        ("The manuals I have do not contain the answer to this question.", True),
        ("The sources do not contain the answer.", True),
        ("The provided text does not contain any information about that.", True),
        ("I cannot answer this from the manuals.", True),
        ("The fuse is rated 20 AMP [1].", False),
        ("The manual lists the answer: 20 AMP [1].", False),
        ("", False),
        ("Check the fuse first. " + CANNOT_ANSWER, False),  # only an opening refusal counts
    ],
)
def test_says_cannot_answer(text: str, expected: bool) -> None:
    assert says_cannot_answer(text) is expected, f"{text!r}"


@pytest.mark.parametrize(
    ("text", "keys", "expected"),
    [
        ("The fuse is 20 AMP [1].", [1], True),
        ("The fuse is 20 AMP.", [], True),  # uncited but an answer: flagged by missing citations, not here
        (CANNOT_ANSWER, [], False),
        (CANNOT_ANSWER + " [1]", [1], False),  # a citation on the refusal alone does not make an answer
        (CANNOT_ANSWER + " However, the fuse rating is listed as 20 AMP [1].", [1], True),  # partial answer
        ("", [], False),
    ],
)
def test_is_answerable(text: str, keys: list[int], expected: bool) -> None:
    _, cites = extract_citations(" ".join(f"[{k}]" for k in keys), SOURCES)
    assert is_answerable(text, cites) is expected, f"{text!r} with keys {keys}"


MANUAL = [
    Hit(
        id="v", manual="m.pdf", page=1, kind="text", score=1.0,
        text="Replace F1 with a 20 AMP fuse; wait 5 minutes for the bus to fall below 50 V. "
        "Fault F07801. 1,450 rpm. Tighten to 12 N·m. Gap 0.5 mm. Trim to 3/8 inch.",
    )
]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "unsupported"),
    [
        ("Use a 20 AMP fuse [1].", []),
        ("Use a 20 A fuse [1].", []),  # same unit, other spelling
        ("Wait 5 min, below 50V [1].", []),
        ("Speed 1450 rpm, torque 12 Nm, gap 0.5 mm [1].", []),  # thousands separator and unit spellings
        ("Tighten to 20 Nm [1].", ["20 Nm"]),  # the number exists, but not as a torque
        ("Gap 0.6 mm [1].", ["0.6 mm"]),
        ("Set it to 40% [1].", ["40%"]),
        ("Fault F07802 means overheating [1].", ["F07802"]),  # an invented code
        ("Fault F07801 [1], see step 3 on page 12.", []),  # plain integers are not checked
        ("Trim the ends to 3/8 inch [1].", []),
        ("Trim the ends to 1/2-inch [1].", ["1/2-inch"]),  # a fraction is a value: checked
        ("Trim them to 1/4 [1].", ["1/4"]),
    ],
)
def test_unsupported_values(answer: str, unsupported: list[str]) -> None:
    assert unsupported_values(answer, [h.text for h in MANUAL]) == unsupported, f"{answer!r}"


COPIED = [
    Hit(id="a", manual="m.pdf", page=1, kind="text", score=1.0, text="Fault F07801 indicates overtemperature; check fan fuse F3."),
    Hit(
        id="b", manual="m.pdf", page=2, kind="text", score=0.9,
        text="Switch off the mains isolator. Wait 5 minutes for the DC bus capacitors to discharge below 50 V.",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Fault F07801 indicates overtemperature.", "Fault F07801 indicates overtemperature [1]."),
        (
            "1. Switch off the mains isolator first.\n2. Wait 5 minutes for the capacitors to discharge.",
            "1. Switch off the mains isolator first [2].\n2. Wait 5 minutes for the capacitors to discharge [2].",
        ),
        (
            "The housing is painted black and grey.",
            "The housing is painted black and grey.",
        ),  # no source says so
        ("Yes, F3.", "Yes, F3."),  # too short to attribute
        (
            "Switch off the mains isolator, then wait approx. five minutes for the capacitors to discharge.",
            "Switch off the mains isolator, then wait approx. five minutes for the capacitors to discharge [2].",
        ),  # an abbreviation's full stop ends no sentence
        ("Already cited [2].", "Already cited [2]."),
    ],
)
def test_cite_by_overlap(answer: str, expected: str) -> None:
    assert cite_by_overlap(answer, [h.text for h in COPIED]) == expected


@pytest.mark.parametrize(
    ("answer", "novel"),
    [
        ("Use a 20 AMP fuse for F1 [1].", []),  # copied from the source
        ("Yes, F1 takes a 20 AMP fuse because the table says so [1].", []),  # glue words only
        ("Replace F1 with a 20 AMP fuse; some may each be other fuse wires [1].", []),  # function words
        ("The ground wire of the pump is green and yellow [1].", ["green", "ground", "pump", "yellow"]),
    ],
)
def test_unsupported_words(answer: str, novel: list[str]) -> None:
    source = Hit(id="s", manual="P.pdf", page=1, kind="text", text="Replace fuse F1 with a 20 AMP fuse. The wire table says so.", score=1.0)
    found = unsupported_words(answer, [source.text], "Which fuse does F1 take? What colour is the wire?")
    assert found == novel


FLANGE = [
    Hit(id="f", manual="m.pdf", page=65, kind="figure", score=1.0, figure="Figure 4-7",
        text="Figure 4-7.—Assembling a flange.\nLabels: APPLY GRAPHITE\nGREASE TO THREADS\nBEFORE ASSEMBLY"),
    Hit(id="t", manual="m.pdf", page=64, kind="text", score=0.9,
        text="This will prevent seizing while the bolts are heated. Stainless bolts are usually preferred."),
    Hit(id="u", manual="m.pdf", page=66, kind="text", score=0.8,
        text="Graphite grease is sold in tubes. Grease is applied to threads in some shops."),
]  # fmt: skip
QUESTION = "What can be applied to the bolt threads to prevent seizing?"


@pytest.mark.parametrize(
    ("answer", "expected", "moved"),
    [
        # The grease callout is figure [1]; the model numbered it [2], a passage without grease.
        ("Graphite grease can be applied [2].", "Graphite grease can be applied [1].", [1]),
        # Cited right: left alone.
        ("Apply graphite grease [1].", "Apply graphite grease [1].", []),
        # Another source that also says it keeps the key: only a plainly wrong key moves.
        ("Graphite grease [3].", "Graphite grease [3].", []),
        # Nothing said beyond the question's own words: nothing to judge by.
        ("It prevents seizing [2].", "It prevents seizing [2].", []),
        # Only the sentence with the wrong key moves; several keys move together.
        ("Stainless bolts are preferred [2]. Grease them before assembly [2].",
         "Stainless bolts are preferred [2]. Grease them before assembly [1].", [1]),
        ("Before assembly [2][3].", "Before assembly [1].", [1]),
        # A list's items are judged one by one, full stops or not.
        ("- Stainless bolts are preferred [2]\n- Graphite grease before assembly [2]",
         "- Stainless bolts are preferred [2]\n- Graphite grease before assembly [1]", [1]),
    ],
)  # fmt: skip
def test_repoint_citations(answer: str, expected: str, moved: list[int]) -> None:
    assert repoint_citations(answer, [h.text for h in FLANGE], QUESTION) == (expected, moved)


def test_a_value_is_cited_to_the_one_source_that_states_it() -> None:
    read = ["Gage number 14: Diameter (mils): 64.0; Pounds per 1,000 ft.: 12.4",
            "The last column shows the weight of the wire per thousand feet."]  # fmt: skip
    question = "How much does 1,000 feet of AWG 14 copper wire weigh?"
    moved = repoint_citations("The weight is 12.4 pounds per thousand feet [2].", read, question)
    assert moved == ("The weight is 12.4 pounds per thousand feet [1].", [1])
    kept = repoint_citations("The weight is 12.4 pounds per thousand feet [1].", read, question)
    assert kept == ("The weight is 12.4 pounds per thousand feet [1].", []), "cited right: left alone"
    both = [read[0], read[0] + " 12.4"]
    assert repoint_citations("It weighs 12.4 pounds [1].", both, question)[1] == [], "two sources state it"


def test_a_citation_near_a_named_page() -> None:
    _, cited = extract_citations("Use it [1].", SOURCES)
    manual, page = cited[0].manual, cited[0].page
    assert cites_near(cited, [(manual, page)]) and cites_near(cited, [(manual, page + 1)]), "a page on runs over"
    assert not cites_near(cited, [(manual, page + 2)]) and not cites_near(cited, [("other.pdf", page)])


def test_a_key_after_the_full_stop_is_moved_with_its_sentence() -> None:
    text, _ = extract_citations("Graphite grease can be applied. [2]", FLANGE)
    assert repoint_citations(text, [h.text for h in FLANGE], QUESTION) == ("Graphite grease can be applied [1].", [1])


@pytest.mark.parametrize(
    ("answer", "restated"),
    [
        ("The piping symbols appendix shows hand-operated valve symbols [3].", True),
        ("The appendix shows the hand-operated valve symbols: gate and globe [1].", False),
        ("Yes [2].", False),  # a yes is an answer, however short
        ("No, it does not [1].", False),
        ("", False),
    ],
)
def test_restates_question(answer: str, restated: bool) -> None:
    question = "Which hand-operated valve symbols does the piping symbols appendix show?"
    assert restates_question(answer, question) is restated


def test_a_decimal_without_its_leading_zero_moves_the_key_to_its_source() -> None:
    evidence = ["[1] page 17, Calibration\nThe actual value of the current source is 3.725/3.876 = .961 mA.",
                "[2] page 57, Observation\nOne can follow a calibration procedure to obtain the actual gain."]
    text, moved = repoint_citations("The calibration found the actual current to be 0.961 mA [2].", evidence,
                                    "What did the calibration find the actual current to be?")
    assert text.endswith("0.961 mA [1].") and moved == [1], text
