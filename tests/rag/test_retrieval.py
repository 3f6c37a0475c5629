"""Hybrid retrieval on a small real corpus: exact codes, figure linking, filters, abstention, restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from chroma_server import both_backends
from pdfgen import ManualBuilder

from manualrag.engine import Engine
from manualrag.errors import ManualNotFound


@pytest.fixture
def library(ingested_engine: Engine, tmp_path: Path) -> Engine:
    engine = ingested_engine
    m = ManualBuilder()
    m.text_page(
        "Chapter 1 Hydraulic unit",
        [
            "The hydraulic unit HU-40 holds 40 litres of ISO VG 46 oil. Change the oil every 2000 hours.",
            "Fault code E212 means low oil level: top up through the filler cap on the reservoir.",
        ],
    )
    m.vector_figure_page(
        "Chapter 2 Hydraulic circuit",
        "The relief valve is set to 160 bar, see figure 2-4 for the circuit.",
        ["PUMP P1", "RELIEF VALVE 160 BAR", "FILTER F2", "CYLINDER C1", "TAG K 17 B"],
        "Figure 2-4. Hydraulic circuit.",
    )
    other = m.save(tmp_path / "hydraulic-unit.pdf")
    reports = engine.ingest([other])
    assert all(r.status == "ingested" for r in reports), [r.error for r in reports]
    return engine


@both_backends
def test_exact_codes_rank_first(library: Engine) -> None:
    for code, manual, page in (("E212", "hydraulic-unit.pdf", 1), ("F07452", "p200-controller.pdf", 4)):
        top = library.search(f"what does {code} mean", k=5).hits[0]
        assert (top.manual, top.page) == (manual, page), f"{code}: got {top.manual} p.{top.page}"


def test_values_with_units_match(library: Engine) -> None:
    hits = library.search("which fuse is 20 AMP", k=5).hits
    assert any("20 AMP" in h.text for h in hits[:2]), [h.text[:60] for h in hits]


def test_passage_pulls_in_its_figure(library: Engine) -> None:
    hits = library.search("what pressure is the relief valve set to", k=6).hits
    figures = [h for h in hits if h.kind == "figure"]
    assert any(h.figure == "Figure 2-4" for h in figures), f"the passage names figure 2-4: {[(h.kind, h.figure) for h in hits]}"
    fig = next(h for h in figures if h.figure == "Figure 2-4")
    assert Path(fig.image).is_file() and "RELIEF VALVE" in fig.text.upper()


def test_manual_filter(library: Engine) -> None:
    hits = library.search("how often do I change the oil", manuals=["hydraulic-unit.pdf"], k=5).hits
    assert hits and {h.manual for h in hits} == {"hydraulic-unit.pdf"}
    hits = library.search("fuse rating of the contactor coil", manuals=["p200-controller.pdf"], k=5).hits
    assert hits and {h.manual for h in hits} == {"p200-controller.pdf"}
    with pytest.raises(ManualNotFound):
        library.search("fuse", manuals=["nope.pdf"])


def test_kind_filter(library: Engine) -> None:
    hits = library.search("wiring diagram", kinds=["figure"], k=5).hits
    assert hits and all(h.kind == "figure" for h in hits)
    tables = library.search("fuse ratings", kinds=["table"], k=5).hits
    assert tables and all(h.kind == "table" for h in tables)


def test_results_are_diverse(library: Engine) -> None:
    hits = library.search("controller", k=8).hits
    per_page: dict[tuple[str, int, bool], int] = {}
    for h in hits:
        key = (h.manual, h.page, h.kind == "figure")
        per_page[key] = per_page.get(key, 0) + 1
    assert max(per_page.values()) <= library.settings.retrieval.max_per_page


def test_off_topic_question_returns_nothing(library: Engine) -> None:
    result = library.search("recipe for chocolate cake with strawberries", k=5)
    assert result.hits == [], f"an off-topic question should return no results, got {[h.text[:40] for h in result.hits]}"


@both_backends
def test_consistent_after_remove_and_restart(library: Engine, embedder) -> None:  # type: ignore[no-untyped-def]
    assert library.remove("hydraulic-unit.pdf")
    assert all(h.manual != "hydraulic-unit.pdf" for h in library.search("E212 oil level", k=5).hits)
    library.store.library.close()
    restarted = Engine(library.settings)
    restarted.__dict__["embedder"] = embedder
    assert [m.name for m in restarted.manuals()] == ["p200-controller.pdf"]
    top = restarted.search("F07452", k=3).hits[0]
    assert top.page == 4, "the keyword index must survive a restart"


def test_llamaindex_retriever(library: Engine) -> None:
    from llama_index.core.schema import ImageNode

    from rag.llamaindex import ManualragRetriever

    nodes = ManualragRetriever(library, k=6).retrieve("relief valve hydraulic circuit diagram")
    assert nodes and nodes[0].node.metadata["manual"] == "hydraulic-unit.pdf"
    images = [n.node for n in nodes if isinstance(n.node, ImageNode)]
    assert images and Path(images[0].image_path).is_file()


def test_what_no_manual_mentions_is_not_covered(library: Engine) -> None:
    not_covered = library.retriever.not_covered
    # The hydraulic manual names fault E212 and the pump P1; not E219, not a Bosch pump.
    assert not_covered("What does fault code E219 mean?", ["hydraulic-unit.pdf"]) == ["E219"]
    assert not_covered("How often is the Bosch pump serviced?", ["hydraulic-unit.pdf"]) == ["Bosch"]
    assert not_covered("What does fault code E212 mean?", ["hydraulic-unit.pdf"]) == []
    assert not_covered("Is the relief valve set to 160bar?", ["hydraulic-unit.pdf"]) == [], "a value, not a code"
    # A name is covered when any of its words is (the manual says "Hydraulic", not "Hydraulic
    # Station"); a capitalised word opening the question is no name.
    assert not_covered("What oil does the Hydraulic Station take?", ["hydraulic-unit.pdf"]) == []
    assert not_covered("Pressure of the relief valve?", ["hydraulic-unit.pdf"]) == []
    # An acronym or option name in capitals is a name too: the manual grades its oil by ISO,
    # and has no NLGI grade.
    assert not_covered("Which ISO grade of oil does it take?", ["hydraulic-unit.pdf"]) == []
    assert not_covered("Which NLGI grade of grease does it take?", ["hydraulic-unit.pdf"]) == ["NLGI"]
    # A figure no record carries and no text mentions; figure 2-4 is the manual's circuit.
    assert not_covered("What does figure 8-3 show?", ["hydraulic-unit.pdf"]) == ["Figure 8-3"]
    assert not_covered("What does fig. 2-4 show?", ["hydraulic-unit.pdf"]) == []
    # The diagram prints tag K17B by its parts ("K 17 B"): it is there; K17C is not.
    assert not_covered("What is tag K17B?", ["hydraulic-unit.pdf"]) == []
    assert not_covered("What is tag K17C?", ["hydraulic-unit.pdf"]) == ["K17C"]


def test_a_page_no_manual_has_is_not_covered(library: Engine) -> None:
    not_covered = library.retriever.not_covered
    pages = library.store.manual("hydraulic-unit.pdf").pages
    assert not_covered("What is on page 2?", ["hydraulic-unit.pdf"]) == []
    assert not_covered("What is on page 40?", ["hydraulic-unit.pdf"]) == [f"page 40 (hydraulic-unit.pdf has {pages} pages)"]
    assert not_covered("What is on pages 2-5?", ["hydraulic-unit.pdf"]) == [], "page 2 is there"
    # The whole library: some manual has a page 4.
    assert library.store.manual("p200-controller.pdf").pages >= 4
    assert not_covered("What is on page 4?") == []
