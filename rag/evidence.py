"""Evidence: the sentences, table rows and diagram labels of each source that bear on the question.

The embedded model reads about 50 prompt tokens a second on 2 cores, and a 1.5B model
answers better from a few relevant lines than from eight whole chunks: it copies the
wrong row of a long table, or the header of a source instead of its content. So each
source is cut down to its units (sentences of text, rows of a table as "row: column:
value" records, lines of labels read from a diagram, or a short label list whole) that
share the question's rarer words, kept in their order, with a table's title and a
figure's heading shown with them. Sources none of whose lines earn a place are left
out. This is extractive: every word shown is the manual's own, so citations and the
check for unsupported values keep working on what the model actually read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest.labels import parse_caption
from ingest.textcheck import ITEM_MARK, LIST_ITEM
from rag.grounding import (
    HOW_MANY, ITEM_NUMBER, STOP, quoted_signs, sign_terms, stem, states_value, terms, tokens, unit_spellings, units_asked,
)

GAP = " […] "

_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=[\"'(\[]?[A-Z0-9])")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}")
# A paragraph that is only a notice's heading: the paragraph after it is the notice.
_NOTICE = re.compile(r"(?:WARNING|CAUTION|DANGER|NOTE|IMPORTANT|NOTICE)[:!.]?", re.IGNORECASE)
# A list item's mark where a line may run items together ("1. Pump 2. Valve", "• Pump • Valve").
_ITEM_MARKS = re.compile(rf"(?:^|\s){ITEM_MARK}(?=\s)")
# A numbered question: an exercise ("Q46.", "2-48.", "12."), not an FAQ's ("Q:"). Its number
# may be a unit of its own ("2-48." on the line above).
_EXERCISE_NUMBER = r"(?:Q\d{1,3}|\d{1,3}(?:-\d{1,3})?)[.)]"
_EXERCISE = re.compile(rf"{_EXERCISE_NUMBER}\s")
_EXERCISE_MARK = re.compile(_EXERCISE_NUMBER)
_STEP_NUMBER = re.compile(r"(?:\d{1,2}|[a-zA-Z]|Q\d{1,3})[.)]")  # "1.", "b)", an exercise's "Q11."
# A contents line's dot leader ("Level 0 . . . . . . 43"): a token a dot, it cost a
# table of contents line forty tokens of the budget for the two words and the page it says.
_LEADER = re.compile(r"[ \t]*(?:[.·…][ \t]?){4,}")
# A numbered item's own number, and a number closing it that is the next item's ("1. Little
# Rock AR01 2.": split at full stops, a run of items leaves each number on the item before).
_OPENING_NUMBER = re.compile(r"(\d{1,2})[.)]\s")
_CLOSING_NUMBER = re.compile(r"\s(\d{1,2})[.)]$")
# A diagram's labels up to this many tokens are one unit: OCR splits a callout over lines
# ("APPLY GRAPHITE / GREASE TO THREADS / BEFORE ASSEMBLY"), and a line alone is
# half a phrase. Longer label lists (a wiring diagram, a symbol chart) go line by line.
WHOLE_FIGURE_TOKENS = 60
# A page's table whose rows come to this many tokens or fewer is shown whole with its title
# when no row shares a word with the question: the row that answers may not ("#20 - #16"
# for an 18-gauge wire). A row that does is shown alone, as in a long table: the model
# reads a value from the wrong row of a whole table.
WHOLE_TABLE_TOKENS = 60
# A list item of up to this many tokens is one unit: a parameter's or a part's entry says
# what it is in one sentence and gives its value in the next ("• max_boxes: Maximum number
# of boxes. The default setting is 200."), and either sentence alone answers nothing.
WHOLE_ITEM_TOKENS = 40
# A list of up to this many tokens is shown whole for a "how many" question once one of its
# items is shown: its items share few words with the question (the steps of "how many steps
# to descale?" name the drip tray and the button), and a count needs every item.
WHOLE_LIST_TOKENS = 200
# A list's lead-in ("You should forward the following ports for Coturn:") says nothing
# without its items, which share no word with the question ("• UDP 3478", "• TCP 5349"): a
# lead-in shown brings items of up to this many tokens in all.
LEAD_IN_ITEMS_TOKENS = 60
# A lead-in ends in a colon, or its first item follows the colon in the same unit.
_LEAD_IN = re.compile(rf":\s*(?:(?:{ITEM_MARK}|-)\s.*)?$")
# The line after a list shown whole comes with it when it is this short or shorter.
END_LINE_TOKENS = 40
# A table printed without rules: its caption, then one short line per row ("#20 - #16 65
# Watts") of at most this many words. find_tables sees no grid in it, and its rows share
# few words with a question.
PLAIN_ROW_WORDS = 10
# A line of a retrieved page outside the passages retrieval ranked counts this much of its
# word match: retrieval's ranking carries meaning the word overlap alone misses.
OFF_ANCHOR = 0.75
# A source whose best unit scores below this share of the best source's best unit is
# left out of the prompt: it cost prompt tokens and drew citations to wrong pages.
WEAK_SOURCE = 0.2
# The unit closest in meaning to the question earns this share of the best word score
# (``_add_meaning``).
MEANING = 0.5
# A table row with this many values or more shows only the columns a question names, if any.
WIDE_ROW = 6
# A line holding a value of the kind a question asks for ("how long": a time; "at what
# temperature": degrees) scores this many times its match: the sentence that gives the value
# often shares fewer words with the question than the one that names the topic.
VALUE_ASKED = 2.0


@dataclass(slots=True)
class Unit:
    text: str
    tokens: int
    terms: set[str]
    fixed: bool = False  # always shown: a table's title and header, a figure's caption
    score: float = 0.0
    keep: bool = False
    # Part of a passage retrieval ranked (by meaning and words), not only of its page: such
    # lines are preferred to the page's other lines that match the question as well.
    anchored: bool = True
    # A table row's title and column names: a row that matches the question scores for them
    # too, in a table source or a table on a page.
    context: set[str] = field(default_factory=set)
    # A page's table title: its table's rows. A title shown without a row states no value,
    # so it brings its best matching row with it (``select``).
    rows: list[Unit] = field(default_factory=list)
    row: bool = False  # a table's row: the rows beside it are other things, not its context
    # A row's key and (column name, value) pairs, to show only the columns a question names.
    key: str = ""
    columns: list[tuple[str, str]] = field(default_factory=list)
    # The list shown whole with this unit: for a count question, the list it is part of (its
    # lead-in and every item); for any other, the short list a lead-in opens.
    members: list[Unit] = field(default_factory=list)
    # A line shown whenever this one is: the question just before it that it answers (an
    # FAQ's), the heading of the figure labels it is one of ("Figure 3-3 labels:").
    lead: Unit | None = None
    # A question printed in the manual, or an exercise's choice: it states nothing.
    silent: bool = False


@dataclass(slots=True)
class SourceText:
    """A source's body split into units, and how they join back."""

    units: list[Unit]
    joiner: str  # " " for prose, "\n" for table rows and label lines
    kind: str = "text"
    about: set[str] = field(default_factory=set)  # terms of its title, caption, column names


def split_units(
    body: str,
    kind: str,
    estimate: Callable[[str], int],
    max_tokens: int = 120,
    about: str = "",
    anchors: Sequence[str] = (),
    figure_labels: str = "",
) -> SourceText:
    """Units of one source body; `estimate` maps text to tokens, longer units are cut.
    `about` is what the prompt shows of the source besides its body (its title line).
    A whole page (`kind` "page") is cut paragraph by paragraph into sentences, table rows
    and label lines; its units outside every retrieved passage of that page (`anchors`)
    are marked so ``select`` prefers the retrieved ones. The labels under the heading
    `figure_labels` ("Figure 2-11 labels:", manualrag.types.labels_heading), those of the
    figure the page was retrieved for, are shown with the page when they are short."""
    if kind == "page":
        return _split_page(body, estimate, max_tokens, about, anchors, figure_labels)
    units: list[Unit] = []

    def add(
        text: str, fixed: bool = False, own_terms: str | None = None, context: set[str] | None = None, row: bool = False
    ) -> None:
        text = _LEADER.sub(" … ", text).strip()
        if not text:
            return
        if estimate(text) > max_tokens:  # a run-on "sentence" (OCR without full stops)
            words = text.split()
            while len(words) > 8 and estimate(" ".join(words)) > max_tokens:
                words = words[: len(words) * 3 // 4]
            text = " ".join(words) + " […]"
        units.append(
            Unit(text, estimate(text) + 1, terms(text if own_terms is None else own_terms), fixed,
                 context=context or set(), row=row)
        )

    if kind == "table":
        title, names, rows = _table_parts(body)
        for line in title:
            add(line, fixed=True)
        heading = terms(" ".join([about, *title, *names]))
        for cells in rows:
            add(_record(names, cells), own_terms=" ".join(cells), context=heading, row=True)  # its words, not its header's
            if units and units[-1].row:
                units[-1].key, units[-1].columns = _record_parts(names, cells)
        return SourceText(units, "\n", "table", terms(" ".join([about, *names])))
    if kind == "figure":
        head, *labels = body.splitlines() or [""]
        add(head, fixed=True)  # "Labels read from the diagram:"
        if estimate("\n".join(labels)) <= WHOLE_FIGURE_TOKENS:
            add("\n".join(labels))
        else:
            for line in labels:
                add(line)
        return SourceText(units, "\n", "figure", terms(about))
    # "1." opens the step that follows, and "To bleed the pump:"
    # means nothing without it: both go with the next sentence, across line breaks too.
    pending = ""
    notice = ""
    for paragraph in body.splitlines():
        if _NOTICE.fullmatch(paragraph.strip()):
            notice = paragraph.strip()
            continue
        if notice:
            # A safety notice is one thought: its hazard sentence often shares no word with
            # the question, and half a warning misleads. Shown whole when it is short.
            heading, notice = notice, ""
            whole = f"{heading} {' '.join(paragraph.split())}"
            if estimate(whole) <= max_tokens:
                add(pending + whole)
                pending = ""
                continue
            add(heading)
        items = len(_ITEM_MARKS.findall(paragraph))  # "1. Inlet valve V01 2. Outlet valve V02": two
        if LIST_ITEM.match(paragraph) and items <= 1 and estimate(pending + paragraph) <= WHOLE_ITEM_TOKENS:
            add(pending + " ".join(paragraph.split()))  # one item, not items run together
            pending = ""
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            sentence = sentence.strip()
            if _STEP_NUMBER.fullmatch(sentence) or (sentence.endswith(":") and len(pending) < 200):
                pending += sentence + " "
                continue
            text, pending = _next_items_number(pending + sentence)
            add(text)
    add(pending + notice)  # a notice heading that ends the text is kept as it is
    return SourceText(units, " ", "text", terms(about))


def _next_items_number(text: str) -> tuple[str, str]:
    """`text` without the next item's number at its end, and that number ("" if none)."""
    opening, closing = _OPENING_NUMBER.match(text), _CLOSING_NUMBER.search(text)
    if opening and closing and int(closing.group(1)) == int(opening.group(1)) + 1:
        before = tokens(text[: closing.start()])
        if before and before[-1] not in STOP:  # "1. Set the dial to 2." states a value
            return text[: closing.start()], closing.group(0).strip() + " "
    return text, ""


def _split_page(
    body: str, estimate: Callable[[str], int], max_tokens: int, about: str, anchors: Sequence[str], figure_labels: str
) -> SourceText:
    anchor_terms = [terms(a) for a in anchors]
    units: list[Unit] = []
    notice = ""
    caption: Unit | None = None  # a plain table's caption, while its rows follow
    for paragraph in re.split(r"\n\s*\n", body):
        lines = [ln for ln in paragraph.splitlines() if ln.strip()]
        if not lines:
            continue
        flat = [" ".join(ln.split()) for ln in lines]
        if caption and all(_plain_row(ln) for ln in flat):
            units.extend(_plain_rows(caption, flat, estimate))
            continue
        caption = None
        if _table_caption(flat[0]) and estimate(flat[0]) <= max_tokens and all(map(_plain_row, flat[1:])):
            caption = Unit(flat[0], estimate(flat[0]) + 1, terms(flat[0]))
            units.extend([caption, *_plain_rows(caption, flat[1:], estimate)])
            continue
        if _NOTICE.fullmatch(paragraph.strip()):
            notice = paragraph.strip()
            continue
        heading, notice = notice, ""
        if sum(ln.lstrip().startswith("|") for ln in lines) >= max(2, len(lines) // 2):
            part = split_units(paragraph, "table", estimate, max_tokens)
            rows = [u for u in part.units if not u.fixed]
            for unit in part.units:
                if unit.fixed:
                    unit.rows = rows
                unit.fixed = False  # a page's table title competes like any line
        elif lines[0].rstrip().lower().endswith("labels:"):
            part = split_units("\n".join(lines), "figure", estimate, max_tokens)
            part.units[0].text = lines[0].strip()
            part.units[0].fixed = False
            for label in part.units[1:]:  # labels without their heading read as the page's text
                label.lead = part.units[0]
            # The retrieved figure's short label list is what the diagram says: shown with
            # the page. Its lines share few words with a question ("FLAG", "RIGHT ANGLE"
            # for "what other lug shapes?") and lose to any sentence of the page that does.
            ours = bool(figure_labels) and lines[0].strip().lower() == figure_labels.lower()
            if ours and len(part.units) == 2 and estimate("\n".join(lines[1:])) <= WHOLE_FIGURE_TOKENS:
                part.units[1].fixed = True
        else:  # a notice's heading goes with its text (see split_units)
            part = split_units(f"{heading}\n{paragraph}" if heading else paragraph, "text", estimate, max_tokens)
            heading = ""
        if heading:
            units.extend(split_units(heading, "text", estimate, max_tokens).units)
        units.extend(part.units)
    if notice:  # a notice heading the page ends on
        units.extend(split_units(notice, "text", estimate, max_tokens).units)
    # A passage that runs on repeats the page's lines before its rest, and a line the page
    # ends on ("Here are the steps:") comes again with the step the next page begins with:
    # a unit that another unit begins with says nothing new.
    # (So does a line of a table's caption: a plain table's column line is in it.)
    keys = [" ".join(unit.text.lower().split()) for unit in units]
    unique = []
    seen: set[str] = set()
    for unit, key in zip(units, keys):
        repeated = key in seen or any(key != other and other.startswith(key) for other in keys)
        if not repeated:
            unique.append(unit)
        seen.add(key)
        if unit.rows:
            seen.update(" ".join(line.lower().split()) for line in unit.text.splitlines())
    for unit in unique:
        unit.anchored = not anchors or any(unit.terms <= a for a in anchor_terms)
    return SourceText(unique, "\n", "page", terms(about))


def _table_caption(line: str) -> bool:
    """A table's caption ("Table 2-3.—Iron Size"), read as ingest reads captions (ingest/labels.py)."""
    caption = parse_caption(line)
    return caption is not None and caption[0].startswith("Table")


def _plain_row(line: str) -> bool:
    """A short line that is no sentence, step or markdown row: a row of a plain table."""
    return (len(line.split()) <= PLAIN_ROW_WORDS and not line.endswith((".", "?", "!", ":"))
            and not line.startswith("|") and not _STEP_NUMBER.match(line.split()[0])
            and not _table_caption(line))


def _plain_rows(caption: Unit, lines: Sequence[str], estimate: Callable[[str], int]) -> list[Unit]:
    """`lines` as rows of `caption`'s plain table; a first line without a digit names its
    columns and joins the caption."""
    rows = []
    for line in lines:
        if not caption.rows and not rows and "\n" not in caption.text and not any(c.isdigit() for c in line):
            caption.text += "\n" + line
            caption.tokens, caption.terms = estimate(caption.text) + 1, terms(caption.text)
            continue
        rows.append(Unit(line, estimate(line) + 1, terms(line), row=True))
    caption.rows.extend(rows)
    return rows


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table_parts(body: str) -> tuple[list[str], list[str], list[list[str]]]:
    """A markdown table (rag chunks: title lines, header row, |---| rule, rows) as its title
    lines, one name per column and the data rows' cells.

    A second header row (first cell empty, no values: "| | Centimeter cube | Circular-mil-foot |")
    extends the column names, and an empty name inherits its left neighbour's (a spanning
    cell). A header holding values is a data row (key/value tables have no real header).
    """
    lines = [line for line in body.splitlines() if line.strip()]
    rule = next((i for i, line in enumerate(lines) if _TABLE_RULE.match(line.strip())), -1)
    title: list[str] = []
    header: list[list[str]] = []
    rows: list[list[str]] = []
    for i, line in enumerate(lines):
        if i == rule:
            continue
        if not line.lstrip().startswith("|"):
            title.append(line)
            continue
        cells = _cells(line)
        subheader = bool(header) and not rows and not cells[0] and not _has_value(cells)
        (header if i < rule or subheader else rows).append(cells)
    if header and _has_value(header[0]):
        rows, header = [*header, *rows], []
    width = max((len(r) for r in header + rows), default=0)
    names = [""] * width
    for cells in header:
        last = ""
        for j in range(width):
            cell = cells[j] if j < len(cells) else ""
            part = cell or (last if j else "")
            last = cell or last
            if part and part not in names[j]:
                names[j] = f"{names[j]} {part}".strip()
    return title, names, rows


def _has_value(cells: Sequence[str]) -> bool:
    """A row with a value in it ("115 VAC, ..."), not a header ("Resistance at 20°C")."""
    return any(cell[:1].isdigit() for cell in cells[1:])


def _record_parts(names: Sequence[str], cells: Sequence[str]) -> tuple[str, list[tuple[str, str]]]:
    """A row's key and its (column name, value) pairs, empty cells left out."""
    # "Size 4", but "Brass", not "Material Brass"
    key = f"{names[0]} {cells[0]}" if names and names[0] and cells[0][:1].isdigit() else cells[0]
    pairs = [(names[j] if j < len(names) else "", cell) for j, cell in enumerate(cells[1:], start=1) if cell]
    return key, pairs


def _narrow(unit: Unit, wanted: set[str]) -> None:
    """A wide row (a spec table with a column per model) cut to the columns the question
    names: "Fuel tank (gal.): XLE Hybrid: 13.2" for "...on the XLE Hybrid?", not thirteen
    values the model must count along. A column counts as named when every word of its
    name is in the question; of those, the ones naming the most words ("XLE Hybrid" over
    "XLE"). Still the manual's own words, in the same row shape."""
    if len(unit.columns) < WIDE_ROW:
        return
    named = [(len(t), i) for i, (name, _) in enumerate(unit.columns) if (t := terms(name)) and t <= wanted]
    if not named or len(named) == len(unit.columns):
        return
    most = max(n for n, _ in named)
    keep = {i for n, i in named if n == most}
    text = f"{unit.key}: " + "; ".join(f"{n}: {v}" if n else v for i, (n, v) in enumerate(unit.columns) if i in keep)
    unit.tokens = max(1, math.ceil(unit.tokens * len(text) / max(len(unit.text), 1)))
    unit.text = text


def _record(names: Sequence[str], cells: Sequence[str]) -> str:
    """One table row as "Size 4: Copper: 25; Silver-plated: 32; ...": a small model reads
    a value beside its column's name far better than counting "|" along a markdown row
    (it gave a value two columns to the right of the one asked for). The draft check knows a
    row by this shape (``rag.grounding.TABLE_ROW``), to give it its table title's unit."""
    if not cells:
        return ""
    key, pairs = _record_parts(names, cells)
    values = [f"{name}: {cell}" if name else cell for name, cell in pairs]
    return f"{key}: " + "; ".join(values) if values else key


Meaning = Callable[[Sequence[str]], Sequence[float]]  # each text's cosine to the question


def select(
    question: str,
    sources: Sequence[SourceText],
    budget: int,
    keep: Sequence[bool] = (),
    meaning: Meaning | None = None,
) -> list[str | None]:
    """Each source's units that best match `question`, within `budget` tokens in all;
    None for a source left out: it hardly matches (`WEAK_SOURCE`), repeats an earlier
    one, or none of its lines earned a place in the budget.

    The first source (the best retrieval hit) is always shown, with its best unit, and
    so is any that `keep` marks (a figure a vision model will see as an image). A source
    shown shows its fixed units (a table's title, a figure's heading). A line is shown
    once: a heading printed atop every page of a list would otherwise take, page after
    page, the budget that the one line holding the code asked about needs.
    A word's weight is its inverse frequency among all the units, so "brass" counts
    and "pressure", in every line of a chapter on pressure, barely does. With `meaning`
    (the embedder's cosine of a unit to the question), a unit also scores for what it means
    (``_add_meaning``): the line that answers often shares no rare word with the question.
    """
    wanted = terms(question) | {stem(s) for s in unit_spellings(question)}
    units = [u for s in sources for u in s.units]
    signs = quoted_signs(question)
    if signs:  # "the 'A' in that code": the lines that show the letter itself
        wanted |= {f"'{sign}'" for sign in signs}
        for unit in units:
            unit.terms = unit.terms | sign_terms(unit.text, signs)
    for unit in units:
        if unit.row:
            _narrow(unit, wanted)
    df: dict[str, int] = {}
    headings = list({id(u.context): u.context for u in units if u.context}.values())  # each table's once
    for term_set in [*(u.terms for u in units), *(s.about for s in sources), *headings]:
        for term in term_set & wanted:
            df[term] = df.get(term, 0) + 1
    total = max(len(units) + len(sources) + len(headings), 1)

    def score(found: set[str]) -> float:
        # fsum: a set's order changes with the process's hash seed, and a plain sum's last
        # bit with it; two lines scoring the "same" then swapped places from run to run.
        return math.fsum(math.log(1 + total / df[t]) for t in found & wanted)

    for source in sources:
        for unit in source.units:
            unit.score = score(unit.terms)
            unit.keep = False
            # A matching row means its title and columns too ("Brass" in "Thread
            # Torques"): without them a one-word row loses to any sentence.
            if unit.context and unit.score > 0:
                unit.score = score(unit.terms | unit.context)
    if meaning is not None:
        _add_meaning(sources, meaning)
    for source in sources:
        for unit in source.units:
            if not unit.anchored:
                unit.score *= OFF_ANCHOR
    asked = units_asked(question, loose=True)
    if asked is not None:
        for source in sources:
            for unit in source.units:
                if unit.score > 0 and not unit.fixed and states_value(unit.text, asked):
                    unit.score *= VALUE_ASKED
    _questions_to_answers(sources)

    counting = HOW_MANY.search(question) is not None
    for source in sources:
        for run in _lists(source):
            if counting:
                for unit in run:
                    unit.members = run
            elif _LEAD_IN.search(run[0].text) and sum(u.tokens for u in run[1:]) <= LEAD_IN_ITEMS_TOKENS:
                run[0].members = run

    forced = [*keep, *[False] * len(sources)]
    kept = _worth_showing(sources, score, forced)
    chosen = [s for s, k in zip(sources, kept) if k]
    # A source kept for its title alone ("| Fuse | Rating |" for "which fuse?") may still
    # fill what budget is left, after every line that matches. Not with a page's table rows
    # that match nothing: each is another size or model than the one asked about.
    # Nor with a question printed in the manual or an exercise's choice: they state nothing
    # (``_questions_to_answers``).
    for source in chosen:
        for unit in source.units:
            if not (unit.row and source.kind == "page" or unit.silent):
                unit.score = unit.score or 1e-6
    must_show = [j == 0 or f for j, f in enumerate(f for f, k in zip(forced, kept) if k)]
    fixed_cost = [sum(u.tokens for u in s.units if u.fixed) for s in chosen]
    owner = {id(u): i for i, s in enumerate(chosen) for u in s.units}
    opened: set[int] = set()
    said: set[str] = set()  # lines shown, as words: a line repeated on another page says nothing new
    used = 0

    def open_source(i: int) -> None:
        """A source's title rows and caption come with its first line."""
        nonlocal used
        opened.add(i)
        for u in chosen[i].units:
            u.keep = u.keep or u.fixed
        used += fixed_cost[i]

    def take(unit: Unit, force: bool = False) -> None:
        nonlocal used
        i = owner[id(unit)]
        cost = unit.tokens + (0 if i in opened else fixed_cost[i])
        if unit.keep or not force and (used + cost > budget or _words(unit.text) in said):
            return
        said.add(_words(unit.text))
        if i not in opened:
            open_source(i)
        unit.keep, used = True, used + unit.tokens
        if unit.lead is not None and id(unit.lead) in owner:  # (a heading repeated on the page is dropped)
            take(unit.lead, force)
        unshown = [m for m in unit.members if not m.keep]
        if unshown and sum(m.tokens for m in unshown) <= budget - used:
            for member in unshown:  # a count needs every item, and a lead-in says nothing without them
                take(member, force=True)
            # With the line after it the list is seen to end: a "[…]" there would say that
            # items may be missing, to the model and to the count check (rag/grounding.py).
            units = chosen[i].units
            after = next(k for k, u in enumerate(units) if u is unit.members[-1]) + 1  # by identity
            if (counting and after < len(units) and not units[after].fixed
                    and units[after].tokens <= min(END_LINE_TOKENS, budget - used)):
                take(units[after], force=True)
        matching = [r for r in unit.rows if r.terms & wanted]
        if matching:
            take(max(matching, key=lambda r: r.score))
        elif sum(r.tokens for r in unit.rows) <= WHOLE_TABLE_TOKENS:
            for row in unit.rows:  # no row names what is asked: a small table is read whole
                take(row)

    # The best retrieval hit always shows its best line; a forced source its fixed lines.
    first_free = [u for u in chosen[0].units if not u.fixed] if chosen else []
    first_free = [u for u in first_free if not u.silent] or first_free
    if first_free:
        take(max(first_free, key=lambda u: (u.score, -u.tokens)), force=True)
    for i in range(len(chosen)):
        if must_show[i] and i not in opened:
            open_source(i)
    # Then, best score per token first (a short matching line beats a long one matching
    # the same): lines matching at least half as well as the best line anywhere ("The
    # letter P marks the pump circuit", two sentences after its source's best); then the
    # sentence after each kept one, since manuals state the topic in one sentence and the
    # value or the reason in the next ("Some gaskets are made for special
    # duty. These gaskets are graphite-filled..."); then any matching line. A source
    # none of whose lines fits is left out: a weak source's best line no longer crowds out
    # a strong source's second.
    units = [u for s in chosen for u in s.units if not u.fixed]
    rest = sorted((u for u in units if u.score > 0), key=lambda u: -u.score / math.sqrt(u.tokens))
    strong = max((u.score for u in units), default=0.0) / 2
    for unit in rest:  # a count question's list that matches goes first: its items are the count
        if unit.members and unit.score >= strong:
            take(unit)
    for unit in rest:
        if unit.score >= strong:
            take(unit)
    for unit in _neighbours(chosen):
        take(unit)
    for unit in rest:
        take(unit)
    for unit in _neighbours(chosen):
        take(unit)
    shown = iter([_join(s) if i in opened else None for i, s in enumerate(chosen)])
    return [next(shown) if k else None for k in kept]


def by_meaning(embedder, question: str, vector=None) -> Meaning:  # type: ignore[no-untyped-def]
    """Cosines of texts to `question` by `embedder` (rag/embedders.py), each text embedded
    once; `vector`: the question's embedding when retrieval already made it."""
    query = embedder.embed_queries([question])[0] if vector is None else vector
    seen: dict[str, float] = {}

    def cosines(texts: Sequence[str]) -> list[float]:
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        if new:
            seen.update(zip(new, (float(c) for c in embedder.embed_texts(new) @ query)))
        return [seen[t] for t in texts]

    return cosines


def _add_meaning(sources: Sequence[SourceText], meaning: Meaning) -> None:
    """Add each unit's closeness in meaning to its word score, on the word scores' scale.

    Cosines of a small embedder crowd together (most lines of a manual sit at 0.1-0.3 to
    any question), so a unit's cosine counts by how far it stands above the median unit,
    as a share of the best unit's lead: the closest line in meaning earns MEANING times
    the best word score, a typical line nothing."""
    units = [u for s in sources for u in s.units if not u.fixed]
    if len(units) < 2:
        return
    cosines = [float(c) for c in meaning([u.text for u in units])]
    median = sorted(cosines)[len(cosines) // 2]
    lead = max(cosines) - median
    best_words = max((u.score for u in units), default=0.0)
    if lead <= 0 or best_words <= 0:
        return
    for unit, cosine in zip(units, cosines):
        unit.score += MEANING * best_words * max(0.0, cosine - median) / lead


def _asks(unit: Unit) -> bool:
    """Whether a unit is a question printed in the manual (an exercise's, an FAQ's)."""
    return not (unit.fixed or unit.row) and unit.text.rstrip().endswith("?")


def echoed_question(source: SourceText, question: str) -> str:
    """The question printed in `source` (an exercise's, an FAQ's) that shares most words
    with `question`, with its number: what a page of review questions has to do with it."""
    wanted = terms(question)
    units = source.units
    asked = [i for i, unit in enumerate(units) if _asks(unit)]
    if not asked:
        return ""
    i = max(asked, key=lambda j: len(units[j].terms & wanted))
    mark = units[i - 1].text + " " if i > 0 and _EXERCISE_MARK.fullmatch(units[i - 1].text) else ""
    return mark + units[i].text


def _questions_to_answers(sources: Sequence[SourceText]) -> None:
    """A line that asks a question states nothing, however well it matches: a training
    manual's review question only echoes the user's ("Q16. What safety precaution must you
    observe ...?") and took the budget the answering sentence needed. An FAQ's question
    matters for the answer under it, a sentence or a list ("So why use relocatable mode?"
    over its four reasons): its score passes to that line, which brings it along. Not an
    exercise's (numbered: its choices, mostly wrong, or the next section's text follow it,
    not its answer): the question and its choices ("4. File the tip smooth") state nothing.
    Nor to another question. Silent units are never shown to fill leftover room."""
    for source in sources:
        if source.kind == "table":
            continue
        units = source.units
        for i, unit in enumerate(units):
            if not _asks(unit):
                continue
            score, unit.score, unit.silent = unit.score, 0.0, True
            if i > 0 and _EXERCISE_MARK.fullmatch(units[i - 1].text):  # its number ("1-42."), alone
                units[i - 1].score, units[i - 1].silent = 0.0, True
            after = units[i + 1] if i + 1 < len(units) else None
            if after is None or after.fixed or after.row or _asks(after):
                continue
            if _EXERCISE.match(unit.text) or i > 0 and _EXERCISE_MARK.fullmatch(units[i - 1].text):
                for choice in units[i + 1:]:
                    if choice.fixed or choice.row or not LIST_ITEM.match(choice.text):
                        break
                    choice.score, choice.silent = 0.0, True
            else:
                after.score = max(after.score, score)
                after.lead = unit


def _worth_showing(
    sources: Sequence[SourceText], score: Callable[[set[str]], float], forced: Sequence[bool]
) -> list[bool]:
    """Which sources to show: the first, the forced, and those that match at least
    WEAK_SOURCE as well as the best does, each only once."""
    # A source's relevance: its best unit, plus what its title, caption or column names
    # say ("Thread Torques" over "| Brass | 12 | 18 |").
    relevance = [
        max((u.score for u in s.units if not u.fixed), default=0.0)
        + max([score(s.about), *(u.score for u in s.units if u.fixed)])
        for s in sources
    ]
    floor = WEAK_SOURCE * max(relevance, default=0.0)
    kept = [i == 0 or forced[i] or 0 < r >= floor for i, r in enumerate(relevance)]
    # The same figure printed twice (a chapter summary repeats it) says nothing new.
    seen: set[str] = set()
    for i, source in enumerate(sources):
        body = _words(" ".join(u.text for u in source.units))
        if body in seen and not forced[i]:
            kept[i] = False
        seen.add(body)
    return kept


def _words(text: str) -> str:
    return " ".join(text.lower().replace("|", " ").split())


def _lists(source: SourceText) -> list[list[Unit]]:
    """The lists among a source's units, each with its lead-in, up to WHOLE_LIST_TOKENS in
    all: from the unit holding item "1." to the unit holding the last number that counts on
    from it (2, 3, ...), with what lies between (an item's second sentence, its bulleted
    sub-items) and the bulleted sub-items of the last; or a run of units that each open
    with a bullet. Not a table's rows, nor a table's or figure's fixed lines. A list longer
    than the cap is left out: shown in part, it would give a wrong count."""
    if source.kind == "table":
        return []
    units = source.units
    numbers = [[] if u.row or u.fixed else [int(n) for n in ITEM_NUMBER.findall(u.text)] for u in units]
    bullets = [
        not n and not (u.row or u.fixed) and bool(LIST_ITEM.match(u.text)) for u, n in zip(units, numbers)
    ]
    runs: list[list[Unit]] = []
    for i, unit in enumerate(units):
        if 1 not in numbers[i]:
            continue
        expect = _last_in_order(numbers[i][numbers[i].index(1) :]) + 1
        last, cost, j = i, unit.tokens, i + 1
        while j < len(units) and cost <= WHOLE_LIST_TOKENS and not units[j].row and 1 not in numbers[j]:
            cost += units[j].tokens
            if numbers[j] and numbers[j][0] == expect:
                last, expect = j, _last_in_order(numbers[j]) + 1
            j += 1
        end = last + 1
        while end < len(units) and bullets[end]:
            end += 1  # the last item's sub-items
        run = units[i:end]
        # A list's first item comes with its lead-in: the words before its mark, or else the
        # unit before it ("Diode SOA model parameters", "try these aids in order:").
        opens = bool(LIST_ITEM.match(unit.text)) and numbers[i][0] == 1
        if opens and i > 0 and not (units[i - 1].row or units[i - 1].fixed):
            run.insert(0, units[i - 1])
        whole = not _numbered_on(numbers, end, expect)
        if last > i and whole and sum(u.tokens for u in run) <= WHOLE_LIST_TOKENS:
            runs.append(run)
    numbered = {id(u) for run in runs for u in run}
    i = 0
    while i < len(units):
        j = i
        while j < len(units) and bullets[j]:
            j += 1
        if j - i > 1 and i > 0 and not any(id(u) in numbered for u in units[i:j]):
            runs.append(units[i - 1 : j])
        i = max(j, i + 1)
    return runs


def _numbered_on(numbers: Sequence[Sequence[int]], start: int, expect: int) -> bool:
    """Whether a unit from `start` on holds item number `expect` before any new "1.": the
    list goes on past the cap."""
    for found in numbers[start:]:
        if 1 in found:
            return False
        if found and found[0] == expect:
            return True
    return False


def _last_in_order(numbers: Sequence[int]) -> int:
    """The last item number of the run `numbers` begins, each counting on by one from the
    one before: "1.", "2.", a "5." of an item's own text, "3." give 3."""
    last = numbers[0]
    for n in numbers[1:]:
        if n == last + 1:
            last = n
    return last


def _neighbours(sources: Sequence[SourceText]) -> list[Unit]:
    """The prose sentence or diagram label line after (then before) each kept one: OCR
    reads a diagram's labels in reading order, so the label beside a matching one
    ("HAND OPERATED" / "LATCHING") is usually part of the answer. Not a table's rows, in
    a table source or on a page: the row beside the one asked for is another size or
    model, and the 1.5B model reads a value from the wrong one. Nor a silent unit (a
    question printed in the manual, an exercise's choice): it states nothing, and an FAQ's
    question comes with its answer."""
    out: list[Unit] = []
    for source in sources:
        if source.kind == "table":
            continue
        units = source.units
        for i in [i for i, u in enumerate(units) if u.keep and not u.row]:
            for j in (i + 1, i - 1):
                if 0 <= j < len(units) and not (units[j].keep or units[j].fixed or units[j].row or units[j].silent):
                    out.append(units[j])
    return out


def _join(source: SourceText) -> str:
    """The kept units in order, "[…]" where units were left out. A count question's list
    (``_lists``) goes line by line, in prose too: where its items run on in a sentence the
    model and the count check (rag/grounding.py) cannot tell the last item from the line
    after it."""
    out = ""
    skipped, listed = False, False
    for unit in source.units:
        if not unit.keep:
            skipped = True
            continue
        if out:
            out += "\n" if listed or unit.members else source.joiner
        if out and skipped:
            out += "[…]" + source.joiner
        out += unit.text
        skipped, listed = False, bool(unit.members)
    if skipped and out:
        out += source.joiner + "[…]"
    return out
