"""Grounding: one way to read words, shared by keyword search, evidence selection and the
checks that an answer states only what its sources state.

Three stages used to tokenize on their own (and disagree: "3-11" was one token for search,
two for evidence). Here is the one tokenizer (``tokens``), the one stop list (``STOP``) and
the content terms built on them (``terms``), then what is built on those: the keyword query
and the draft checks.

A draft from the model is checked against the evidence it was given (the source lines in
its prompt, their titles, and the question). Any of these absent from all of it makes the
draft ``withheld``: a number with a unit, a decimal or fraction, a code or part number, and
(``strict``) a plain number or count, a proper name, or several content words at once. A
technician would act on an invented torque; saying "not in the manuals" costs less.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag.page_refs import NUMBER_WORDS, PAGE_REF

# -- words ----------------------------------------------------------------------------------------

# Letters and digits, with inner ".", ",", "/" or "-" kept: "3-11", "1,450", "0.5", "3/8", "b31a".
WORD = re.compile(r"[^\W_]+(?:[.,/-][^\W_]+)*")
_PARTS = re.compile(r"[-/.]")
# A decimal written without its leading zero (".961", ".25 inch"), as older manuals do.
_LEADING_POINT = re.compile(r"(?<![\w.,])\.(?=\d)")

# Words that say nothing about which passage or line answers: glue, question words, and
# what every question about a manual says ("shown", "manual", "listed").
STOP = frozenset(
    """a an and are as at be been but by can could do does did for from had has have how i if in into
    is it its me my no not of on or our should so such than that the their them then there these they
    this those to was we were what when where which while who why will with would you your
    shown show shows listed list given give manual manuals about any just get according called name
    named described describe""".split()
)


def tokens(text: str) -> list[str]:
    """Lower-case tokens in order."""
    return WORD.findall(text.lower())


def stem(word: str) -> str:
    """A crude stem, the same on both sides of every comparison: 'fuses', 'fused' -> 'fus'."""
    if word[:1].isdigit():
        return word
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def terms(text: str) -> set[str]:
    """Stemmed content words, numbers as written.

    A hyphenated, slashed or dotted word also counts by its letter parts: "hand-operated"
    finds "HAND OPERATED", "flow rate" finds "flow-rate-limit", "SoftStarter" finds
    "pump.drivers.SoftStarter"; "3-10" does not give "10", nor "3.5" give "5"; ".961" is
    "0.961".
    """
    out: set[str] = set()
    for word in tokens(_LEADING_POINT.sub("0.", text)):
        parts = [word]
        if _PARTS.search(word):
            parts += [p for p in _PARTS.split(word) if p.isalpha() and len(p) > 1]
        out.update(stem(part) for part in parts if part and part not in STOP)
    return out


# A letter or sign the question quotes ("the 'A' in that code", "what does "H" on the display
# mean?") is what it asks about, yet no term holds it: one letter is a stop word ("a") or
# one of a thousand. It counts as written, in its own case, standing alone ("(A)", "P 215
# A 4N"), and not as a sentence's first word, where "A" is the article.
_QUOTED_SIGN = re.compile(r"""(?<!\w)['‘"“`](\S)['’"”`](?!\w)""")


def quoted_signs(question: str) -> list[str]:
    """The single letters or signs the question puts in quotes, lower-case stop words aside."""
    return [s for s in dict.fromkeys(_QUOTED_SIGN.findall(question)) if s not in STOP]


def sign_terms(text: str, signs: Sequence[str]) -> set[str]:
    """A term ("'A'") for each sign in `signs` that `text` shows standing alone, not as its
    first word nor after a sentence's end; ``select`` weighs it like any other term."""
    out: set[str] = set()
    for sign in signs:
        for match in re.finditer(rf"(?<![^\W_]){re.escape(sign)}(?![^\W_])", text):
            before = text[: match.start()].rstrip()
            if before and before[-1] not in ".!?:":
                out.add(f"'{sign}'")
                break
    return out


# -- keyword search --------------------------------------------------------------------------------

# The keyword side reads at most this many terms of a question: every term is an OR branch
# of the FTS5 query, and a pasted page of 4,000 words made one search take seconds.
MAX_KEYWORD_TERMS = 32


def keyword_query(text: str, max_terms: int = MAX_KEYWORD_TERMS) -> str:
    """An FTS5 query from free text: OR of its most informative terms, each an exact phrase.

    Codes such as "F07452", "3-11" or "W12C" stay whole phrases, so they match exactly;
    a number next to a word ("20 AMP", "AWG 20", "No. 10") is also sent as a phrase, so
    passages with the value and its unit together rank above ones with either alone.
    Past ``max_terms``, codes and numbers are kept first, then the longest words.
    """
    words = tokens(text)
    phrases: dict[str, int] = {}  # phrase -> position of first use

    def add(phrase: str, at: int) -> None:
        phrase = phrase.replace('"', "")
        if phrase and phrase not in phrases:
            phrases[phrase] = at

    for at, word in enumerate(words):
        if word in STOP or (len(word) < 2 and not word.isdigit()):
            continue
        add(" ".join(p for p in re.split(r"[^\w]+", word) if p), at)
    for at, (left, right) in enumerate(zip(words, words[1:])):
        if (left.isdigit() or right.isdigit()) and not (left in STOP or right in STOP):
            add(f"{left} {right}", at)
    for spelling in unit_spellings(text):
        add(spelling, len(words))
    if len(phrases) > max_terms:
        ranked = sorted(phrases, key=lambda p: (not any(c.isdigit() for c in p), -len(p), phrases[p]))
        keep = set(ranked[:max_terms])
        phrases = {p: at for p, at in phrases.items() if p in keep}
    return " OR ".join(f'"{p}"' for p in sorted(phrases, key=phrases.__getitem__))


# -- values ------------------------------------------------------------------------------------------

# Unit spellings that mean the same thing, so "20 A" is supported by "20 AMP".
_UNIT_GROUPS = [
    ("a", "amp", "amps", "ampere", "amperes"),
    ("ma", "milliamp", "milliamps"),
    ("v", "volt", "volts", "vac", "vdc"),
    ("mv", "millivolt", "millivolts"),
    ("kv", "kilovolt", "kilovolts"),
    ("w", "watt", "watts"),
    ("kw", "kilowatt", "kilowatts"),
    ("hz", "hertz"),
    ("khz",),
    ("mhz",),
    ("ghz",),
    ("ohm", "ohms", "ω"),
    ("kohm", "kω", "kilohm", "kilohms"),
    ("nm", "n·m", "n-m", "newton-metres", "newton-meters"),
    ("ft-lb", "ft-lbs", "lb-ft", "ft·lb", "foot-pound", "foot-pounds"),
    ("in-lb", "in-lbs", "lb-in", "inch-pound", "inch-pounds"),
    ("psi", "psig", "psia"),  # gauge and absolute pressure, in the same unit
    ("bar",),
    ("kpa",),
    ("mpa",),
    ("mm", "millimetre", "millimetres", "millimeter", "millimeters"),
    ("cm", "centimetre", "centimetres", "centimeter", "centimeters"),
    ("m", "metre", "metres", "meter", "meters"),
    ("km", "kilometre", "kilometres", "kilometer", "kilometers"),
    ("mi", "mile", "miles"),
    ("in", "inch", "inches", '"', "″"),
    ("kg", "kilogram", "kilograms"),
    ("g", "gram", "grams"),
    ("lb", "lbs", "pound", "pounds"),
    ("ton", "tons", "tonne", "tonnes"),
    ("l", "litre", "litres", "liter", "liters"),
    ("ml", "millilitre", "millilitres", "milliliter", "milliliters"),
    ("°c", "degc", "c"),
    ("°f", "degf", "f"),
    ("rpm",),
    ("s", "sec", "secs", "second", "seconds"),
    ("min", "mins", "minute", "minutes"),
    ("h", "hr", "hrs", "hour", "hours"),
    # Service intervals and warranty periods are values too ("every 6 months", "2 years").
    ("day", "days"),
    ("week", "weeks"),
    ("month", "months"),
    ("year", "years", "yr", "yrs"),
    ("%", "percent"),
    ("µf", "uf", "mf"),
    ("gb", "gigabyte", "gigabytes"),
    ("mb", "megabyte", "megabytes"),
    ("tb", "terabyte", "terabytes"),
    ("mbps",),
    ("gbps",),
    ("db", "decibel", "decibels"),
    ("mah",),
    ("wh",),
    ("gal", "gallon", "gallons"),
    ("qt", "quart", "quarts"),
    ("oz", "ounce", "ounces"),
    ("ft", "foot", "feet"),
    ("hp", "horsepower"),
    ("mph",),
    ("mpg",),
]
_UNIT = {spelling: group[0] for group in _UNIT_GROUPS for spelling in group}
_UNIT_GROUP = {spelling: group for group in _UNIT_GROUPS for spelling in group}
_UNIT_PATTERN = "|".join(sorted((re.escape(u) for u in _UNIT), key=len, reverse=True))
# A number not glued to a code ("F1", "F07452"), with an optional known unit after it.
# A fraction ("3/8 inch", "1/2-inch") is one value: a wrong one is as wrong as a decimal.
# Values a slash joins ("8 years/100,000 miles") are two; a rate ("20 ft/min") is no "20 ft".
# A raised mark after the number ("12.5³ L", a footnote or an exponent) is not part of it.
_QUANTITY = re.compile(
    rf"(?<![\w.,-])(?<!\d/)(\d+(?:[.,]\d+)*(?:/\d+)?)[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]*"
    rf"(?:[\s-]?({_UNIT_PATTERN}))?(?![\w·-])(?!/(?!\d))",
    re.IGNORECASE,
)


def unit_spellings(text: str) -> list[str]:
    """Other spellings of the units a text names in words ("gallons" -> "gal", "horsepower"
    -> "hp"): a technician writes the word, a spec table its abbreviation, and neither
    would find the other. Only letters, two or more, and no stop word ("inches" does not
    bring "in")."""
    out: list[str] = []
    for word in tokens(text):
        if len(word) >= 3 and word in _UNIT_GROUP:
            out += [s for s in _UNIT_GROUP[word] if s != word and len(s) >= 2 and s.isalpha() and s not in STOP]
    return list(dict.fromkeys(out))


# Codes and part numbers: letters and digits mixed ("F07452", "W12C", "TB1").
CODE = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)*\b")
# A code's letter and digit runs, and what a diagram may set between them when it prints
# the code by its parts ("K 48 C 2N" for "K48C2N"), which OCR then reads apart.
_CODE_PART = re.compile(r"[^\W\d_]+|\d+")
_PART_GAP = r"[\s|.-]{0,2}"


# A file, path or module name ("tools/export.py", "pump.drivers.SoftStarter"): a user runs or
# imports it as written. A dot between two names of two or more characters ("e.g." and
# "3.5" are none), or two slashes between names ("and/or" is no path).
_PATHLIKE = re.compile(r"[\w-]+(?:[./][\w-]+)+")
_NAMED_PART = re.compile(r"(?=.*[^\W\d_])[\w-]{2,}")
_LINE_BREAK_IN_PATH = re.compile(r"(?<=[./])\s+")


# A command-line option ("-n", "--fill"): a user types it as written. A typesetter's "–fill"
# (an en or em dash for two hyphens) in a source is the same option; an answer's options are
# read in hyphens only, so a dash between words of its prose is no option.
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
_TYPESET_OPTION = re.compile(r"(?<![\w-])[–—](?=[A-Za-z])")


def options(text: str, typeset: bool = False) -> list[str]:
    """The command-line options in `text`, in order; with `typeset`, also those a dash
    opens (a source's "–fill" reads "--fill")."""
    return _OPTION.findall(_TYPESET_OPTION.sub("--", text) if typeset else text)


def identifiers(text: str) -> list[str]:
    """The file, path and module names in `text`, in order."""
    out = []
    for token in _PATHLIKE.findall(text):
        parts, seps = re.split(r"[./]", token), re.findall(r"[./]", token)
        named = [bool(_NAMED_PART.fullmatch(p)) for p in parts]
        dotted = any(sep == "." and named[i] and named[i + 1] for i, sep in enumerate(seps))
        if dotted or (seps.count("/") >= 2 and sum(named) >= 2):
            out.append(token)
    return out


def code_parts(code: str) -> list[str]:
    return _CODE_PART.findall(code)


def spells_code(code: str, text: str) -> bool:
    """Whether `text` has `code`, whole or by its parts in order ("K 48 C 2N")."""
    gap = _PART_GAP.join(map(re.escape, code_parts(code)))
    return re.search(rf"(?<![^\W_]){gap}(?![^\W_])", text, re.IGNORECASE) is not None


# A capitalised word: a proper name, a product, a brand (the first word of a sentence aside).
_NAME = re.compile(r"\b[A-Z][a-z]{2,}(?:[A-Z][a-z]+)*\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*(?:\d+[.)]|[-*•])?\s*)[\"'(\[]?([A-Z][a-z]+)")
_NOT_NAMES = frozenset("yes no note source sources figure table page step the this these".split())


# A range with its unit ("2-4 days", "12–24 VDC"): two values. Without a unit a hyphen joins
# a figure or assignment number ("3-11", "2-48"), which is no value.
_RANGE = re.compile(
    rf"(?<![\w.,-])(\d+(?:[.,]\d+)*)\s*[-–]\s*(\d+(?:[.,]\d+)*)[\s-]?({_UNIT_PATTERN})(?![\w·-])", re.IGNORECASE
)


# A value spelled out before its unit written out ("ten minutes", "two hours"); not before an
# abbreviation, where "one in five" would read as an inch.
_UNIT_WORDS = "|".join(sorted((u for u in _UNIT if len(u) >= 3 and u.isalpha()), key=len, reverse=True))
_SPELLED_VALUE = re.compile(
    r"\b(" + "|".join(NUMBER_WORDS) + rf")(?=[\s-](?:{_UNIT_WORDS})\b)", re.IGNORECASE
)


def _values_text(text: str) -> str:
    """The text as the value checks read it: manuals write 200º C (an ordinal sign, a space)
    or 27 ◦C (LaTeX's degree, a white bullet) as often as 200°C, and a range is spelled
    out, so an invented "2-4 days" is checked as "2 days" and "4 days", and "12 to 24
    volts" vouches for "12-24 V". A value in words is its digits: "ten minutes" vouches
    for "10 minutes"."""
    text = re.sub(r"[°º˚◦∘]\s*([CF])\b", r"°\1", text)
    text = _LEADING_POINT.sub("0.", text)  # ".961 mA" is 0.961 mA
    text = _SPELLED_VALUE.sub(lambda m: str(NUMBER_WORDS[m[1].lower()]), text)
    return _RANGE.sub(lambda m: f"{m[1]} {m[3]} to {m[2]} {m[3]}", text)


def _quantities(text: str) -> set[tuple[str, str]]:
    return {
        (num.replace(",", ""), _UNIT.get(unit.lower(), "") if unit else "")
        for num, unit in _QUANTITY.findall(_values_text(text))
    }


def _units_named(text: str) -> set[str]:
    return {_UNIT[w] for w in re.findall(r"[a-zµ°ω%]+", text.lower()) if w in _UNIT and len(w) > 2}


_KEY = re.compile(r"\[\d+\]")
# A table row as the prompt shows it ("key: column: value; column: value", written by
# rag/evidence.py _record; tests/rag/test_evidence.py keeps the two in step).
TABLE_ROW = re.compile(r"^[^:;\n]{1,80}: [^:;\n]+: [^;\n]*(?:; [^:;\n]+: [^;\n]*)*$")


# Where an answer's sentences end: at a full stop, question or exclamation mark, and at a line
# break (a list's items). A full stop before a lower-case word is an abbreviation's ("16-in.
# steel wheels"), not a sentence's end. Every check that reads an answer sentence by sentence
# splits it here, so they agree on what a sentence is.
ANSWER_SENTENCE = re.compile(r"(?<=[.!?])\s+(?![a-z])|\n+")
# The same, keeping the breaks (as odd items of re.split) so a text can be put back together.
ANSWER_SENTENCE_KEEP = re.compile(f"({ANSWER_SENTENCE.pattern})")


# What heads a figure source's labels in the prompt (rag/prompts.py), under the source's title
# line; on a page, a figure's labels follow "Figure 2-40 labels:" (manualrag.types.labels_heading).
DIAGRAM_LABELS = "Labels read from the diagram:"
_LABELS_HEADING = re.compile(r"^\s*(.+?) labels:\s*$")
_LABEL_WORDS = 6  # a longer line ending in a full stop is a sentence, not a label


def _with_captions(lines: Sequence[str], about: list[set[str]]) -> list[set[str]]:
    """`about` with each figure label line speaking also of what its figure's caption says:
    on a page, the lines that name the figure ("Figure 2-40.—Lacing shuttle." for the labels
    under "Figure 2-40 labels:"); in a figure source, its title line. A label '3"' is a
    dimension of the shuttle, though no word beside it says so."""
    out = list(about)
    caption: set[str] = set()
    for i, line in enumerate(lines):
        heading = _LABELS_HEADING.match(line)
        if line.strip() == DIAGRAM_LABELS:
            caption = terms(lines[0])
        elif heading:
            name = re.compile(rf"{re.escape(heading[1])}(?![\w-])")
            caption = terms(" ".join(other for other in lines if other is not line and name.search(other)))
        elif line.rstrip().endswith(".") and len(line.split()) > _LABEL_WORDS:
            caption = set()  # a sentence: the page's prose again, not the figure's labels
        out[i] = out[i] | caption
    return out


# The page number in a source's title line (rag/prompts.py source_title): "[2] page 12, …",
# "[1] Figure 2.9, manual.pdf, page 31: …".
_TITLE_PAGE = re.compile(r"\[\d+\][^\n]*?\bpage (\d+)")


def unsupported_values(
    answer: str, evidence: Sequence[str], question: str = "", counts: bool = False, topical: bool = False
) -> list[str]:
    """Values and codes in the answer that no evidence line (nor the question) contains.

    A value with a unit must appear with the same unit, or bare in a line that names the
    unit (a table row carries its column's "(ohms)"): in the same line, not anywhere in a
    long source, where a stray "0.32" and an "ohm" three paragraphs apart would vouch for
    an invented "0.32 ohm". A code, a decimal or a fraction must appear. Plain integers
    ("step 3", "4 markets") are checked only with ``counts``. With ``topical``, the line
    that has the value (or a line beside it: a label stacked under its name; for a table
    row, its table's title) must also speak of what the answer's sentence says the value
    is of: share a content word with the sentence's words that the question uses too
    (with any of its words when it uses none). A "3" from "Figure 1-3" does not vouch for
    "the impedance is 3", nor "Inspect the impeller every 500 hours" for "change the oil
    every 500 hours" asked of the oil. Values the user gave in the question
    are not the model's invention. A table row ("Size 10: Copper: 55; ...") also carries
    the unit its table's title names ("Capacities (in Amperes)"), the nearest line above
    it in its source that is not a row.
    """
    # A source title's page number ("[2] page 12, Measurements") is our metadata, not a value
    # the manual states: "the baud rate is 12" read from it is invented. It vouches only for
    # the answer saying where something is ("on page 12").
    titles = [_TITLE_PAGE.match(block) for block in evidence]
    titled = {m[1] for m in titles if m}
    answer = PAGE_REF.sub(lambda m: " " if set(re.findall(r"\d+", m[1])) <= titled else m[0], answer)
    evidence = [block[: m.start(1)] + block[m.end(1) :] if m else block for block, m in zip(evidence, titles)]
    text = _values_text(_KEY.sub(" ", answer))
    things = counted(question) if counts else set()
    heads = counted_heads(question) if counts else set()  # what a line's count must be of
    # A list's own marks ("1. Switch off the breaker") are no value, nor a count of it: the
    # model is asked for numbered steps.
    text = _LINE_ITEM.sub("•", text)
    if things:  # "nine relays" is as much a count as "9 relays" ("one" is too often no number)
        text = _SPELLED_COUNT.sub(lambda m: _NUMBER_WORDS[m[0].lower()], text)
    lines: list[str] = []
    about: list[set[str]] = []  # each line with its neighbours' words (in its source): what it speaks of
    tallies: list[set[str]] = []  # the counts of `things` each line states
    named: list[set[str]] = []  # the units each line names, a row's with its table title's
    for block in evidence:
        # A source's key ("[3] page 78") is our numbering, not a value the manual states.
        own = [_KEY.sub(" ", line) for line in block.splitlines() if line.strip()]
        lines += own
        near = [terms(" ".join(own[max(0, i - 1) : i + 2])) if topical else set() for i in range(len(own))]
        about += _with_captions(own, near) if topical else near
        if things:
            tallies += [_counts_stated(line, heads) for line in own]
        title: set[str] = set()
        heading: set[str] = set()
        for line in own:
            if TABLE_ROW.match(line):
                named.append(_units_named(line) | title)
                if topical:  # a row speaks of what its table's title says ("Solid Copper")
                    about[len(named) - 1] |= heading
            else:
                named.append(_units_named(line))
                if line.strip() != "[…]":
                    title = named[-1]
                    heading = terms(line) if topical else set()
    given = _quantities(question)
    listed = list_sizes(evidence, question, things) if things else set()
    pairs = {pair for line in lines for pair in _number_pairs(line)} if things else set()
    asked = terms(question) - GLUE
    found = [_quantities(line) for line in lines]
    codes = {c.lower() for line in [*lines, question] for c in CODE.findall(line)}
    missing: list[str] = []
    for sentence in ANSWER_SENTENCE.split(text):
        subject = terms(_QUANTITY.sub(" ", sentence)) - GLUE
        # What the sentence says the value is of, in the question's words ("oil", "changed"):
        # the line must speak of that too, not only echo the words around the value.
        subject = (subject & asked) or subject
        for match in _QUANTITY.finditer(sentence):
            num, unit = match[1].replace(",", ""), _UNIT.get((match[2] or "").lower(), "")
            plain = not unit and "." not in num and "/" not in num
            if plain and not counts:
                continue
            if plain and things:
                # The answer to "how many X": a line must state the number of X, not any
                # number near the topic ("13 and 14" of a list's numbering is no count).
                # A whole list under a lead-in on the question's subject states its count
                # by its items ("1." to "5.").
                stated = any(num in tally for tally in tallies) or num in listed
                # An item of a list the answer copies may count something else as its source
                # does ("• Remove the four screws" among the steps): the manual's words.
                after = tokens(sentence[match.end() :])[:1]
                noun = singular(after[0]) if after else ""
                item = sentence.lstrip()[:1] in ("•", "-", "*") and bool(noun) and noun not in things
                other = item and (num, noun) in pairs
                supported = _states(num, unit, given, set()) or stated or other
            else:
                supported = _states(num, unit, given, _units_named(question)) or any(
                    _states(num, unit, line_values, named[i])
                    and (not topical or not subject or bool(subject & about[i]))
                    for i, line_values in enumerate(found)
                )
            if not supported and match[0] not in missing:
                missing.append(match[0])
    for code in CODE.findall(text):
        if _QUANTITY.fullmatch(code):  # "50V" is a quantity, checked above
            continue
        if code.lower() not in codes and code not in missing:
            missing.append(code)
    # A file, path or module name, and a command-line option, must be inside what a source
    # says, as written (a line break may have put a space after a dot or a slash):
    # "drivers.SoftStarter" of "pump.drivers.SoftStarter", "--fill" of "–fill".
    names, flags = identifiers(text), options(text)
    sources = "\n".join([*lines, question]) if names or flags else ""
    said = _LINE_BREAK_IN_PATH.sub("", sources.lower())
    missing += [name for name in dict.fromkeys(names) if name.lower() not in said and name not in missing]
    given = set(options(sources, typeset=True))
    missing += [flag for flag in dict.fromkeys(flags) if flag not in given and flag not in missing]
    return missing


# A count question ("how many data ports ...?") and the words after it that say what is
# counted; rag/catalog.py asks the same of a question.
HOW_MANY = re.compile(r"\bhow\s+many\b\s*([^?!.]{0,80})", re.IGNORECASE)
# Counts a manual writes in words ("three ports"), read as the digits an answer uses.
_NUMBER_WORDS = {word: str(n) for word, n in NUMBER_WORDS.items()}
_COUNT = re.compile(r"\d+(?:,\d{3})*")
_COUNT_HYPHEN = re.compile(r"\b(\d+|" + "|".join(_NUMBER_WORDS) + r")-(?=[^\W\d_])", re.IGNORECASE)
_TIMES = re.compile(r"(?<![^\W_])(?:[x×]\s?(\d+)|(\d+)\s?[x×])(?![^\W_])", re.IGNORECASE)
_SPELLED_COUNT = re.compile(r"\b(?:" + "|".join(w for w in _NUMBER_WORDS if w not in ("zero", "one")) + r")\b", re.IGNORECASE)
# A count is stated of a thing when its number is this close to the thing's name: "7 relays",
# "relays (7)", "a total of 8 valves", "three USB ports".
COUNT_WINDOW = 3


def singular(word: str) -> str:
    """A counted noun's singular ("speeds", "boxes", "batteries" -> speed, box, battery).
    Not ``stem``, which reads "speed" as "spe" and "speeds" as "speed"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("xes", "ches", "shes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def counted(question: str) -> set[str]:
    """What a "how many" question counts, as terms: the content words after "how many", up
    to the next stop word but "of" ("service ports on the panel" -> service, port; "kinds
    of filters" -> kind, filter). Empty for any other question, and for a unit ("how
    many gallons"): a value with its unit is checked as one."""
    match = HOW_MANY.search(question)
    return {singular(w) for w in _counted_words(tokens(match[1]))} if match else set()


def _counted_words(words: Sequence[str]) -> list[str]:
    """The first three content words of `words` up to a stop word ("of" aside), no unit."""
    out: list[str] = []
    for word in words:
        if word in STOP and not (word == "of" and out):
            break
        if word != "of":
            out.append(word)
    return [w for w in out[:3] if not w[:1].isdigit() and w not in _UNIT]


def counted_heads(question: str) -> set[str]:
    """Of what a "how many" question counts (``counted``), the words in the plural where any
    are: the thing itself, not what qualifies it. "SOA model parameters" counts
    parameters, and "three SOA modes" are none; "accessories come" counts accessories."""
    match = HOW_MANY.search(question)
    words = _counted_words(tokens(match[1])) if match else []
    plural = [w for w in words if singular(w) != w]
    return {singular(w) for w in plural or words}


def _counts_stated(line: str, things: set[str]) -> set[str]:
    """The numbers a line states as counts of `things`: within ``COUNT_WINDOW`` words of one."""
    # "page 9" (a source's title says where it is) is no count of what follows it; "3-speed"
    # and "four-port" are counts of speeds and ports.
    line = _COUNT_HYPHEN.sub(r"\1 ", PAGE_REF.sub(" ", line))
    line = _TIMES.sub(lambda m: f" {m[1] or m[2]} ", line)  # "USB-C x2", "2x HDMI", "× 3"
    out: set[str] = set()
    # A label list's or a row's cells ("Ear tips x3 | 2x USB cables") each count their own
    # thing. A number stacked under a label is its callout, not a count of it.
    for cell in re.split(r"[|;]", line):
        words = [_NUMBER_WORDS.get(w, w) for w in tokens(cell)]
        # A number right after its thing in the singular names one of them: "value 3", "step
        # 2" are labels, not counts ("relays (7)" is one).
        labels = {i + 1 for i, w in enumerate(words[:-1]) if w in things and singular(w) == w}
        for i, word in enumerate(words):
            if singular(word) in things:
                near = range(max(0, i - COUNT_WINDOW), min(len(words), i + COUNT_WINDOW + 1))
                out.update(words[j].replace(",", "") for j in near if j not in labels and _COUNT.fullmatch(words[j]))
    return out


# A numbered item's mark opening a line of an answer, as the model writes it in markdown too:
# "1. Open", "7) Open", "**7.** Open", "- 7. Open", "### 7. Open", "**Step 7:** Open".
_LINE_ITEM = re.compile(
    r"^[ \t]*(?:[-*>#]+[ \t]+)?(?:\*\*|__)?(?:step[ \t]+\d{1,2}[.):]|\d{1,2}[.)])(?:\*\*|__)?(?=\s)",
    re.IGNORECASE | re.MULTILINE,
)
# A list's items as a source shows them: numbered ("1.", "2)") after a space or a line's
# start, or bulleted lines. A list cut by the prompt's budget shows "[…]" after its start.
ITEM_NUMBER = re.compile(r"(?:^|(?<=\s))(\d{1,2})[.)](?=\s)", re.MULTILINE)
_BULLET_LINE = re.compile(r"^\s*(?:[•▪●◦■]|[-*–](?=\s))")
_BULLETS = re.compile(r"[•▪●◦■]")
_CUT = "[…]"
# The words before a list's first item that say what it lists: its lead-in or heading.
LEAD_IN_WORDS = 12


# A sentence or a line after a list item's own first one: other text than the item.
_AFTER_ITEM = re.compile(r"[.!?:]\s+\S|\n\s*[^\s[]")


def _ends_whole(tail: str) -> bool:
    """Whether a list's last item, `tail` (from its mark on), is its last: the source ends
    there, or goes on past it to other text (a sentence or a line after the item's own)
    before any "[…]". Items cut by the budget leave the "[…]" right after the last shown."""
    cut = tail.find(_CUT)
    return cut < 0 or bool(_AFTER_ITEM.search(tail[:cut].split(maxsplit=1)[-1]))


def _lists(block: str) -> list[tuple[int, str]]:
    """The complete lists in a source, each as its number of items and the text before it:
    a numbered run from 1 to its last number (a new "1." ends it), or a run of bulleted
    lines. A run with "[…]" among its items, or right after its last, may have lost items
    to the budget and is left out, and so is one whose next number stands elsewhere in
    the source; a single item is no list."""
    found: list[tuple[int, str]] = []
    items = [(int(m[1]), m.start()) for m in ITEM_NUMBER.finditer(block)]
    for i, (value, start) in enumerate(items):
        if value != 1:
            continue
        size, last = 1, start
        for later, at in items[i + 1 :]:
            if later == 1:
                break
            if later == size + 1:
                size, last = later, at
        # An item numbered on from the last anywhere in the source (a list set in two
        # columns comes out of the PDF second column first): the list is longer.
        longer = any(other == size + 1 for other, _ in items)
        if size > 1 and not longer and _CUT not in block[start:last] and _ends_whole(block[last:]):
            found.append((size, block[:start]))
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _BULLET_LINE.match(lines[j]):
            j += 1
        if j > i:
            size = sum(max(len(_BULLETS.findall(line)), 1) for line in lines[i:j])
            cut = _CUT in "\n".join(lines[i - 1 : j + 1] if i else lines[: j + 1])
            if size > 1 and not cut:
                found.append((size, "\n".join(lines[:i])))
        i = max(j, i + 1)
    return found


# A series in a sentence opens after a word that introduces it: "can be either A, B or C",
# "the colours are red, blue and green", "the kit includes A, B, and C", a colon. Not "is":
# "if the lamp is red, the filter …" starts a clause.
_SERIES_OPENER = re.compile(
    r"\b(?:either|are|include|includes|including|namely|such\s+as|contains?|comprises?)\b|:", re.IGNORECASE
)
_PARENTHESIS = re.compile(r"\s*\([^()]*\)")
_LAST_TWO = re.compile(r"^(.+?)\s+(?:and|or)\s+(.+)$")
_ENDS_ITEM = re.compile(r"[.!?]\s*$|[.!?]\s")
SERIES_ITEM_WORDS = 5  # an item of a series in prose is a name, not a clause
_PRONOUN = re.compile(r"(?:It|They|These|This|Its|Their)\b")


def _series(sentence: str) -> tuple[int, str] | None:
    """A series of items a sentence names, as its number of items and the words before it:
    "… can be either STRONG (0), RESISTIVE (1), HI IMPEDANCE (2) or UNDETERMINED (3)"
    names 4 after "… can be either". Items are short, commas part them and "and" or "or"
    ends them, and a word like "either", "are", "includes" or a colon opens them: commas
    between clauses ("When it is on, press A, and wait") make no series."""
    parts = [p.strip() for p in _PARENTHESIS.sub("", sentence).split(",")]
    for end in range(1, len(parts)):
        tail = re.sub(r"^(?:and|or)\s+", "", parts[end])
        oxford = tail != parts[end]
        last = _LAST_TWO.match(tail)
        if not oxford and last is None:
            continue
        start = end - 1  # back over the short items to the part that opens the series
        while start > 0 and not _SERIES_OPENER.search(parts[start]) and len(parts[start].split()) <= SERIES_ITEM_WORDS:
            start -= 1
        openers = list(_SERIES_OPENER.finditer(parts[start]))
        if not openers:
            continue
        opened = openers[-1].end()
        final = _ENDS_ITEM.split(tail if oxford else last[2])[0]  # the sentence may go on
        items = [parts[start][opened:], *parts[start + 1 : end], *([final] if oxford else [last[1], final])]
        if all(0 < len(item.split()) <= SERIES_ITEM_WORDS for item in items):
            return len(items), ", ".join([*parts[:start], parts[start][:opened]])
    return None


def _enumerations(block: str) -> list[tuple[int, str]]:
    """The series named in a source's prose (``_series``), each as its number of items and
    the sentence's words before it."""
    found = []
    # A sentence may wrap onto the next line, mid-parenthesis ("HI IMPEDANCE (integer value
    # / 2) or …", where "2)" reads like an item's mark); the budget's "[…]" parts it, and
    # so does a line ending in a colon (a figure's "labels:", each label on its own line).
    for paragraph in re.split(rf"\n\s*\n|{re.escape(_CUT)}", re.sub(r"(?<=[^\s:])\n(?=\S)", " ", block)):
        earlier = ""
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(paragraph.split())):
            if (series := _series(sentence)) is not None:
                size, before = series
                # "It includes A, B, and C": what "it" is, the sentence before says.
                found.append((size, f"{earlier} {before}" if _PRONOUN.match(before) else before))
            earlier = sentence
    return found


# Numbered items given by the ends of their run ("Greater Houston: 15 through 18", "Channels
# 1-16"): as many items as the numbers it spans. Not a figure's, table's or page's number
# ("Figure 2-40", "pages 12-15"), nor a range of values ("0 to 40 °C", "8-10 hours", "5-10%").
_NUMBER_RANGE = re.compile(
    r"(?<![\w.,/-])(\d{1,3})\s*(?:through|thru|to|[-–—])\s*(\d{1,3})(?![\w.,/]|-\d)", re.IGNORECASE
)
_NOT_ITEMS = re.compile(r"(?:\b(?:fig|figures?|tables?|pages?|pp?|sections?|chapters?|paragraphs?|para)\.?|[§#])\s*$",
                        re.IGNORECASE)
MAX_RANGE_ITEMS = 100


def _ranges(block: str) -> list[tuple[int, str, str]]:
    """The runs of numbered items a source gives by their ends (``_NUMBER_RANGE``), each as
    its number of items, its label, and the range as written. The label is what stands
    before it on its line after any other number: lines run together in a page's text
    ("Greater San Antonio: 13 and 14 Greater Houston: 15 through 18")."""
    found: list[tuple[int, str, str]] = []
    for line in block.splitlines():
        for match in _NUMBER_RANGE.finditer(line):
            first, last = int(match[1]), int(match[2])
            before, after = line[: match.start()], line[match.end() :]
            unit = tokens(after)[:1]
            if (not 0 < first < last or last - first >= MAX_RANGE_ITEMS or _NOT_ITEMS.search(before)
                    or unit and unit[0] in _UNIT or after.lstrip().startswith("%")):
                continue
            found.append((last - first + 1, re.split(r"\S*\d\S*", before)[-1].strip(), match[0]))
    return found


def counted_lists(evidence: Sequence[str], question: str, things: set[str]) -> list[tuple[int, int, str]]:
    """The complete lists in `evidence` whose lead-in speaks of what the question counts
    them in ("how many steps to descale" and a list after "To descale the machine:"), each
    as (its source's index, its number of items, a sentence saying so for the prompt). So do
    runs of numbered items given by their ends ("Greater Houston: 15 through 18": 4). The
    lead-in must share the question's words besides the counted thing that its source uses,
    two of them or half when there are fewer: every list under a column heading "Market
    Name" would otherwise count markets, and a list after "Texas" the markets of a page's
    "Greater Houston"."""
    own = set().union(*(terms(t) for t in things)) if things else set()
    heads = counted_heads(question) if things else set()
    # Where to look ("on pages 3 and 4") says nothing of what is listed: a catalog's list of
    # a page's figures would count anything asked of that page.
    words = terms(PAGE_REF.sub(" ", question)) - GLUE - own - {"many", "page"}
    qualifiers = {t for t in words if not t[:1].isdigit() and t not in _NUMBER_WORDS}
    found: list[tuple[int, int, str]] = []
    for n, block in enumerate(evidence):
        # The question's words its source uses: "put" and "line" of "how many parameters can
        # I put on a diode's .model line" are not there, "Diode" of the heading is.
        said = qualifiers & terms(PAGE_REF.sub(" ", block))

        def speaks(before: str) -> bool:
            lead_in = terms(" ".join(tokens(PAGE_REF.sub(" ", before))[-LEAD_IN_WORDS:]))
            # A question that names nothing but the thing ("how many advantages of relocatable
            # mode does the manual list?") is answered by a list whose lead-in names it.
            return bool(said and len(lead_in & said) >= min(2, math.ceil(len(said) / 2))
                        or not qualifiers and len(lead_in & own) >= math.ceil(len(own) / 2))

        unkeyed = _KEY.sub(" ", block)
        for size, before in _lists(unkeyed):
            if speaks(before):
                line = re.split(r"(?<=[.!?])\s+", (before.strip().splitlines() or [""])[-1])[-1]
                found.append((n, size, _list_note(line, size)))
        for size, before, span in _ranges(unkeyed):
            if speaks(before):
                lead = " ".join(before.split()[-LEAD_IN_WORDS:])
                found.append((n, size, f'The items numbered {span} after "{lead}" are {size}.'))
        # A series in a sentence ("the strength can be either A, B, C or D") is counted when
        # the words before it name the thing counted (``counted_heads``: "how many
        # accessories come with …" counts accessories), not only where: a kit's series of
        # accessories is no count of the cables among them.
        body = block.split("\n", 1)[1] if _KEY.match(block) and "\n" in block else block
        for size, before in _enumerations(body):  # not the source's title ("[3] Figure, page 22")
            if heads and len({singular(w) for w in tokens(before)} & heads) >= math.ceil(len(heads) / 2):
                found.append((n, size, _list_note(before, size)))
    return found


def _list_note(lead_in: str, size: int) -> str:
    return f'The list after "{" ".join(lead_in.split()[-LEAD_IN_WORDS:])}" has {size} items.'


def list_sizes(evidence: Sequence[str], question: str, things: set[str]) -> set[str]:
    """The item counts of ``counted_lists``."""
    return {str(size) for _, size, _ in counted_lists(evidence, question, things)}


def _number_pairs(line: str) -> set[tuple[str, str]]:
    """Each number of a line, in digits or words, with the word after it ("four screws" ->
    ("4", "screw"))."""
    words = [_NUMBER_WORDS.get(w, w) for w in tokens(line)]
    return {(w, singular(n)) for w, n in zip(words, words[1:]) if _COUNT.fullmatch(w)}


def _states(num: str, unit: str, values: set[tuple[str, str]], named: set[str]) -> bool:
    """Whether a line with these values, naming these units, states `num` (with `unit`; ""
    for a bare number)."""
    stated = any(n == num for n, _ in values)
    if not unit:
        return stated
    # With its unit, or bare in a line that names the unit (a table row under "(ohms)").
    return (num, unit) in values or stated and unit in named


def unsupported_names(answer: str, evidence: Sequence[str], question: str = "") -> list[str]:
    """Capitalised words inside the answer's sentences (names of parts, brands, places,
    models) that appear nowhere in the evidence nor the question, in any case."""
    text = _KEY.sub(" ", answer)
    openers = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    read = " ".join([*evidence, question])
    known = {stem(t) for t in tokens(read)} | terms(read)  # terms: "SoftStarter" of "drivers.SoftStarter"
    out: list[str] = []
    for match in _NAME.finditer(text):
        name, low = match.group(0), match.group(0).lower()
        if match.start() in openers or low in _NOT_NAMES or stem(low) in known:
            continue
        if name not in out:
            out.append(name)
    return out


# Words an answer adds around the facts without inventing any ("because", "yes").
# Taken out of terms, so kept as terms. Not "because": a reason the model words itself is
# where it invents (counted as glue, it let an invented reason through on a dev set).
# So are function words the stop list keeps for search ("some", "being", "may"): a
# grounded answer that says "some tools may" invented no fact.
GLUE = frozenset(terms("cannot yes up down also only approximately some being may might must each both very other"))
# A draft with at least this many content words that no source nor the question has,
# making up at least this share of its content words, is not grounded: a small model
# copies; grounded answers add inflections and glue, invented ones whole phrases.
NOVEL_WORDS_MIN = 3
NOVEL_WORDS_SHARE = 0.3


def unsupported_words(answer: str, evidence: Sequence[str], question: str = "") -> list[str]:
    """Content words of the answer that no evidence nor the question contains, when they
    are enough of the answer to mean it says something the sources don't; else []."""
    said = terms(_KEY.sub(" ", answer)) - GLUE
    known = terms(question).union(*(terms(e) for e in evidence))
    novel = sorted(said - known)
    if len(novel) >= NOVEL_WORDS_MIN and len(novel) >= NOVEL_WORDS_SHARE * max(len(said), 1):
        return novel
    return []


_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


# A question that asks for pages: the sources an answer cites are its answer.
PAGES_ASKED = re.compile(r"\b(?:which|what)\s+pages?\b", re.IGNORECASE)


def restates_question(answer: str, question: str) -> bool:
    """True when the answer says nothing the question didn't (every content word of it is
    the question's). A yes or a no is an answer, however short, and so are the sources
    cited for "which pages cover …?"."""
    if _YES_NO.match(answer) or not question.strip() or set(options(answer)) - set(options(question)):
        return False  # an option the answer names ("--fill" for "which option fills?") is an answer
    if PAGES_ASKED.search(question) and _KEY.search(answer):
        return False
    said = terms(_KEY.sub(" ", answer)) - GLUE
    # Picking one of the choices the question offers ("on the left or right side?": "on the
    # right side") is an answer, though every word of it is the question's.
    if any(len(said & pair) == 1 for pair in _choices(question)):
        return False
    return bool(said) and said <= terms(question)


_CHOICE = re.compile(r"([^\W_]+)['’\"”]?,?\s+or\s+['‘\"“]?([^\W_]+)", re.IGNORECASE)


def _choices(question: str) -> list[set[str]]:
    """The pairs of alternatives a question offers ("left or right", "'yes' or 'no'"), as terms."""
    pairs = [terms(a) | terms(b) for a, b in _CHOICE.findall(question)]
    return [pair for pair in pairs if len(pair) == 2]


# A count an answer states: digits, a number word, or the words for none and one.
_ANY_COUNT = re.compile(
    r"\d|\b(?:" + "|".join(_NUMBER_WORDS) + r"|no|none|single|both|once|twice)\b", re.IGNORECASE
)


def gives_no_count(answer: str, question: str, evidence: Sequence[str] = ()) -> bool:
    """True when a "how many" question gets an answer that states no number at all: a list
    of items without their count, or the question's words back ("ngspice tries the
    following convergence aids"). An item's own mark ("1.") is no count of the list. A
    series that names as many items as a list in `evidence` counts (``counted_lists``)
    answers too: "the collection includes gpasm, gplink, and gplib" for a list of 3."""
    if not HOW_MANY.search(question):
        return False
    text = ITEM_NUMBER.sub(" ", _KEY.sub(" ", answer))
    return not _ANY_COUNT.search(text) and series_count(answer, question, evidence) is None


def series_count(answer: str, question: str, evidence: Sequence[str]) -> int | None:
    """The count an answer to "how many" gives, without writing it, by naming as many items
    as a list or series that `evidence` counts (``counted_lists``) has: in a series of its
    own ("includes gpasm, gplink, and gplib": 3) or a line each (the steps copied, their
    marks dropped; a lead-in line ending in a colon aside). None when it names no such
    number of items, or writes it as the count, or the question asks no "how many"."""
    if not HOW_MANY.search(question):
        return None  # "which ports …?" answered with the list: the list is the answer
    sizes = {int(n) for n in list_sizes(evidence, question, counted(question))}
    text = ITEM_NUMBER.sub(" ", _KEY.sub(" ", answer))
    named = [series[0] for sentence in ANSWER_SENTENCE.split(text) if (series := _series(sentence)) is not None]
    lines = [line for line in answer.splitlines() if line.strip()]
    items = [line for line in lines if _LINE_ITEM.match(line) or _BULLET_LINE.match(line)]
    if len(items) > 1:  # the list's items marked, and maybe a line before or after them
        named.append(len(items))
    elif len(lines) > 1:
        named.append(len(lines) - lines[0].rstrip().endswith(":"))
    found = next((n for n in named if n in sizes), None)
    # Written as a count of the thing ("four steps"), not of something else ("four screws").
    written = {n for line in text.splitlines() for n in _counts_stated(line, counted_heads(question))}
    return None if found is None or str(found) in written else found


# A question that asks for an amount in a unit it names ("how many gallons", "how much
# current in amps" is rarer than "how many amps").
_AMOUNT_IN = re.compile(rf"\bhow\s+(?:many|much)\s+({_UNIT_WORDS})\b", re.IGNORECASE)
# A question that asks for a measurement: "at what temperature", "what voltage is …", "what
# is the pressure of …", "how hot". The measure must be what is asked, not a kind of thing:
# "what temperature sensors are shown?" asks for sensors, so a measure word counts only
# before a verb, a preposition or a clause ("the maximum current the output can supply"), or
# after "at"/"to"; "maximum", "rated" and the like may stand before it.
_MEASURES = ("temperature|voltage|current|pressure|frequency|resistance|capacitance|wattage|torque"
             "|weight|length|width|height|depth|diameter|thickness|capacity|speed|distance")
_MEASURE_KIND = r"(?:(?:maximum|minimum|max|min|rated|nominal|typical|peak|actual|operating|output|input)\s+)?"
_MEASURE_ASKED = re.compile(
    rf"\b(?:(?:at|to)\s+what\s+{_MEASURE_KIND}({_MEASURES})\b"
    rf"|what\s+(?:is\s+the\s+|are\s+the\s+|was\s+the\s+)?{_MEASURE_KIND}({_MEASURES})\s+"
    r"(?:is|are|was|were|does|do|did|has|have|should|must|can|will|of|for|in|at|the)\b"
    r"|how\s+(hot|cold|heavy|wide|tall|high|deep|thick|far)\b)",
    re.IGNORECASE,
)
# The units a measure is given in ("500 hours" is no temperature); a measure not named here
# (a capacity, a speed) takes any number.
_LENGTHS = frozenset({"mm", "cm", "m", "km", "in", "ft", "mi"})
_TEMPERATURES = frozenset({"°c", "°f", "degree"})
_WEIGHTS = frozenset({"kg", "g", "lb", "ton", "oz"})
_MEASURE_UNITS = {
    "voltage": frozenset({"v", "mv", "kv"}), "current": frozenset({"a", "ma"}),
    "pressure": frozenset({"psi", "bar", "kpa", "mpa"}), "frequency": frozenset({"hz", "khz", "mhz", "ghz"}),
    "resistance": frozenset({"ohm", "kohm"}), "wattage": frozenset({"w", "kw", "hp"}),
    "torque": frozenset({"nm", "ft-lb", "in-lb"}),
    **dict.fromkeys(("temperature", "hot", "cold"), _TEMPERATURES),
    **dict.fromkeys(("weight", "heavy"), _WEIGHTS),
    **dict.fromkeys("length width height depth diameter thickness distance wide tall high deep thick far".split(),
                    _LENGTHS),
}
_DEGREES = re.compile(r"\d\s*(?:degrees?|deg)\b", re.IGNORECASE)


# "How long" and "how often" ask for a time or a length, or a condition ("until the lamp
# goes out"): they mark the lines worth showing (rag/evidence.py), but an answer without a
# value may still be right, so no draft is held to them.
_HOW_LONG = re.compile(r"\bhow\s+(long|often)\b", re.IGNORECASE)
_DURATIONS = frozenset({"s", "min", "h", "day", "week", "month", "year"})


def units_asked(question: str, loose: bool = False) -> frozenset[str] | None:
    """The units of the value a question asks for: "how many gallons" {gal}, "at what
    temperature" {°c, °f, degree}; empty for a measure given in any unit (a capacity);
    None when it asks for no value. `loose` also reads "how long" and "how often"."""
    if (asked := _AMOUNT_IN.search(question)) is not None:
        return frozenset({_UNIT[asked[1].lower()]})
    if (measure := _MEASURE_ASKED.search(question)) is not None:
        return _MEASURE_UNITS.get(next(g for g in measure.groups() if g).lower(), frozenset())
    if loose and (how := _HOW_LONG.search(question)) is not None:
        return _DURATIONS | _LENGTHS if how[1].lower() == "long" else _DURATIONS
    return None


def states_value(text: str, units: frozenset[str]) -> bool:
    """Whether `text` states a value in one of `units` (any number, for none)."""
    if not units:
        return re.search(r"\d", _values_text(text)) is not None
    found = {u for _, u in _quantities(text)} | ({"degree"} if _DEGREES.search(text) else set())
    return bool(found & units)


def gives_no_value(answer: str, question: str) -> bool:
    """True when a question asks for a measurement and the answer states none in a unit of
    its kind: "at what temperature …?" answered "at the nominal temperature" or "at 500
    operating hours", or "how many gallons …?" answered in miles per gallon. A value is what
    such a question asks for; an answer without one tells the user nothing they can set or
    check."""
    units = units_asked(question)
    return units is not None and not states_value(_KEY.sub(" ", answer), units)


# -- the verdict on a draft --------------------------------------------------------------------------

# How strict the draft checks are. `strict` (the embedded 1.5B model): values, codes, plain
# numbers and counts, proper names, several novel words, restatements. `values`: a strong
# remote or GPU model that paraphrases well: values with units, decimals, fractions and
# codes only. `off`: nothing is withheld.
Strictness = Literal["strict", "values", "off"]


@dataclass(slots=True)
class Verdict:
    unsupported: list[str] = field(default_factory=list)  # what no source states
    # The draft answers nothing: it only restated the question, or gave a "how many"
    # question no count.
    restated: bool = False

    @property
    def grounded(self) -> bool:
        return not self.unsupported and not self.restated


def question_codes(question: str) -> list[str]:
    """Codes and part numbers a question names ("KS07", "F07452"), once each. Not a value
    with its unit run on ("30A", "160bar"): a manual writes it "30 AMP"."""
    return list(dict.fromkeys(c for c in CODE.findall(question) if not _QUANTITY.fullmatch(c)))


_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")
# A name as a question writes it: a capitalised word, or an acronym or option name of three
# capitals or more ("GMAX", "NSN"), which a manual that has it spells the same way.
_QUESTION_NAME = re.compile(rf"{_NAME.pattern}|\b[A-Z]{{3,}}\b")
_LETTER_WORD = re.compile(r"\b[A-Za-z]{2,}\b")


def question_names(question: str) -> list[list[str]]:
    """The proper names a question uses, each as its run of capitalised words ("Eau
    Claire", "Northwind Service Portal"), once each.

    A capitalised word that opens a sentence is a name only inside a longer run: "Which"
    or "Red" opening a question says nothing, "Red" mid-sentence does. A question in
    title case ("How Do I Descale The Machine?") capitalises every word: none is a name."""
    openers = {m.start(1) for m in _SENTENCE_START.finditer(question)}
    if any(m.group(0).lower() in STOP and m.start() not in openers for m in _CAPITALISED.finditer(question)):
        return []  # "Do", "The" capitalised mid-sentence: title case
    words = _LETTER_WORD.findall(question)
    shouted = sum(w.isupper() for w in words) * 2 >= len(words)  # a question typed in capitals
    runs: list[list[tuple[int, str]]] = []
    end: int | None = None  # where the run being built ends; None after a word that is no name
    for match in (_NAME if shouted else _QUESTION_NAME).finditer(question):
        word = match.group(0)
        if word.lower() in STOP or word.lower() in _NOT_NAMES:
            end = None
            continue
        if end is not None and question[end:match.start()] in (" ", "-"):
            runs[-1].append((match.start(), word))
        else:
            runs.append([(match.start(), word)])
        end = match.end()
    names: list[list[str]] = []
    for run in runs:
        words = [w for _, w in run]
        if (len(run) > 1 or run[0][0] not in openers) and words not in names:
            names.append(words)
    return names


def check_draft(answer: str, evidence: Sequence[str], question: str, strictness: Strictness = "strict") -> Verdict:
    """What the draft states that its evidence (what the model was shown) does not."""
    if strictness == "off":
        return Verdict()
    strict = strictness == "strict"
    unsupported = unsupported_values(answer, evidence, question, counts=strict, topical=strict)
    if strict:
        unsupported += [n for n in unsupported_names(answer, evidence, question) if n not in unsupported]
        if not unsupported:
            unsupported = unsupported_words(answer, evidence, question)
    no_answer = (restates_question(answer, question) or gives_no_count(answer, question, evidence)
                 or gives_no_value(answer, question))
    restated = strict and not unsupported and no_answer
    return Verdict(unsupported, restated)
