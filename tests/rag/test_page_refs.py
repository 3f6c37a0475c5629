"""Page references in questions, resolved through printed labels."""

from __future__ import annotations

import pytest

from rag.page_refs import find_page_refs, resolve

OFFSET = ["", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]  # printed = PDF page - 1


@pytest.mark.parametrize(
    ("question", "labels", "pages"),
    [
        ("What is in the red frame on page 7?", OFFSET, [8]),  # printed 7 is PDF page 8
        ("What is in the red frame on page 7?", [], [7]),  # no labels known: the PDF page
        ("How many photos are printed on page three?", [], [3]),
        ("Which trims are shown on pages 9 and 11?", OFFSET, [10, 12]),
        ("How many figures on pages 3-5?", OFFSET, [4, 5, 6]),
        ("How many figures on pages 3 to 5?", [], [3, 4, 5]),
        ("See p. 2 and pages 4, 5 and 6", [], [2, 4, 5, 6]),
        ("What does page 2-1 show?", ["1-1", "1-2", "2-1", "2-2"], [3]),  # a chapter-page label
        ("What does page 40 show?", OFFSET, []),  # no such page
        ("What colour is the truck on the cover?", OFFSET, [1]),  # the cover is the first PDF page
        ("Which logo is on the front cover of the brochure?", [], [1]),
        ("Who signed the title page", [], [1]),
    ],
)
def test_resolve(question: str, labels: list[str], pages: list[int]) -> None:
    ref = find_page_refs(question)
    assert ref is not None
    assert resolve(ref, labels, 13) == pages


@pytest.mark.parametrize(
    "question",
    [
        "What torque for the pump?",
        "The page layout of the menu",
        "Turn 3 pages",
        "How do I remove the back cover?",  # a device's cover, not the manual's
        "Which screws hold the cover of the pump?",
        "Is the gasket on the cover replaceable after cleaning?",
    ],
)
def test_no_reference(question: str) -> None:
    assert find_page_refs(question) is None
