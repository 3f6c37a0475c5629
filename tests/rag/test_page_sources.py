"""Sources are pages: hits of one page are one source that reads the whole page's lines."""

from __future__ import annotations

from manualrag.types import Hit, Record
from rag.catalog import catalog_fact, wants_count
from rag.citations import cite_next_page, extract_citations
from rag.evidence import select, split_units
from rag.prompts import build_prompt, estimate_tokens, page_groups

PAGE = """Pressure relief

The relief valve opens when the line pressure rises too far.

The setting is printed on the valve body. It is 160 bar on the standard unit.

| Unit | Setting |
| --- | --- |
| HU-40 | 160 bar |
| HU-60 | 210 bar |

Figure 2-4 labels:
PUMP P1
RELIEF VALVE RV2"""


def _hit(n: int, page: int, text: str, kind: str = "text") -> Hit:
    return Hit(id=f"h{n}", manual="hu.pdf", page=page, kind=kind, text=text, score=1.0 / n)  # type: ignore[arg-type]


def test_a_page_splits_into_sentences_rows_and_labels() -> None:
    split = split_units(PAGE, "page", estimate_tokens, 120, anchors=["The relief valve opens when the line pressure rises too far."])
    texts = [u.text for u in split.units]
    assert "HU-60: Setting: 210 bar" in texts, texts
    assert any("RELIEF VALVE RV2" in t for t in texts)
    anchored = {u.text for u in split.units if u.anchored}
    assert "The relief valve opens when the line pressure rises too far." in anchored
    assert not any("210 bar" in t or "printed on the valve" in t for t in anchored), anchored


def test_the_value_beside_the_retrieved_sentence_is_shown() -> None:
    # Retrieval found the sentence that names the topic; the value is two sentences on.
    split = split_units(PAGE, "page", estimate_tokens, 120, anchors=["The relief valve opens when the line pressure rises too far."])
    (shown,) = select("What is the relief valve setting of the HU-60?", [split], budget=80)
    assert shown is not None and "210 bar" in shown, shown


# Prose that repeats the question's words, then a table whose matching row says only "12".
WIRE_PAGE = """Allowable currents for single conductors in still air at room temperature are listed
in table 4-2. Hotter surroundings lower what single conductors may carry in still air.

Table 4-2.—Currents (Amperes) of Single Conductors in Still Air
| Gauge | Enamel | Glass Braid |
| --- | --- | --- |
| 8 | 41 | 60 |
| 12 | 19 | 33 |
| 16 | 9 | 17 |"""


def test_a_table_row_on_a_page_counts_its_title_and_columns() -> None:
    split = split_units(WIRE_PAGE, "page", estimate_tokens, 120)
    (shown,) = select("How many amperes can a gauge 12 glass braid conductor carry in still air?", [split], budget=40)
    assert shown is not None and "Glass Braid: 33" in shown, f"the row for gauge 12 outranks the prose: {shown}"


def test_hits_of_one_page_are_one_source() -> None:
    hits = [_hit(1, 7, "The relief valve opens when the line pressure rises too far."),
            _hit(2, 9, "Change the oil every 2000 hours."),
            _hit(3, 7, "| HU-40 | 160 bar |", "table")]
    pages = {("hu.pdf", 7): PAGE, ("hu.pdf", 9): "Maintenance\n\nChange the oil every 2000 hours."}
    groups = page_groups(hits, pages)
    assert [[h.id for h in g] for g in groups] == [["h1", "h3"], ["h2"]]
    prompt = build_prompt("relief valve setting of the HU-60", hits, context_tokens=4096, max_tokens=400,
                          prompt_tokens=400, pages=pages)
    assert [h.id for h in prompt.sources] == ["h1"], "the oil page shares nothing with the question"
    assert "210 bar" in prompt.messages[1]["content"]
    assert prompt.evidence and "210 bar" in prompt.evidence[0], "the checks see what the model read"


def _record(n: int, page: int, kind: str, caption: str = "") -> Record:
    return Record(id=f"r{n}", manual="hu.pdf", page=page, kind=kind, text="x", caption=caption)  # type: ignore[arg-type]


def test_catalog_fact_counts_figures_of_named_pages() -> None:
    assert wants_count("How many photos are on pages 3 and 4?", pages_named=True)
    assert wants_count("How many figures does the manual have?", pages_named=False)
    assert not wants_count("How many bar is the relief valve set to?", pages_named=False)
    records = [_record(1, 3, "figure", "Figure 1. Pump"), _record(2, 3, "figure"), _record(3, 4, "figure"),
               _record(4, 4, "table"), _record(5, 5, "figure")]
    fact = catalog_fact("hu.pdf", records, [3, 4])
    assert fact is not None and fact.page == 3
    assert "3 figures" in fact.text and "1 table" in fact.text, fact.text
    assert "page 3: 2 figures; page 4: 1 figure" in fact.text, fact.text


def test_a_line_repeated_at_the_start_of_a_longer_one_is_shown_once() -> None:
    # The page ends on the opener of a procedure; the passage retrieval found runs on into
    # the next page and brings the opener again, joined to the first step.
    page = "Bleeding the pump\n\nAir in the pump makes it noisy.\n\nTo bleed the pump:"
    passage = "Air in the pump makes it noisy. To bleed the pump: 1. Open the bleed screw half a turn."
    hit = Hit(id="p1", manual="hu.pdf", page=7, kind="text", text=passage, score=1.0)
    prompt = build_prompt("How do I bleed the pump?", [hit], context_tokens=4096, max_tokens=400,
                          prompt_tokens=400, pages={("hu.pdf", 7): page})
    body = prompt.evidence[0]
    assert "1. Open the bleed screw" in body, body
    assert body.count("To bleed the pump:") == 1, body


FITTINGS_PAGE = (
    "Pipe fittings\n\n"
    "Pipe fittings join lengths of pipe and change the direction of a run. Several basic fitting "
    "shapes are shown in figure 5-2. A union lets a pipe run be taken apart without turning the "
    "pipe. A reducer joins pipes of two sizes. Fittings are made of brass, steel and plastic. "
    "Other fitting types, such as flanges and couplings, are covered later in this chapter. "
    "Every fitting must match the pressure rating of the pipe it joins.\n\n"
    "Figure 5-2 labels:\nELBOW\nTEE | CROSS\nUNION\nREDUCER\nNIPPLE"
)


def test_the_labels_of_the_retrieved_figure_are_shown_whole_once() -> None:
    # The labels that answer share no word with the question, and the page's sentences
    # do: the figure the page was retrieved for still shows its labels, once.
    figure = Hit(id="f1", manual="hu.pdf", page=12, kind="figure", score=1.0, figure="Figure 5-2",
                 caption="Figure 5-2.—Basic pipe fittings.",
                 text="Figure 5-2.—Basic pipe fittings.\nLabels: ELBOW\nTEE | CROSS\nUNION\nREDUCER\nNIPPLE")
    prompt = build_prompt("Which basic fitting shapes does figure 5-2 show?",
                          [figure], context_tokens=4096, max_tokens=400, prompt_tokens=120,
                          pages={("hu.pdf", 12): FITTINGS_PAGE})
    body = prompt.evidence[0]
    assert "ELBOW\nTEE | CROSS\nUNION\nREDUCER\nNIPPLE" in body, body
    assert body.count("UNION") == 1 and "Labels read from the diagram" not in body, body


def test_a_sentence_taken_from_where_a_passage_ran_on_cites_the_next_page() -> None:
    # Page 7 ends on a procedure's opener; the retrieved passage runs on to page 8 with
    # its steps. Both pages' lines come under one key, [1], which is page 7.
    page = "Bleeding the pump\n\nAir in the pump makes it noisy and weak.\n\nTo bleed the pump:"
    passage = ("Air in the pump makes it noisy and weak. To bleed the pump: 1. Open the bleed screw half "
               "a turn. 2. Run the pump for ten seconds. 3. Close the screw when clear oil flows.")
    hit = Hit(id="p1", manual="hu.pdf", page=7, kind="text", text=passage, score=1.0)
    question = "How do I bleed the pump?"
    overleaf = ("1. Open the bleed screw half a turn. 2. Run the pump for ten seconds. 3. Close the screw "
                "when clear oil flows.\n\nFilters\n\nChange the filter every 500 hours.")
    prompt = build_prompt(question, [hit], context_tokens=4096, max_tokens=400, prompt_tokens=400,
                          pages={("hu.pdf", 7): page, ("hu.pdf", 8): overleaf})
    assert "Run the pump for ten seconds." in prompt.evidence[0], "the passage's rest is shown under [1]"
    assert prompt.next_page == [overleaf]
    _, cited = extract_citations("[1]", prompt.sources)
    steps = "Open the bleed screw half a turn, run the pump for ten seconds, then close it when clear oil flows [1]."
    (moved,) = cite_next_page(steps, cited, prompt.page_texts, prompt.next_page, question)
    assert moved.page == 8, "the steps are printed on page 8"
    (kept,) = cite_next_page("Air makes the pump noisy and weak [1].", cited, prompt.page_texts, prompt.next_page,
                             question)
    assert kept.page == 7, "what page 7 says stays cited to page 7"


def test_a_figure_heading_with_no_labels_under_it_is_read_as_a_line() -> None:
    figure = Hit(id="f2", manual="hu.pdf", page=12, kind="figure", score=1.0, figure="Figure 5-2",
                 caption="Figure 5-2.—Basic pipe fittings.", text="Figure 5-2.—Basic pipe fittings.")
    page = "Pipe fittings join lengths of pipe.\n\nFigure 5-2 labels:"
    prompt = build_prompt("Which pipe fittings are shown?", [figure], context_tokens=4096, max_tokens=400,
                          prompt_tokens=200, pages={("hu.pdf", 12): page})
    assert "Pipe fittings join lengths of pipe." in prompt.evidence[0], prompt.evidence
