"""The catalog's visibility rule and the keyword index, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from manualrag.types import ManualInfo, Record
from rag.library import Library, keyword_query


@pytest.mark.parametrize(
    ("text", "must_have", "must_not_have"),
    [
        ("What size fuse for the wiper motor?", ['"fuse"', '"wiper"', '"motor"'], ['"what"', '"the"', '"for"']),
        ("fault F07452 on start", ['"f07452"'], []),
        ("Figure 3-11 wiring", ['"3 11"', '"figure"'], []),
        ("20 AMP fuse", ['"20 amp"', '"20"', '"amp"'], []),
        ("AWG 20 wire", ['"awg 20"'], []),
        ('quote " inside', ['"quote"', '"inside"'], ['"""']),
        ("the of and", [], ['"the"']),
        ("How many gallons does the tank hold?", ['"gallons"', '"gal"'], []),
        ("rated horsepower", ['"horsepower"', '"hp"'], []),
        ("strip 2 inches of insulation", ['"inches"', '"inch"'], ['"in"']),
    ],
)
def test_keyword_query_terms(text: str, must_have: list[str], must_not_have: list[str]) -> None:
    query = keyword_query(text)
    terms = query.split(" OR ") if query else []
    for term in must_have:
        assert term in terms, f"{term} missing from {query!r}"
    for term in must_not_have:
        assert term not in terms, f"{term} should not be in {query!r}"


def _records(manual: str, prefix: str, texts: list[str]) -> list[Record]:
    return [Record(id=f"{prefix}-{i}", manual=manual, page=i + 1, kind="text", text=t) for i, t in enumerate(texts)]


def _info(name: str, ingest_id: str) -> ManualInfo:
    return ManualInfo(name=name, sha256="0" * 64, ingest_id=ingest_id, pdf_path="manuals/x.pdf")


def test_generation_visible_only_after_commit(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.db")
    lib.begin("c", "pump.pdf", "gen1")
    lib.add_records("c", "gen1", _records("pump.pdf", "a", ["replace the contactor coil", "fuse F3 20 AMP"]))
    assert lib.visible_ids("c") == [], "a pending generation must not be visible"
    assert lib.keyword("contactor", lib.visible_ids("c"), 5) == []
    lib.commit("c", _info("pump.pdf", "gen1"))
    visible = lib.visible_ids("c")
    assert visible == ["gen1"]
    hits = lib.keyword("contactor coil", visible, 5)
    assert [h[0] for h in hits] == ["a-0"], f"expected the contactor record, got {hits}"
    assert lib.stale() == [], "nothing should be left to purge after a clean commit"


def test_a_unit_written_out_finds_its_abbreviation(tmp_path: Path) -> None:
    """A technician writes "gallons", a spec table "gal.": the keyword side matches them."""
    lib = Library(tmp_path / "library.db")
    lib.begin("c", "car.pdf", "gen1")
    texts = ["Fuel tank (gal.) 15.8 13.2", "Fill the fuel tank with fuel of 87 octane; the tank cap is on the left."]
    lib.add_records("c", "gen1", _records("car.pdf", "a", texts))
    lib.commit("c", _info("car.pdf", "gen1"))
    hits = lib.keyword("How many gallons does the fuel tank hold?", lib.visible_ids("c"), 5)
    assert hits and hits[0][0] == "a-0", f"the row stating gallons should rank first, got {hits}"


def test_replace_retires_old_generation(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.db")
    for gen, text in (("gen1", "old wiring text"), ("gen2", "new wiring text")):
        lib.begin("c", "pump.pdf", gen)
        lib.add_records("c", gen, _records("pump.pdf", gen, [text]))
        lib.commit("c", _info("pump.pdf", gen))
    assert lib.visible_ids("c") == ["gen2"]
    assert ("gen1", "c") in lib.stale(), "the replaced generation must be marked for purging"
    hits = lib.keyword("wiring", lib.visible_ids("c"), 5)
    assert [h[0] for h in hits] == ["gen2-0"], f"only the new generation may match, got {hits}"
    lib.forget("gen1")
    assert lib.count("gen1") == 0 and lib.stale() == []


def test_crashed_run_is_stale_and_invisible(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.db")
    lib.begin("c", "pump.pdf", "crashed")
    lib.add_records("c", "crashed", _records("pump.pdf", "x", ["half written"]))
    lib.close()
    reopened = Library(tmp_path / "library.db")  # as a new process would
    assert reopened.visible_ids("c") == []
    assert ("crashed", "c") in reopened.stale()
    assert reopened.manual("c", "pump.pdf") is None


def test_remove_hides_at_once(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.db")
    lib.begin("c", "a.pdf", "g1")
    lib.add_records("c", "g1", _records("a.pdf", "g1", ["alpha text"]))
    lib.commit("c", _info("a.pdf", "g1"))
    assert lib.remove("c", "a.pdf") == "g1"
    assert lib.visible_ids("c") == [] and lib.manuals("c") == []
    assert lib.remove("c", "a.pdf") is None, "removing twice reports nothing removed"


def test_records_round_trip(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.db")
    rec = Record(id="r1", manual="m.pdf", page=7, kind="figure", text="Figure 3-11 Wiring", pages=(7, 8),
                 figure="Figure 3-11", figure_refs=("Figure 3-11",), bbox=(1.0, 2.0, 3.0, 4.0), image="figures/g/p7.png")
    lib.begin("c", "m.pdf", "g")
    lib.add_records("c", "g", [rec])
    assert lib.records(["r1"])["r1"] == rec
    assert lib.figures_by_label(["g"], ["Figure 3-11"]) == [rec]
    assert lib.figures_by_label(["g"], ["Figure 9-9"]) == []
